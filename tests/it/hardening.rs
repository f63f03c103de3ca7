//! Regression tests for hostile input, concurrent writers and credentials that must stay home.
//! Each test names what broke.

use std::process::{Command, Stdio};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::gates_server::{Server, rel_env};
use crate::promote_support::{D4, D5, D6};
use crate::support::*;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: NAME\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: registry.example.com/platform/identity\n";

#[test]
fn render_output_refuses_a_resource_name_that_walks_out_of_the_directory() {
    let p = Project::platform();
    p.write("releases/0.4.0.yaml", "validated lockfile\n");
    p.write(
        "overlay/kustomization.yaml",
        "resources:\n- a.yaml\n- b.yaml\n",
    );
    p.write("overlay/a.yaml", &DEPLOYMENT.replace("NAME", "fine"));
    p.write(
        "overlay/b.yaml",
        &DEPLOYMENT.replace("NAME", "x/../../../../releases/0.4.0"),
    );
    let run = p.rel(&["render", "overlay", "-o", "out/deep/er"]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("not a single safe file name component")
            && run.stderr().contains("x/../../"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.read("releases/0.4.0.yaml"), "validated lockfile\n");
    assert!(!p.path().join("out").exists(), "nothing is written");
}

fn lock_args(digest: &str) -> Vec<String> {
    ["lock", "--version", "0.4.0"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            ["identity", "gateway", "worker"]
                .iter()
                .flat_map(|c| ["--digest".to_owned(), format!("{c}={digest}")]),
        )
        .collect()
}

#[test]
fn racing_locks_of_one_new_version_have_one_winner_and_the_loser_is_refused() {
    for round in 0..5 {
        let p = Project::platform();
        let digests = [D1, D2, D3];
        let children: Vec<_> = digests
            .iter()
            .map(|d| {
                rel_command(p.path())
                    .args(lock_args(d))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.status.code() == Some(0))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outputs:?}");
        for (i, o) in outputs.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(o.status.code(), Some(1), "round {round}: {o:?}");
                assert!(
                    String::from_utf8_lossy(&o.stderr)
                        .contains("already exists with different content"),
                    "{o:?}"
                );
            }
        }
        let text = p.read("releases/0.4.0.yaml");
        assert!(
            text.contains(digests[winners[0]]),
            "the winner's lockfile stands"
        );
        let names: Vec<_> = std::fs::read_dir(p.path().join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["0.4.0.yaml"], "no temporary files are left");
    }
}

#[test]
fn a_version_named_like_a_validation_record_is_refused() {
    let p = Project::platform();
    let mut args = lock_args(D1);
    args[2] = "1.0.0-rc.staging.validation".to_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = p.rel(&args);
    run.expect(2);
    assert!(
        run.stderr().contains("named like a validation record"),
        "{}",
        run.stderr()
    );
    assert!(!p.path().join("releases").exists());
}

