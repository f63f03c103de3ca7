//! `rel deploy`: the local stage end to end in a copy of this repository (real release builds,
//! real processes, real git), and the cluster path against an in-test API server that plays
//! Argo CD and the Job controller, with a bare `file://` remote as the repository Argo CD reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::gates_server::{KUBE_TOKEN, Server, kubeconfig};
use crate::promote_support::git;
use crate::promote_support::{D4, D5, D6};
use crate::support::{Run, copy_dir, rel_command, repo_root, run_rel};

/// Run `rel ARGS` in `dir` with the shared cargo target directory of the release builds and none
/// of the variables that would make the run depend on the caller's environment.
fn rel(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = rel_command(dir);
    cmd.args(args)
        .env(
            "REL_CARGO_TARGET_DIR",
            repo_root().join("target").join("rel-it-cargo"),
        )
        .env("REL_ACTOR", "alice@example.com");
    run_rel(cmd)
}

/// The report of a `--format json` run.
fn report(run: &Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout(),
            run.stderr()
        )
    })
}

/// The report's rows: name → (status, detail).
fn rows(report: &Value) -> BTreeMap<String, (String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

fn configure(dir: &Path) {
    git(dir, &["config", "user.name", "Alice"]);
    git(dir, &["config", "user.email", "alice@example.com"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
}

/// A copy of this repository's working tree (tracked and untracked files that are not ignored,
/// as they are now), committed in a fresh repository.
fn repo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(listed.status.success());
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = repo_root().join(name);
        if !from.is_file() {
            continue; // deleted in the working tree, or a submodule
        }
        let to = dir.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    let d = dir.path();
    // Without rel's own component: the local overlay runs no deploy gate (it has no Rollouts),
    // and a release build of rel at this new path would add minutes of compiling to every run.
    // tests/it/build.rs builds, pushes, unpacks and runs the rel image.
    std::fs::write(d.join("rel.toml"), crate::support::services_config()).unwrap();
    git(d, &["init", "--quiet", "--initial-branch=main"]);
    configure(d);
    git(d, &["add", "-A"]);
    git(d, &["commit", "--quiet", "-m", "the repository as it is"]);
    dir
}

fn stage_state(dir: &Path) -> Value {
    let run = rel(dir, &["up", "status", "--env", "local", "--format", "json"]);
    run.expect(0);
    serde_json::from_str(&run.stdout()).unwrap()
}

fn service_address(state: &Value, name: &str) -> String {
    state["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no Service {name}: {state:#}"))["ports"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every pid the state names: the supervisor and each container.
fn pids(state: &Value) -> Vec<u32> {
    let mut out: Vec<u32> = state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["containers"].as_array().unwrap().iter())
        .filter_map(|c| c["process"]["pid"].as_u64())
        .map(|p| p as u32)
        .collect();
    if let Some(p) = state["supervisor"]["pid"].as_u64() {
        out.push(p as u32);
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

/// Running (not finished) workload pods of the state: name → (component, digest).
fn running_pods(state: &Value) -> BTreeMap<String, (String, String)> {
    state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["workload_kind"] != "Job" && p["phase"] == "Running")
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (
                    p["labels"]["app.kubernetes.io/name"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    p["containers"][0]["digest"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

fn locked_digests(dir: &Path, version: &str) -> BTreeMap<String, String> {
    let lock =
        rel::lockfile::Lockfile::load(&dir.join(format!("releases/{version}.yaml"))).unwrap();
    lock.components
        .iter()
        .map(|(name, c)| (name.clone(), c.digest.to_string()))
        .collect()
}

/// The commit messages that touched `path`.
fn log_of(dir: &Path, path: &str) -> String {
    git(dir, &["log", "--format=%B%n----", "--", path])
}

/// Stops the stage when a test fails halfway.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = rel(self.0, &["down", "--env", "local"]);
    }
}

/// Requests through a Service, each on a new connection, until stopped.
struct Hammer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Hammer {
    fn start(url: String) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let (mut ok, mut failed) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match client.get(&url).send() {
                        Ok(r) if r.status() == 200 => ok += 1,
                        Ok(r) => failed.push(r.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        };
        Hammer { stop, thread }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The migration Job cannot open its database: `identity migrate` exits non-zero.
const BROKEN_MIGRATION: &str = r#"  - patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: platform-migrate
      spec:
        backoffLimit: 0
        template:
          spec:
            containers:
              - name: migrate
                env:
                  - name: DATABASE_URL
                    value: postgres://nowhere/platform
"#;

#[test]
fn deploy_builds_runs_gates_records_converges_and_a_broken_migration_changes_nothing() {
    let clone = repo_copy();
    let dir = clone.path();
    let _down = Down(dir);

    // 1.0.0: built, locked, secrets generated, stage started, pinned, gated, recorded.
    let first = rel(
        dir,
        &[
            "deploy",
            "--version",
            "1.0.0",
            "--timeout",
            "120s",
            "--format",
            "json",
        ],
    );
    first.expect(0);
    let r = rows(&report(&first));
    let names: Vec<&str> = r.keys().map(String::as_str).collect();
    for step in [
        "build",
        "secrets",
        "migrate",
        "apply",
        "gate/drift",
        "gate/smoke",
        "record",
    ] {
        assert!(names.contains(&step), "no {step} row: {r:#?}");
    }
    assert!(r.values().all(|(s, _)| s == "pass"), "{r:#?}");

    // The pin and the record are committed, with their trailers; nothing is left uncommitted.
    assert!(dir.join("releases/1.0.0.yaml").is_file());
    assert!(dir.join("releases/1.0.0.local.validation.yaml").is_file());
    let pinned = log_of(dir, "releases/1.0.0.yaml");
    assert!(pinned.contains("Rel-Action: deploy"), "{pinned}");
    assert!(pinned.contains("Rel-Version: 1.0.0"), "{pinned}");
    let recorded = log_of(dir, "releases/1.0.0.local.validation.yaml");
    assert!(recorded.contains("Rel-Action: "), "{recorded}");
    assert_eq!(
        git(
            dir,
            &["status", "--porcelain", "--", "releases", "overlays"]
        ),
        ""
    );

    // The stage is the local environment's live source for the drift gate.
    let drift = rel(dir, &["gate", "drift", "--env", "local", "--live"]);
    drift.expect(0);
    assert!(
        drift
            .stdout()
            .contains("PASS live/Deployment/gateway: 2/2 pods run the pinned digests"),
        "{}",
        drift.stdout()
    );

    // Every pod runs the locked digest of its component.
    let before = stage_state(dir);
    let v1 = locked_digests(dir, "1.0.0");
    let pods_v1 = running_pods(&before);
    assert_eq!(pods_v1.len(), 6, "{before:#}");
    for (pod, (component, digest)) in &pods_v1 {
        assert_eq!(Some(digest), v1.get(component), "{pod}");
    }

    // 1.0.1: the running stage converges; the gateway Service answers all along.
    let gateway = service_address(&before, "gateway");
    let hammer = Hammer::start(format!("http://{gateway}/readyz"));
    let second = rel(
        dir,
        &[
            "deploy",
            "--version",
            "1.0.1",
            "--timeout",
            "120s",
            "--format",
            "json",
        ],
    );
    let (ok, failed) = hammer.finish();
    second.expect(0);
    let r = rows(&report(&second));
    assert!(r.values().all(|(s, _)| s == "pass"), "{r:#?}");
    assert!(failed.is_empty(), "{ok} ok, failed: {failed:?}");
    assert!(ok > 0);
    let after = stage_state(dir);
    assert_eq!(
        after["supervisor"]["pid"], before["supervisor"]["pid"],
        "the same supervisor converged"
    );
    let v2 = locked_digests(dir, "1.0.1");
    assert_ne!(v1, v2, "the release version is compiled in");
    let pods_v2 = running_pods(&after);
    assert_eq!(pods_v2.len(), 6, "{after:#}");
    for (pod, (component, digest)) in &pods_v2 {
        assert_eq!(Some(digest), v2.get(component), "{pod}");
        assert!(!pods_v1.contains_key(pod), "{pod} was not replaced");
    }
    assert!(dir.join("releases/1.0.1.local.validation.yaml").is_file());

    // A rerun of the same deploy converges: same images, nothing new committed, same pods.
    let head = git(dir, &["rev-parse", "HEAD"]);
    let rerun = rel(
        dir,
        &[
            "deploy",
            "--version",
            "1.0.1",
            "--timeout",
            "120s",
            "--format",
            "json",
        ],
    );
    rerun.expect(0);
    let r = rows(&report(&rerun));
    assert!(r.values().all(|(s, _)| s == "pass"), "{r:#?}");
    assert!(r["build"].1.contains("already locked"), "{r:#?}");
    assert_eq!(git(dir, &["rev-parse", "HEAD"]), head);
    assert_eq!(running_pods(&stage_state(dir)), pods_v2);

    // 1.0.2 (the same images) with a migration that fails: the deploy stops at the migration and
    // no workload changes; the old pods keep serving.
    for (c, d) in &v2 {
        assert!(
            ["identity", "gateway", "worker"].contains(&c.as_str()),
            "{d}"
        );
    }
    rel(
        dir,
        &[
            "lock",
            "--version",
            "1.0.2",
            "--digest",
            &format!("identity={}", v2["identity"]),
            "--digest",
            &format!("gateway={}", v2["gateway"]),
            "--digest",
            &format!("worker={}", v2["worker"]),
        ],
    )
    .expect(0);
    let overlay_path = dir.join("overlays/local/kustomization.yaml");
    let overlay = std::fs::read_to_string(&overlay_path).unwrap();
    std::fs::write(
        &overlay_path,
        overlay.replace("\nimages:\n", &format!("{BROKEN_MIGRATION}\nimages:\n")),
    )
    .unwrap();
    let head = git(dir, &["rev-parse", "HEAD"]);
    let hammer = Hammer::start(format!("http://{gateway}/readyz"));
    let broken = rel(
        dir,
        &[
            "deploy",
            "--version",
            "1.0.2",
            "--skip-build",
            "--timeout",
            "60s",
            "--format",
            "json",
        ],
    );
    let (ok, failed) = hammer.finish();
    broken.expect(1);
    let r = rows(&report(&broken));
    let (status, detail) = r.get("migrate").unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(status, "fail", "{r:#?}");
    assert!(detail.contains("platform-migrate"), "{detail}");
    assert!(
        !r.contains_key("gate/drift") && !r.contains_key("record"),
        "{r:#?}"
    );
    assert!(!dir.join("releases/1.0.2.local.validation.yaml").exists());
    assert!(failed.is_empty(), "{ok} ok, failed: {failed:?}");
    // Nothing committed; the overlay is as it was (still the user's patch, still 1.0.1's pins).
    assert_eq!(git(dir, &["rev-parse", "HEAD"]), head);
    assert!(detail.contains("nothing committed"), "{detail}");
    let now_overlay = std::fs::read_to_string(&overlay_path).unwrap();
    assert!(now_overlay.contains("postgres://nowhere"));
    for digest in v2.values() {
        assert!(now_overlay.contains(digest.as_str()), "{now_overlay}");
    }
    let now = stage_state(dir);
    assert_eq!(running_pods(&now), pods_v2, "no workload changed: {now:#}");

    // Down stops every process the stage ran.
    let all = pids(&now);
    assert!(all.len() >= 7, "{all:?}");
    rel(dir, &["down", "--env", "local"]).expect(0);
    let left: Vec<u32> = all.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn dry_run_prints_six_skipped_steps_and_changes_nothing() {
    let clone = repo_copy();
    let dir = clone.path();
    let before: Vec<PathBuf> = walk(dir);
    let run = rel(
        dir,
        &[
            "deploy",
            "--version",
            "1.0.0",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    run.expect(0);
    let r = rows(&report(&run));
    assert_eq!(r.len(), 6, "{r:#?}");
    assert!(r.values().all(|(s, _)| s == "skip"), "{r:#?}");
    assert_eq!(git(dir, &["status", "--porcelain", "--ignored"]), "");
    assert_eq!(walk(dir), before);
}

/// Every file under `dir` outside `.git`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                go(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

// ---- the cluster path ----

/// How the fake Argo CD and Job controller behave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cluster {
    /// The Application follows the remote's tip: synced and healthy once it sees the push.
    Syncs,
    /// The Application stays at the revision it had.
    NeverSyncs,
    /// The sync of the pushed commit fails in its PreSync hook.
    HookFails,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Jobs {
    Succeed,
    Fail,
}

#[derive(Default)]
struct Seen {
    jobs: Vec<Value>,
    app_reads: usize,
}

struct FakeCluster {
    server: Server,
    seen: Arc<Mutex<Seen>>,
}

/// The pods of namespace `platform-staging`, one per component, on `digests`. identity's
/// belong to its Deployment; the gateway's and the worker's to their Rollouts (staging uses
/// templates/rollouts), whose ReplicaSets label pods `rollouts-pod-template-hash`.
fn cluster_pods(digests: [&str; 3]) -> Value {
    let items: Vec<Value> = ["identity", "gateway", "worker"]
        .iter()
        .zip(digests)
        .map(|(c, d)| {
            let image = format!("registry.example.com/platform/{c}@{d}");
            let hash_label = if *c == "identity" {
                "pod-template-hash"
            } else {
                "rollouts-pod-template-hash"
            };
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": format!("{c}-6d4b75cb6d-7xk2p"), "namespace": "platform-staging",
                    "labels": {"app.kubernetes.io/name": c, "app.kubernetes.io/component": c, hash_label: "6d4b75cb6d"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{c}-6d4b75cb6d"), "controller": true, "uid": "0"}]
                },
                "spec": {"containers": [{"name": c, "image": image}]},
                "status": {"phase": "Running", "podIP": "10.244.0.10", "containerStatuses": [
                    {"name": c, "image": image, "imageID": format!("docker-pullable://{image}"), "ready": true, "restartCount": 0}
                ]}
            })
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn api_json(code: StatusCode, body: Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KUBE_TOKEN}"))
}

impl FakeCluster {
    /// Argo CD's Application `argocd/platform-staging` over the bare repository `remote`
    /// (`main`'s tip read on every request), the Job controller, and the pods on `digests`.
    fn start(remote: PathBuf, mode: Cluster, jobs: Jobs, digests: [&str; 3]) -> FakeCluster {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let initial = tip(&remote);
        let pods = cluster_pods(digests);
        let app = {
            let seen = Arc::clone(&seen);
            move |UrlPath((ns, name)): UrlPath<(String, String)>, headers: HeaderMap| {
                let seen = Arc::clone(&seen);
                let remote = remote.clone();
                let initial = initial.clone();
                async move {
                    if !authorized(&headers) {
                        return api_json(
                            StatusCode::UNAUTHORIZED,
                            json!({"kind": "Status", "message": "Unauthorized"}),
                        );
                    }
                    if ns != "argocd" || name != "platform-staging" {
                        return api_json(
                            StatusCode::NOT_FOUND,
                            json!({"kind": "Status", "message": format!("applications.argoproj.io \"{name}\" not found"), "code": 404}),
                        );
                    }
                    seen.lock().unwrap().app_reads += 1;
                    let head = tip(&remote);
                    let status = match mode {
                        Cluster::Syncs => json!({
                            "sync": {"status": "Synced", "revision": head},
                            "health": {"status": "Healthy"},
                            "operationState": {"phase": "Succeeded", "syncResult": {"revision": head}}
                        }),
                        Cluster::NeverSyncs => json!({
                            "sync": {"status": "OutOfSync", "revision": initial},
                            "health": {"status": "Healthy"}
                        }),
                        Cluster::HookFails => json!({
                            "sync": {"status": "OutOfSync", "revision": initial},
                            "health": {"status": "Healthy"},
                            "operationState": {
                                "phase": "Failed",
                                "message": "one or more synchronization tasks completed unsuccessfully",
                                "syncResult": {"revision": head, "resources": [
                                    {"group": "batch", "kind": "Job", "namespace": "platform-staging", "name": "platform-migrate",
                                     "status": "SyncFailed", "hookType": "PreSync", "hookPhase": "Failed",
                                     "message": "Job has reached the specified backoff limit"}
                                ]}
                            }
                        }),
                    };
                    api_json(
                        StatusCode::OK,
                        json!({
                            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                            "metadata": {"name": name, "namespace": ns}, "status": status
                        }),
                    )
                }
            }
        };
        let create_job = {
            let seen = Arc::clone(&seen);
            move |UrlPath(ns): UrlPath<String>, headers: HeaderMap, body: String| {
                let seen = Arc::clone(&seen);
                async move {
                    if !authorized(&headers) {
                        return api_json(
                            StatusCode::UNAUTHORIZED,
                            json!({"kind": "Status", "message": "Unauthorized"}),
                        );
                    }
                    let mut job: Value = serde_json::from_str(&body).unwrap();
                    job["metadata"]["namespace"] = ns.into();
                    seen.lock().unwrap().jobs.push(job.clone());
                    api_json(StatusCode::CREATED, job)
                }
            }
        };
        let read_job = {
            let seen = Arc::clone(&seen);
            move |UrlPath((ns, name)): UrlPath<(String, String)>, headers: HeaderMap| {
                let seen = Arc::clone(&seen);
                async move {
                    if !authorized(&headers) {
                        return api_json(
                            StatusCode::UNAUTHORIZED,
                            json!({"kind": "Status", "message": "Unauthorized"}),
                        );
                    }
                    let found = seen
                        .lock()
                        .unwrap()
                        .jobs
                        .iter()
                        .find(|j| {
                            j["metadata"]["name"] == name.as_str()
                                && j["metadata"]["namespace"] == ns.as_str()
                        })
                        .cloned();
                    let Some(mut job) = found else {
                        return api_json(
                            StatusCode::NOT_FOUND,
                            json!({"kind": "Status", "message": "not found", "code": 404}),
                        );
                    };
                    job["status"] = match jobs {
                        Jobs::Succeed => json!({"succeeded": 1}),
                        Jobs::Fail => json!({"failed": 1, "conditions": [
                            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
                        ]}),
                    };
                    api_json(StatusCode::OK, job)
                }
            }
        };
        let list_pods = move |UrlPath(ns): UrlPath<String>, headers: HeaderMap| {
            let pods = pods.clone();
            async move {
                if !authorized(&headers) {
                    return api_json(
                        StatusCode::UNAUTHORIZED,
                        json!({"kind": "Status", "message": "Unauthorized"}),
                    );
                }
                let mut pods = pods;
                if let Some(items) = pods["items"].as_array_mut() {
                    items.retain(|p| p["metadata"]["namespace"] == ns.as_str());
                }
                api_json(StatusCode::OK, pods)
            }
        };
        let router = Router::new()
            .route(
                "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications/{name}",
                get(app),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs",
                axum::routing::post(create_job),
            )
            .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(read_job))
            .route("/api/v1/namespaces/{ns}/pods", get(list_pods));
        FakeCluster {
            server: Server::http(router),
            seen,
        }
    }
}

/// The tip of `main` in the bare repository.
fn tip(remote: &Path) -> String {
    git(remote, &["rev-parse", "refs/heads/main"])
}

/// This repository's rel.toml, templates and staging overlay, committed in a clone of a bare
/// remote, pinning the placeholder digests; release 1.0.0 locked (committed) on others; a kubeconfig for `server` in `kubeconfig.yaml`.
struct GitOps {
    remote: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl GitOps {
    fn new(overlay_patch: Option<&str>) -> GitOps {
        let remote = tempfile::tempdir().unwrap();
        git(
            remote.path(),
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        );
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        // This repository's rel.toml: staging's deploy gate runs rel's own image, a component.
        std::fs::copy(repo_root().join("rel.toml"), w.join("rel.toml")).unwrap();
        for sub in ["templates/base", "templates/rollouts", "overlays/staging"] {
            copy_dir(&repo_root().join(sub), &w.join(sub));
        }
        if let Some(patch) = overlay_patch {
            let path = w.join("overlays/staging/kustomization.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            // After the overlay's own patch (REL_ENV), in its `patches:` list.
            let own = "        REL_ENV: staging\n";
            assert!(text.contains(own), "{text}");
            std::fs::write(&path, text.replace(own, &format!("{own}{patch}"))).unwrap();
        }
        std::fs::write(w.join(".gitignore"), "/kubeconfig.yaml\n/target\n/.rel/\n").unwrap();
        git(w, &["init", "--quiet", "--initial-branch=main"]);
        configure(w);
        rel(
            w,
            &[
                "lock",
                "--version",
                "1.0.0",
                "--digest",
                &format!("identity={D4}"),
                "--digest",
                &format!("gateway={D5}"),
                "--digest",
                &format!("worker={D6}"),
                "--digest",
                &format!("rel={REL_IMAGE}"),
            ],
        )
        .expect(0);
        git(w, &["add", "-A"]);
        git(w, &["commit", "--quiet", "-m", "initial"]);
        git(
            w,
            &[
                "remote",
                "add",
                "origin",
                &format!("file://{}", remote.path().display()),
            ],
        );
        git(w, &["push", "--quiet", "-u", "origin", "main"]);
        GitOps { remote, work }
    }

    fn deploy(&self, cluster: &FakeCluster, extra: &[&str]) -> Run {
        let w = self.work.path();
        std::fs::write(
            w.join("kubeconfig.yaml"),
            kubeconfig(&cluster.server.http_url()),
        )
        .unwrap();
        let mut args = vec![
            "deploy",
            "--version",
            "1.0.0",
            "--env",
            "staging",
            "--skip-build",
            "--no-smoke",
            "--kubeconfig",
            "kubeconfig.yaml",
            "--kube-timeout",
            "5s",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        rel(w, &args)
    }
}

/// The deploy gate's image (rel's own) in release 1.0.0 of [`GitOps`].
const REL_IMAGE: &str = "sha256:7777777777777777777777777777777777777777777777777777777777777777";

/// The migration Job as a plain Job (labelled, no PreSync hook): rel runs it itself.
const PLAIN_MIGRATION: &str = r#"  - patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: platform-migrate
        annotations:
          argocd.argoproj.io/hook: null
          argocd.argoproj.io/hook-delete-policy: null
          argocd.argoproj.io/sync-wave: null
"#;

#[test]
fn cluster_deploy_pushes_the_pin_and_waits_for_argo_cd_to_sync_it() {
    let g = GitOps::new(None);
    let before = tip(g.remote.path());
    let cluster = FakeCluster::start(
        g.remote.path().into(),
        Cluster::Syncs,
        Jobs::Succeed,
        [D4, D5, D6],
    );
    let run = g.deploy(&cluster, &["--timeout", "30s"]);
    run.expect(0);
    let r = rows(&report(&run));
    assert_eq!(r["build"].0, "pass", "{r:#?}");
    assert_eq!(r["secrets"].0, "warn", "no envelope in the store: {r:#?}");
    assert_eq!(r["migrate"].0, "pass", "{r:#?}");
    assert!(
        r["migrate"]
            .1
            .contains("platform-migrate ran as Argo CD's PreSync hook"),
        "{r:#?}"
    );
    let (status, detail) = &r["apply"];
    assert_eq!(status, "pass", "{r:#?}");
    assert!(detail.contains("argocd/platform-staging"), "{detail}");
    assert_eq!(r["gate/drift"].0, "pass", "{r:#?}");
    assert_eq!(r["gate/smoke"].0, "skip", "{r:#?}");

    // The pin was pushed; Argo CD was asked about that commit.
    let after = tip(g.remote.path());
    assert_ne!(after, before);
    assert_eq!(after, git(g.work.path(), &["rev-parse", "HEAD"]));
    let message = git(g.remote.path(), &["log", "-1", "--format=%B", "main"]);
    assert!(message.contains("Rel-Action: deploy"), "{message}");
    assert!(detail.contains(&after[..12]), "{detail}");
    assert!(
        cluster.seen.lock().unwrap().jobs.is_empty(),
        "a hook is not created by rel"
    );

    // A rerun converges: the pin is there, nothing new is committed or pushed.
    let again = g.deploy(&cluster, &["--timeout", "30s"]);
    again.expect(0);
    let r = rows(&report(&again));
    assert_eq!(r["apply"].0, "pass", "{r:#?}");
    assert!(r["apply"].1.contains("already pins 1.0.0"), "{r:#?}");
    assert_eq!(tip(g.remote.path()), after);
}

#[test]
fn cluster_deploy_runs_a_plain_migration_job_on_the_release_image_before_pushing() {
    let g = GitOps::new(Some(PLAIN_MIGRATION));
    let cluster = FakeCluster::start(
        g.remote.path().into(),
        Cluster::Syncs,
        Jobs::Succeed,
        [D4, D5, D6],
    );
    let run = g.deploy(&cluster, &["--timeout", "30s"]);
    run.expect(0);
    let r = rows(&report(&run));
    assert_eq!(r["migrate"].0, "pass", "{r:#?}");
    assert!(
        r["migrate"]
            .1
            .contains("platform-staging/platform-migrate-1-0-0"),
        "{r:#?}"
    );
    let jobs = cluster.seen.lock().unwrap().jobs.clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.example.com/platform/identity@{D4}"),
        "the Job runs the release's identity image"
    );
    assert_eq!(r["apply"].0, "pass", "{r:#?}");
}

#[test]
fn cluster_deploy_stops_at_a_failed_migration_job_and_pushes_nothing() {
    let g = GitOps::new(Some(PLAIN_MIGRATION));
    let before = tip(g.remote.path());
    let head = git(g.work.path(), &["rev-parse", "HEAD"]);
    let cluster = FakeCluster::start(
        g.remote.path().into(),
        Cluster::Syncs,
        Jobs::Fail,
        [D4, D5, D6],
    );
    let run = g.deploy(&cluster, &["--timeout", "30s"]);
    run.expect(1);
    let r = rows(&report(&run));
    let (status, detail) = &r["migrate"];
    assert_eq!(status, "fail", "{r:#?}");
    assert!(detail.contains("backoff limit"), "{detail}");
    assert!(!r.contains_key("apply"), "{r:#?}");
    assert_eq!(tip(g.remote.path()), before, "nothing pushed");
    assert_eq!(
        git(g.work.path(), &["rev-parse", "HEAD"]),
        head,
        "nothing committed"
    );
    assert_eq!(cluster.seen.lock().unwrap().app_reads, 0);
}

#[test]
fn cluster_deploy_fails_naming_the_application_when_it_never_syncs() {
    let g = GitOps::new(None);
    let cluster = FakeCluster::start(
        g.remote.path().into(),
        Cluster::NeverSyncs,
        Jobs::Succeed,
        [D4, D5, D6],
    );
    let started = std::time::Instant::now();
    let run = g.deploy(&cluster, &["--timeout", "2s"]);
    run.expect(1);
    let r = rows(&report(&run));
    let (status, detail) = &r["apply"];
    assert_eq!(status, "fail", "{r:#?}");
    assert!(detail.contains("argocd/platform-staging"), "{detail}");
    assert!(detail.contains("within 2s"), "{detail}");
    assert!(
        run.stderr()
            .contains("to roll back: `rel rollback --env staging`"),
        "the pin is pushed: {}",
        run.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!r.contains_key("gate/drift"), "{r:#?}");
}

#[test]
fn cluster_deploy_fails_at_once_when_the_presync_hook_fails() {
    let g = GitOps::new(None);
    let cluster = FakeCluster::start(
        g.remote.path().into(),
        Cluster::HookFails,
        Jobs::Succeed,
        [D4, D5, D6],
    );
    let started = std::time::Instant::now();
    // A long timeout: the failed operation ends the wait, not the clock.
    let run = g.deploy(&cluster, &["--timeout", "300s"]);
    run.expect(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let r = rows(&report(&run));
    // The migration is what failed: its row says so, and names the pushed commit.
    let (status, detail) = &r["migrate"];
    assert_eq!(status, "fail", "{r:#?}");
    assert!(detail.contains("platform-migrate"), "{detail}");
    assert!(detail.contains("backoff limit"), "{detail}");
    let pushed = tip(g.remote.path());
    assert!(detail.contains(&pushed[..12]), "{detail}");
    assert!(
        !r.contains_key("apply") && !r.contains_key("gate/drift"),
        "{r:#?}"
    );
    assert!(
        run.stderr()
            .contains("to roll back: `rel rollback --env staging`"),
        "{}",
        run.stderr()
    );
}
