//! `rel gate drift` against rendered fixtures and recorded pod lists, and the live path through a
//! kubeconfig against an in-test API server serving the same recorded objects.

use crate::gates_server::*;
use crate::support::*;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn platform() -> Project {
    let p = Project::from_fixture("gates/platform");
    p.write(
        "rendered.yaml",
        &std::fs::read_to_string(fixture("gates/rendered/staging.yaml")).unwrap(),
    );
    p
}

fn pods(name: &str) -> String {
    fixture(&format!("gates/cluster/{name}"))
        .display()
        .to_string()
}

fn drift(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec![
        "gate",
        "drift",
        "--env",
        "staging",
        "--rendered",
        "rendered.yaml",
    ];
    args.extend_from_slice(extra);
    p.rel(&args)
}

fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

const STATIC_PASS: [&str; 9] = [
    "PASS image/Deployment/gateway/gateway: gateway @ sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "PASS image/Deployment/identity/identity: identity @ sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "PASS image/CronJob/reaper/reaper: worker @ sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    "PASS image/Rollout/worker/migrate: identity @ sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "PASS image/Rollout/worker/worker: worker @ sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    "PASS release: the overlay's pins match release 0.4.0",
    "PASS pin/gateway: sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb as in release 0.4.0",
    "PASS pin/identity: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa as in release 0.4.0",
    "PASS pin/worker: sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc as in release 0.4.0",
];

const LIVE_PASS: [&str; 4] = [
    "PASS live/Deployment/gateway: 3/3 pods run the pinned digests",
    "PASS live/Deployment/identity: 2/2 pods run the pinned digests",
    "PASS live/CronJob/reaper: no running pods (not running now)",
    "PASS live/Rollout/worker: 3/3 pods run the pinned digests",
];

#[test]
fn static_all_pinned_matches_the_release() {
    let p = platform();
    let run = drift(&p, &[]);
    run.expect(0);
    let out = run.stdout();
    let mut want: Vec<&str> = STATIC_PASS.to_vec();
    want.push("drift gate PASSED: 9 passed, 0 failed, 0 warnings, 0 skipped");
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");

    // Naming the release gives the same answer, without the `release` row.
    let run = drift(&p, &["--version", "0.4.0", "--format", "json"]);
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v["context"]["version"], "0.4.0");
    assert_eq!(v["summary"]["pass"], 8);
}

