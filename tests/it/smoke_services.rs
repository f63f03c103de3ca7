//! `rel gate smoke` against the platform's real services (identity, worker, gateway) started as
//! processes on loopback, and its deep report accepted by `rel record` as evidence.

use std::path::PathBuf;
use std::process::Command;

use test_support::Service;

use crate::support::*;

/// The service binaries: prebuilt by `cargo xtask test` (REL_SERVICES_BIN_DIR), else built here.
fn service_bins() -> PathBuf {
    if let Some(dir) = std::env::var_os("REL_SERVICES_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = repo_root().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for args in [
        &["-p", "identity", "--bin", "identity"][..],
        &["-p", "node", "--bin", "gateway", "--features", "gateway"],
        &["-p", "node", "--bin", "worker", "--features", "worker"],
    ] {
        let status = Command::new(&cargo)
            .arg("build")
            .arg("--quiet")
            .args(args)
            .arg("--target-dir")
            .arg(&target)
            .current_dir(repo_root())
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "cargo build {args:?}");
    }
    target.join("debug")
}

const SECRET: &str = "smoke-client-secret-0123456789";

struct Platform {
    identity: u16,
    worker: u16,
    gateway: u16,
    /// identity, worker, gateway: each bound on port 0 and ready (`/readyz` 200).
    services: Vec<Service>,
    _dir: tempfile::TempDir,
}

fn platform() -> Platform {
    let bins = service_bins();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("platform.db").display());
    let migrate = Command::new(bins.join("identity"))
        .arg("migrate")
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "identity migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let identity = Service::start(
        &bins.join("identity"),
        &log("identity"),
        &[
            ("DATABASE_URL", db.clone()),
            (
                "IDENTITY_SIGNING_KEY_B64",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            ),
            (
                "IDENTITY_CLIENTS",
                format!("smoke:service_account:{SECRET}"),
            ),
        ],
    );
    let worker = Service::start(
        &bins.join("worker"),
        &log("worker"),
        &[
            ("DATABASE_URL", db.clone()),
            ("WORKER_ID", "worker-1".into()),
        ],
    );
    let gateway = Service::start(
        &bins.join("gateway"),
        &log("gateway"),
        &[
            ("DATABASE_URL", db),
            (
                "IDENTITY_JWKS_URL",
                format!("{}/.well-known/jwks.json", identity.url()),
            ),
            ("WORKER_URL", worker.url()),
        ],
    );
    Platform {
        identity: identity.port,
        worker: worker.port,
        gateway: gateway.port,
        services: vec![identity, worker, gateway],
        _dir: dir,
    }
}

fn token(identity: u16) -> String {
    let resp: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{identity}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "smoke"),
            ("client_secret", SECRET),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    resp["access_token"].as_str().expect("a token").to_owned()
}

fn project(p: &Platform) -> Project {
    let config = services_config();
    // This repository's rel.toml, with the staging smoke checks pointed at the local services.
    let config = config
        .split("\n[environments.staging.smoke]")
        .next()
        .unwrap()
        .to_owned();
    let (i, w, g) = (p.identity, p.worker, p.gateway);
    let smoke = format!(
        r#"
[environments.staging.smoke]
base-url = "http://127.0.0.1:{g}"
timeout = "5s"

[[environments.staging.smoke.checks]]
name = "identity readyz"
kind = "readyz"
url = "http://127.0.0.1:{i}/readyz"

[[environments.staging.smoke.checks]]
name = "worker readyz"
kind = "readyz"
url = "http://127.0.0.1:{w}/readyz"

[[environments.staging.smoke.checks]]
name = "gateway readyz"
kind = "readyz"

[[environments.staging.smoke.checks]]
kind = "jwks"
url = "http://127.0.0.1:{i}/.well-known/jwks.json"

[[environments.staging.smoke.checks]]
kind = "version"
json-field = "/version"

[[environments.staging.smoke.checks]]
name = "query through the gateway"
kind = "query"
path = "/api/query"
body = '{{"query": "count the nodes"}}'
json-field = "/worker_id"
equals = "worker-1"
"#
    );
    // Keep the environments' other sections: append the smoke section after them.
    Project::with_config(&format!("{config}{smoke}"))
}

