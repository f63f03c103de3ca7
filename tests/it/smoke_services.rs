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
    let config = std::fs::read_to_string(repo_root().join("rel.toml")).unwrap();
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