#[test]
fn a_remote_that_git_would_read_as_an_option_is_refused_at_its_line() {
    let config = std::fs::read_to_string(repo_root().join("rel.toml")).unwrap();
    let p = Project::with_config(&format!(
        "{config}\n[forge]\nkind = \"github\"\nremote = \"-o\"\n"
    ));
    let run = p.rel(&["status"]);
    run.expect(2);
    assert!(
        run.stderr().contains("is not a git remote name") && run.stderr().contains("rel.toml:"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_promotion_cycle_and_self_promotion_are_refused_when_rel_toml_is_read() {
    let p = Project::with_config(
        "registry = \"r.example.com/p\"\n[environments.a]\npromotes-to = \"b\"\n[environments.b]\npromotes-to = \"a\"\n",
    );
    let run = p.rel(&["status"]);
    run.expect(2);
    assert!(
        run.stderr().contains("cycle: a -> b -> a") || run.stderr().contains("cycle: b -> a -> b"),
        "{}",
        run.stderr()
    );
    let p = Project::with_config(
        "registry = \"r.example.com/p\"\n[environments.a]\npromotes-to = \"a\"\n",
    );
    let run = p.rel(&["status"]);
    run.expect(2);
    assert!(
        run.stderr().contains("promotes to itself"),
        "{}",
        run.stderr()
    );
    let p = Project::with_config(
        "registry = \"r.example.com/p\"\n[environments.a]\npromotes-to = \"c\"\n[environments.b]\npromotes-to = \"c\"\n[environments.c]\n",
    );
    let run = p.rel(&["status"]);
    run.expect(2);
    assert!(
        run.stderr().contains("both promote to `c`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_reflected_token_never_leaks_even_in_part_or_when_short() {
    let s = Server::http(Router::new().route("/api/query", reflecting_gateway_route()));
    let p = Project::with_config(&format!(
        "registry = \"r.example.com/p\"\n[environments.staging]\n[environments.staging.smoke]\nbase-url = \"{}\"\ntimeout = \"3s\"\nretries = 1\n[[environments.staging.smoke.checks]]\nkind = \"query\"\nbody = '{{}}'\n",
        s.http_url()
    ));
    for token in ["Zq7tokenSECRETvalue0123456789", "Zq7sh"] {
        let run = rel_env(
            p.path(),
            &[
                "gate",
                "smoke",
                "--env",
                "staging",
                "--profile",
                "deep",
                "--format",
                "json",
            ],
            &[("REL_SMOKE_TOKEN", token)],
        );
        run.expect(1);
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(all.contains("500"), "{all}");
        // No 5-character piece of the token survives anywhere.
        for start in 0..token.len().saturating_sub(4) {
            let piece = &token[start..start + 5];
            assert!(!all.contains(piece), "`{piece}` of the token leaked: {all}");
        }
    }
}

/// A gateway that answers the query with an error page reflecting the Authorization header
/// exactly where the report cuts the body.
fn reflecting_gateway_route() -> axum::routing::MethodRouter {
    post(|headers: HeaderMap| async move {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}{auth} trailing", "x".repeat(185)),
        )
    })
}

#[test]
fn child_processes_do_not_inherit_rel_secrets() {
    // A kubeconfig exec credential plugin is a child rel starts: it records its environment.
    let p = Project::platform();
    let dump = p.path().join("plugin-env.txt");
    let plugin = p.write(
        "plugin.sh",
        &format!(
            "#!/bin/sh\nenv > '{}'\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"}}}}'\n",
            dump.display()
        ),
    );
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let down = crate::gates_server::closed_port();
    let kubeconfig = p.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            down,
            plugin.display()
        ),
    );
    let planted = [
        ("REL_MASTER_KEY", "Zq1planted-master-key"),
        ("REL_REGISTRY_PASSWORD", "Zq2planted-registry-password"),
        ("GITHUB_TOKEN", "Zq3planted-forge-token"),
        ("AZURE_CLIENT_SECRET", "Zq4planted-azure-secret"),
    ];
    let mut envs: Vec<(&str, &str)> = planted.to_vec();
    let kc = kubeconfig.display().to_string();
    envs.push(("KUBECONFIG", &kc));
    let run = rel_env(
        p.path(),
        &[
            "gate",
            "headroom",
            "--env",
            "staging",
            "--live",
            "--rendered",
            "/dev/null",
        ],
        &envs,
    );
    assert_eq!(run.code(), 2, "the API server is closed: {}", run.stderr());
    let seen = std::fs::read_to_string(&dump).expect("the exec plugin ran");
    assert!(seen.contains("PATH="), "{seen}");
    for (name, value) in planted {
        assert!(!seen.contains(value), "{name} reached the child: {seen}");
    }
}

/// `rel gate headroom` on the gates fixture with its rendered manifests edited by `edit`.
fn headroom_with(edit: impl Fn(&str) -> String) -> Run {
    let p = Project::from_fixture("gates/platform");
    p.write(
        "nodes.json",
        &std::fs::read_to_string(fixture("gates/cluster/nodes-and-pods.json")).unwrap(),
    );
    let rendered = std::fs::read_to_string(fixture("gates/rendered/staging.yaml")).unwrap();
    p.write("rendered.yaml", &edit(&rendered));
    p.rel(&[
        "gate",
        "headroom",
        "--env",
        "staging",
        "--rendered",
        "rendered.yaml",
        "--nodes",
        "nodes.json",
        "--fail",
    ])
}