#[test]
fn the_overlay_against_another_release() {
    let p = platform();
    let run = drift(&p, &["--version", "0.4.1"]);
    run.expect(1);
    assert_eq!(
        lines_with(&run.stdout(), "FAIL"),
        [
            "FAIL pin/gateway: release 0.4.1 pins sha256:dddddddddddd…, the overlay pins sha256:bbbbbbbbbbbb… in Deployment/gateway; run `rel pin --env staging --version 0.4.1`"
        ]
    );
    let run = drift(&p, &["--version", "0.5.0"]);
    run.expect(2);
    assert!(
        run.stderr().contains("there is no release lockfile"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_tag_only_image_fails() {
    let p = platform();
    let tagged = p.read("rendered.yaml").replacen(
        &format!("registry.example.com/platform/worker@{C}"),
        "registry.example.com/platform/worker:0.4.0",
        1,
    );
    p.write("rendered.yaml", &tagged);
    let run = drift(&p, &[]);
    run.expect(1);
    assert_eq!(
        lines_with(&run.stdout(), "FAIL"),
        [
            "FAIL image/CronJob/reaper/reaper: `registry.example.com/platform/worker:0.4.0` is pinned by tag `0.4.0` only; a tag is a label, never an authority: pin it by digest (`rel pin --env staging --version V`)"
        ]
    );

    // Every worker image by tag: the release's worker pin is not deployed by digest at all.
    let all_tagged = p.read("rendered.yaml").replace(
        &format!("registry.example.com/platform/worker@{C}"),
        "registry.example.com/platform/worker:0.4.0",
    );
    p.write("rendered.yaml", &all_tagged);
    let run = drift(&p, &["--version", "0.4.0"]);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(lines_with(&out, "FAIL").len(), 3, "{out}");
    assert!(out.contains("FAIL pin/worker: release 0.4.0 pins sha256:cccccccccccc…, the overlay deploys worker by tag only (CronJob/reaper, Rollout/worker)"), "{out}");
}

#[test]
fn an_image_no_component_owns_fails() {
    let p = platform();
    let sidecar = format!(
        "      - image: registry.example.com/platform/gateway@{B}\n        name: gateway\n        resources:\n          requests:\n            cpu: \"0.5\"\n            memory: 512Mi\n      - image: docker.io/library/busybox@{A}\n        name: debug\n"
    );
    let text = p.read("rendered.yaml");
    let anchor = format!(
        "      - image: registry.example.com/platform/gateway@{B}\n        name: gateway\n        resources:\n          requests:\n            cpu: \"0.5\"\n            memory: 512Mi\n"
    );
    assert!(text.contains(&anchor), "fixture layout changed");
    p.write("rendered.yaml", &text.replace(&anchor, &sidecar));
    let run = drift(&p, &[]);
    run.expect(1);
    assert_eq!(
        lines_with(&run.stdout(), "FAIL"),
        [
            "FAIL image/Deployment/gateway/debug: no component owns `docker.io/library/busybox`: add it to rel.toml as a component (`[components.<name>]` with `image = ...` or `repo = ...`), or remove it from the overlay"
        ]
    );
}

#[test]
fn pins_that_match_no_release() {
    let p = platform();
    let e = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    p.write("rendered.yaml", &p.read("rendered.yaml").replace(B, e));
    let run = drift(&p, &[]);
    run.expect(1);
    assert_eq!(
        lines_with(&run.stdout(), "FAIL"),
        [
            "FAIL release: the overlay's pins match no release lockfile (have: 0.4.0, 0.4.1); pin a release with `rel pin --env staging --version V`, or name it with --version V to see the differences"
        ]
    );
}

#[test]
fn live_pods_all_on_the_pinned_digests() {
    let p = platform();
    let list = pods("pods-all-pinned.json");
    let run = drift(&p, &["--pods", &list]);
    run.expect(0);
    let out = run.stdout();
    let mut want: Vec<&str> = STATIC_PASS.to_vec();
    want.extend(LIVE_PASS);
    want.push("drift gate PASSED: 13 passed, 0 failed, 0 warnings, 0 skipped");
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");

    // The same list on stdin.
    let bytes = std::fs::read(&list).unwrap();
    let run = rel_stdin(
        p.path(),
        &[
            "gate",
            "drift",
            "--env",
            "staging",
            "--rendered",
            "rendered.yaml",
            "--pods",
            "-",
            "--format",
            "json",
        ],
        &bytes,
    );
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v["context"]["live"], "pods from <stdin>");
}

#[test]
fn one_stale_pod_is_named_and_the_rollout_is_mixed() {
    let p = platform();
    let run = drift(&p, &["--pods", &pods("pods-one-stale.json")]);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        lines_with(&out, "FAIL"),
        [
            "FAIL live/Deployment/gateway: 2/3 pods run the pinned digests; stale: gateway-84c6f7d9b8-zr4nq (gateway runs sha256:eeeeeeeeeeee…, pinned sha256:bbbbbbbbbbbb…)"
        ]
    );
    assert_eq!(
        lines_with(&out, "WARN"),
        [
            "WARN live/Deployment/gateway/mixed: pods run 2 versions at once (1 on gateway=sha256:eeeeeeeeeeee…; 2 on the pinned digests): a rollout in progress; re-run when it has converged"
        ]
    );
}

#[test]
fn no_live_pods_is_a_failure_not_a_pass() {
    let p = platform();
    p.write(
        "empty.json",
        r#"{"apiVersion": "v1", "kind": "List", "items": []}"#,
    );
    let run = drift(&p, &["--pods", "empty.json"]);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(lines_with(&out, "FAIL").len(), 3, "{out}");
    assert!(out.contains("FAIL live/Deployment/gateway: no live pods in namespace platform (pods from empty.json): not deployed yet, or the wrong --context/--namespace"), "{out}");

    p.write("garbage.json", "not json");
    let run = drift(&p, &["--pods", "garbage.json"]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("could not read pods from garbage.json: not a Kubernetes list in JSON"),
        "{}",
        run.stderr()
    );
}

fn api(mode: ApiMode, list: &str) -> Server {
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("gates/cluster/{list}"))).unwrap(),
    )
    .unwrap();
    Server::http(kube_api(recorded, mode))
}