#[test]
fn deep_smoke_against_the_real_services_is_evidence_for_record() {
    let mut platform = platform();
    let p = project(&platform);
    let token = token(platform.identity);
    // The release is locked first: the deep report is bound to the lockfile's bytes.
    p.rel(&[
        "lock",
        "--version",
        "0.1.0",
        "--digest",
        &format!("identity={D1}"),
        "--digest",
        &format!("gateway={D2}"),
        "--digest",
        &format!("worker={D3}"),
    ])
    .expect(0);

    // Deep, with the token in the environment: every check runs and passes.
    let out = rel_command(p.path())
        .args([
            "gate",
            "smoke",
            "--env",
            "staging",
            "--profile",
            "deep",
            "--version",
            "0.1.0",
            "--format",
            "json",
        ])
        .env("REL_SMOKE_TOKEN", &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(&token) && !String::from_utf8_lossy(&out.stderr).contains(&token),
        "the token leaked"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["summary"]["pass"], 6, "{stdout}");
    assert_eq!(report["context"]["profile"], "deep");
    assert!(stdout.contains("worker-1"), "{stdout}");
    p.write("evidence/smoke.json", &stdout);

    // That report is the evidence `rel record` accepts.
    let record = p.rel(&[
        "record",
        "--version",
        "0.1.0",
        "--env",
        "staging",
        "--evidence",
        "evidence/smoke.json",
        "--no-commit",
    ]);
    record.expect(0);
    assert!(
        p.path()
            .join("releases/0.1.0.staging.validation.yaml")
            .is_file()
    );

    // Deep without a token: the authenticated query is a FAIL, not a SKIP.
    let run = p.rel(&[
        "gate",
        "smoke",
        "--env",
        "staging",
        "--profile",
        "deep",
        "--version",
        "0.1.0",
    ]);
    run.expect(1);
    assert!(
        run.stdout().contains("FAIL query through the gateway"),
        "{}",
        run.stdout()
    );
    // Baseline without a token: a SKIP, and the run passes.
    let run = p.rel(&["gate", "smoke", "--env", "staging", "--profile", "baseline"]);
    run.expect(0);
    assert!(
        run.stdout().contains("SKIP query through the gateway"),
        "{}",
        run.stdout()
    );

    // The worker goes down: its readyz and the query through the gateway fail.
    platform.services.remove(1);
    let out = rel_command(p.path())
        .args([
            "gate",
            "smoke",
            "--env",
            "staging",
            "--profile",
            "deep",
            "--version",
            "0.1.0",
        ])
        .env("REL_SMOKE_TOKEN", &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL worker readyz"), "{stdout}");
    assert!(
        stdout.contains("FAIL query through the gateway"),
        "{stdout}"
    );
}

/// The `deploy-gate` AnalysisTemplate's Job, as the kubelet would start it for one Rollout's
/// analysis: the container's args with the Rollout's analysis args substituted, the ConfigMap
/// and Secret volumes written to temporary directories in place of their mount paths.
struct GateJob {
    args: Vec<String>,
    /// The `--base-url` the Job would use in the cluster.
    cluster_url: String,
    _mounts: tempfile::TempDir,
}

fn gate_job(rollout: &str, token: &str) -> GateJob {
    let root = repo_root();
    let run = rel_in(&root, &["render", "--env", "staging"]);
    run.expect(0);
    let objects = rel::manifests::parse_manifests(&run.stdout(), "staging").unwrap();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
            .clone()
    };
    let r = find("Rollout", rollout);
    let strategy = &r["spec"]["strategy"];
    let analysis = if strategy.get("blueGreen").is_some() {
        &strategy["blueGreen"]["prePromotionAnalysis"]
    } else {
        &strategy["canary"]["analysis"]
    };
    let template_name = analysis["templates"][0]["templateName"].as_str().unwrap();
    let at = find("AnalysisTemplate", template_name);
    // Argument values: the template's defaults, then the Rollout's (a fieldRef reads the Rollout).
    let mut values: Vec<(String, String)> = Vec::new();
    for a in at["spec"]["args"].as_array().unwrap() {
        if let Some(v) = a["value"].as_str() {
            values.push((a["name"].as_str().unwrap().to_owned(), v.to_owned()));
        }
    }
    for a in analysis["args"].as_array().unwrap() {
        let v = match a["value"].as_str() {
            Some(v) => v.to_owned(),
            None => {
                let path = a["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap();
                let pointer = format!("/{}", path.replace('.', "/"));
                r.pointer(&pointer).unwrap().as_str().unwrap().to_owned()
            }
        };
        values.push((a["name"].as_str().unwrap().to_owned(), v));
    }
    let substitute = |s: &str| {
        let mut s = s.to_owned();
        for (k, v) in &values {
            s = s.replace(&format!("{{{{args.{k}}}}}"), v);
        }
        assert!(!s.contains("{{"), "an argument is not passed: {s}");
        s
    };
    let pod = &at["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // The mounts: each volume's files in a directory of its own.
    let mounts = tempfile::tempdir().unwrap();
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for m in container["volumeMounts"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        let dir = mounts.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(cm) = volume["configMap"]["name"].as_str() {
            for (key, text) in find("ConfigMap", cm)["data"].as_object().unwrap() {
                std::fs::write(dir.join(key), text.as_str().unwrap()).unwrap();
            }
        } else if volume["secret"]["secretName"].as_str().is_some() {
            // The Secret is synced in the cluster; here it holds the identity token.
            std::fs::write(dir.join("token"), token).unwrap();
        } else {
            panic!("a volume the test cannot provide: {volume}");
        }
        paths.push((m["mountPath"].as_str().unwrap().to_owned(), dir));
    }
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| substitute(a.as_str().unwrap()))
        .collect();
    for a in &mut args {
        for (mount, dir) in &paths {
            if let Some(rest) = a.strip_prefix(mount.as_str()) {
                *a = format!("{}{rest}", dir.display());
            }
        }
    }
    let at_url = args.iter().position(|a| a == "--base-url").unwrap() + 1;
    let cluster_url = args[at_url].clone();
    GateJob {
        args,
        cluster_url,
        _mounts: mounts,
    }
}

impl GateJob {
    /// Runs the Job's command with the Service's cluster address answered by `url` (this
    /// machine has no cluster DNS). Returns the exit code and the output.
    fn run(&self, url: &str) -> (i32, String) {
        let mut args = self.args.clone();
        let at = args.iter().position(|a| a == "--base-url").unwrap() + 1;
        args[at] = url.to_owned();
        // No project here: the Job's image has none; rel reads the mounted rel.toml (-C).
        let empty = tempfile::tempdir().unwrap();
        let out = rel_command(empty.path()).args(&args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

#[test]
fn deploy_gate_job_command_passes_on_healthy_services_and_fails_when_the_worker_is_down() {
    let mut platform = platform();
    let token = token(platform.identity);
    let gateway = gate_job("gateway", &token);
    let worker = gate_job("worker", &token);
    // The Job reaches the preview and canary Services by cluster DNS, never a public host.
    assert_eq!(
        gateway.cluster_url,
        "http://gateway-preview.platform-staging.svc.cluster.local:80"
    );
    assert_eq!(
        worker.cluster_url,
        "http://worker-canary.platform-staging.svc.cluster.local:80"
    );
    assert!(gateway.args.contains(&"deep".to_owned()));

    let gateway_url = format!("http://127.0.0.1:{}", platform.gateway);
    let worker_url = format!("http://127.0.0.1:{}", platform.worker);
    for (job, url, rows) in [(&gateway, &gateway_url, 3), (&worker, &worker_url, 3)] {
        let (code, out) = job.run(url);
        assert_eq!(code, 0, "the Job succeeds (measurement Successful):\n{out}");
        assert!(out.contains(&format!("{rows} passed, 0 failed")), "{out}");
        assert!(!out.contains(&token), "the token leaked:\n{out}");
    }

    // Without the token the deep gate fails: the Secret is what makes it pass.
    let no_token = gate_job("gateway", "");
    let (code, out) = no_token.run(&gateway_url);
    assert_ne!(code, 0, "{out}");

    // The worker goes down: both Jobs fail (measurement Failed).
    platform.services.remove(1);
    let (code, out) = gateway.run(&gateway_url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL query through the gateway"), "{out}");
    let (code, out) = worker.run(&worker_url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL worker readyz"), "{out}");
}