#[test]
fn headroom_refuses_quantities_that_would_overflow_and_negative_requests() {
    // Two huge requests used to wrap around to nothing and pass.
    let run = headroom_with(|t| t.replacen("cpu: \"0.5\"", "cpu: 9.9e28", 1));
    run.expect(2);
    assert!(
        run.stderr().contains("Deployment/gateway")
            && run.stderr().contains("not a Kubernetes quantity"),
        "{}",
        run.stderr()
    );
    let run = headroom_with(|t| t.replacen("cpu: 250m", "cpu: -250m", 1));
    run.expect(2);
    assert!(run.stderr().contains("-250m"), "{}", run.stderr());
}

#[test]
fn headroom_counts_two_billion_replicas_without_materialising_them() {
    let run = headroom_with(|t| t.replacen("replicas: 3", "replicas: 2000000000", 1));
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    assert!(run.stdout().contains("surge pod(s)"), "{}", run.stdout());
}

/// `rel record` killed after writing the record and before committing leaves exactly what
/// `--no-commit` leaves: the rerun must commit it, not say "nothing to do".
#[test]
fn record_rerun_after_a_kill_between_write_and_commit_commits_it() {
    let p = crate::promote_support::GitProject::new();
    p.lock("0.4.0", [D4, D5, D6]);
    let ev = p.evidence("0.4.0", "staging");
    let ev = ev.to_str().unwrap();
    let args = [
        "record",
        "--version",
        "0.4.0",
        "--env",
        "staging",
        "--evidence",
        ev,
    ];
    let mut killed = args.to_vec();
    killed.push("--no-commit");
    p.rel(&killed).expect(0);
    let head = p.git(&["rev-parse", "HEAD"]);
    let rerun = p.rel(&args);
    rerun.expect(0);
    assert!(rerun.stdout().contains("committed "), "{}", rerun.stdout());
    assert_ne!(p.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        p.git(&["show", "--name-only", "--format=", "HEAD"]),
        "releases/0.4.0.staging.validation.yaml\nreleases/0.4.0.yaml"
    );
    // And a third run has nothing left to do.
    let again = p.rel(&args);
    again.expect(0);
    assert!(
        again.stdout().contains("nothing to do"),
        "{}",
        again.stdout()
    );
}

/// A branch ref lock left by a killed git: the refusal names the lock file and the command that
/// clears it, and after that the rerun goes through.
#[test]
fn a_stale_ref_lock_is_named_with_its_fix() {
    let p = crate::promote_support::GitProject::new().with_releases();
    let lock = p.path().join(".git/refs/heads/rel/promote/prod/0.4.0.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    let run = p.rel(&["promote", "--version", "0.4.0", "--env", "prod"]);
    run.expect(1);
    assert!(
        run.stderr().contains("is locked by")
            && run.stderr().contains(&format!("rm '{}'", lock.display())),
        "{}",
        run.stderr()
    );
    std::fs::remove_file(&lock).unwrap();
    p.rel(&["promote", "--version", "0.4.0", "--env", "prod"])
        .expect(0);
}

/// A lockfile writer killed mid-write leaves a temporary file; the next write sweeps it (its
/// process is gone) and git never sees it.
#[test]
fn a_killed_writers_temporary_file_is_swept_by_the_next_lock() {
    let p = Project::platform();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("releases/.0.4.0.yaml.rel-tmp-{dead}-0");
    p.write(&stale, "half a lockf");
    let args = lock_args(D1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.rel(&args).expect(0);
    assert!(!p.path().join(&stale).exists());
    let ignored = std::fs::read_to_string(repo_root().join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == ".*.rel-tmp-*"), "{ignored}");
}