#[test]
fn live_through_a_kubeconfig_against_the_api_server() {
    let p = platform();
    let s = api(ApiMode::Serve, "pods-one-stale.json");
    p.write("kubeconfig", &kubeconfig(&s.http_url()));
    let run = drift(&p, &["--live", "--kubeconfig", "kubeconfig"]);
    run.expect(1);
    let out = run.stdout();
    assert_eq!(
        lines_with(&out, "FAIL"),
        [
            "FAIL live/Deployment/gateway: 2/3 pods run the pinned digests; stale: gateway-84c6f7d9b8-zr4nq (gateway runs sha256:eeeeeeeeeeee…, pinned sha256:bbbbbbbbbbbb…)"
        ],
        "{out}"
    );
    assert!(
        out.contains("PASS live/Rollout/worker: 3/3 pods run the pinned digests"),
        "{out}"
    );

    // KUBECONFIG works the same, and the report says where the pods came from.
    let s = api(ApiMode::Serve, "pods-all-pinned.json");
    p.write("kubeconfig", &kubeconfig(&s.http_url()));
    let kc = p.path().join("kubeconfig").display().to_string();
    let run = rel_env(
        p.path(),
        &[
            "gate",
            "drift",
            "--env",
            "staging",
            "--rendered",
            "rendered.yaml",
            "--live",
            "--format",
            "json",
        ],
        &[("KUBECONFIG", &kc)],
    );
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        v["context"]["live"],
        format!("the API of context `test` ({})", s.http_url())
    );
    assert_eq!(v["summary"]["pass"], 13);
}

#[test]
fn live_without_permission_no_kubeconfig_or_in_time_cannot_run() {
    let p = platform();
    let live = [
        "gate",
        "drift",
        "--env",
        "staging",
        "--rendered",
        "rendered.yaml",
        "--live",
    ];

    // 403
    let s = api(ApiMode::Forbidden, "pods-all-pinned.json");
    p.write("kubeconfig", &kubeconfig(&s.http_url()));
    let kc = p.path().join("kubeconfig").display().to_string();
    let run = rel_env(p.path(), &live, &[("KUBECONFIG", &kc)]);
    run.expect(2);
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "GET {}/api/v1/namespaces/platform/pods?limit=500: 403 Forbidden: pods is forbidden",
            s.http_url()
        )),
        "{err}"
    );
    assert!(err.contains("grant `list` on pods"), "{err}");
    assert!(
        run.stdout().is_empty(),
        "no report on a gate that could not run"
    );

    // 401: a context whose user has the wrong token.
    let run = rel_env(
        p.path(),
        &[&live[..], &["--context", "stranger"]].concat(),
        &[("KUBECONFIG", &kc)],
    );
    run.expect(2);
    assert!(
        run.stderr().contains("401 Unauthorized"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(KUBE_TOKEN) && !run.stderr().contains("not-the-token"));

    // A context that does not exist.
    let run = rel_env(
        p.path(),
        &[&live[..], &["--context", "prod"]].concat(),
        &[("KUBECONFIG", &kc)],
    );
    run.expect(2);
    assert!(
        run.stderr()
            .contains("no context `prod` (contexts: test, stranger)"),
        "{}",
        run.stderr()
    );

    // A timeout.
    let slow = api(ApiMode::Slow, "pods-all-pinned.json");
    p.write("slow-kubeconfig", &kubeconfig(&slow.http_url()));
    let started = std::time::Instant::now();
    let run = p.rel(
        &[
            &live[..],
            &["--kubeconfig", "slow-kubeconfig", "--kube-timeout", "500ms"],
        ]
        .concat(),
    );
    run.expect(2);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        run.stderr().contains(&format!(
            "GET {}/api/v1/namespaces/platform/pods?limit=500: timed out after 0.5s",
            slow.http_url()
        )),
        "{}",
        run.stderr()
    );

    // No kubeconfig anywhere.
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let run = rel_env(p.path(), &live, &[("HOME", &home_s)]);
    run.expect(2);
    assert!(
        run.stderr().contains(&format!(
            "no kubeconfig: KUBECONFIG is not set and {home_s}/.kube/config does not exist"
        )),
        "{}",
        run.stderr()
    );
    let run = rel_env(
        p.path(),
        &live,
        &[("KUBECONFIG", "/nonexistent/kubeconfig")],
    );
    run.expect(2);
    assert!(
        run.stderr()
            .contains("no kubeconfig: KUBECONFIG names no existing file (/nonexistent/kubeconfig)"),
        "{}",
        run.stderr()
    );

    // Nothing listening.
    let down = closed_port();
    p.write(
        "down-kubeconfig",
        &kubeconfig(&format!("http://127.0.0.1:{down}")),
    );
    let run = p.rel(&[&live[..], &["--kubeconfig", "down-kubeconfig"]].concat());
    run.expect(2);
    assert!(
        run.stderr().contains("Connection refused") && run.stderr().contains("(after 3 attempts)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn headroom_live_reads_nodes_and_pods_from_the_api() {
    let p = platform();
    let s = api(ApiMode::Serve, "nodes-and-pods.json");
    p.write("kubeconfig", &kubeconfig(&s.http_url()));
    let run = p.rel(&[
        "gate",
        "headroom",
        "--env",
        "staging",
        "--rendered",
        "rendered.yaml",
        "--live",
        "--kubeconfig",
        "kubeconfig",
    ]);
    run.expect(0);
    // The same hand-worked answer as from the file (see gates_headroom.rs).
    let out = run.stdout();
    assert!(out.contains("PASS nodes: 2 schedulable node(s) with agentpool=nodepool1: 2810m CPU, 19392Mi memory free; cordoned, not counted: node-c"), "{out}");
    assert!(
        out.contains("WARN total: 1 of 4 surge pod(s) do not fit at once (Rollout/worker ×1)"),
        "{out}"
    );
}

#[test]
fn live_with_an_exec_credential_plugin() {
    let p = platform();
    let s = api(ApiMode::Serve, "pods-all-pinned.json");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{KUBE_TOKEN}"}}}}"#
    );
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: exec\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"printf '%s' \\\"$CRED\\\"\"]\n      env:\n      - name: CRED\n        value: '{credential}'\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: exec\n    namespace: platform\ncurrent-context: test\n",
        s.http_url()
    );
    p.write("kubeconfig", &config);
    let run = drift(&p, &["--live", "--kubeconfig", "kubeconfig"]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("PASS live/Deployment/gateway: 3/3 pods run the pinned digests"),
        "{}",
        run.stdout()
    );

    // A plugin that fails is an error that names it.
    p.write(
        "kubeconfig",
        &config.replace("command: sh", "command: /nonexistent/kubelogin"),
    );
    let run = drift(&p, &["--live", "--kubeconfig", "kubeconfig"]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("exec credential plugin `/nonexistent/kubelogin`: cannot run it"),
        "{}",
        run.stderr()
    );
}

#[test]
fn renders_the_overlay_and_names_a_missing_one() {
    let p = platform();
    let run = p.rel(&[
        "gate",
        "drift",
        "--env",
        "staging",
        "--pods",
        &pods("pods-all-pinned.json"),
    ]);
    run.expect(0);
    assert!(
        run.stdout()
            .ends_with("drift gate PASSED: 13 passed, 0 failed, 0 warnings, 0 skipped\n"),
        "{}",
        run.stdout()
    );

    let run = p.rel(&["gate", "drift", "--env", "prod"]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("overlays/prod has no kustomization.yaml"),
        "{}",
        run.stderr()
    );
}
