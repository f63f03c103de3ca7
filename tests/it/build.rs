//! `rel build` against real parts: the services of this workspace, Debian's docker-registry,
//! and skopeo/umoci as independent checkers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

use test_support::{Registry, Service, wait_until_answers};

/// A checkout of this workspace at a fresh path: the tracked and untracked (not ignored) files,
/// committed with a fixed author and date so every checkout has the same commit id.
fn checkout(registry: &str) -> tempfile::TempDir {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = std::str::from_utf8(rel).unwrap();
        let (from, to) = (root.join(rel), dir.path().join(rel));
        if !from.is_file() {
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    let config = std::fs::read_to_string(dir.path().join("rel.toml")).unwrap();
    let config = config.replace(
        "registry = \"registry.example.com/platform\"",
        &format!("registry = \"{registry}/platform\""),
    );
    std::fs::write(dir.path().join("rel.toml"), config).unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=rel-test",
            "-c",
            "user.email=rel-test@example.com",
            "commit",
            "-q",
            "-m",
            "checkout",
        ],
    ] {
        let status = Command::new("git")
            .args(&args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
    dir
}

/// Run rel in `dir` with the shared cargo target directory (dependencies compile once).
fn rel_build(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = rel_command(dir);
    cmd.args(args)
        .env("REL_CARGO_TARGET_DIR", shared_cargo_target());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output: cmd.output().unwrap(),
    }
}

fn shared_cargo_target() -> PathBuf {
    repo_root().join("target").join("rel-it-cargo")
}

fn build_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("target/rel/build.json")).unwrap())
        .unwrap()
}

fn digest_of(build: &serde_json::Value, component: &str) -> String {
    build["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == component)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed (Debian package `{name}`; `cargo xtask test` installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `skopeo copy` of `reference` into an OCI layout under `work` (tag `name`), then `umoci unpack`
/// into `work/<name>-bundle`: the image's root filesystem, as a runtime would see it.
fn unpack(reference: &str, work: &Path, name: &str) -> PathBuf {
    let layout = work.join("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            reference,
            &format!("oci:{}:{name}", layout.display()),
        ],
    );
    let bundle = work.join(format!("{name}-bundle"));
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{name}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

/// The `.dep-v0` list of `binary`, read by cargo auditable's own reader (which checks one root
/// and no cycle), checked against the workspace at `ws`: the root is the crate `root`, a path
/// package; every package is at its Cargo.lock version; no dev-dependency is listed.
fn dep_list(binary: &Path, ws: &Path, root: &str) -> serde_json::Value {
    let info = auditable_info::audit_info_from_file(binary, Default::default())
        .unwrap_or_else(|e| panic!("{}: no dependency list: {e}", binary.display()));
    let info = serde_json::to_value(&info).unwrap();
    let lock: toml::Table = std::fs::read_to_string(ws.join("Cargo.lock"))
        .unwrap()
        .parse()
        .unwrap();
    let locked: std::collections::BTreeSet<(&str, &str)> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect();
    let packages = info["packages"].as_array().unwrap();
    for p in packages {
        let key = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
        assert!(locked.contains(&key), "{key:?} is not in Cargo.lock");
        assert_ne!(key.0, "test-support", "a dev-dependency is listed");
    }
    let roots: Vec<_> = packages.iter().filter(|p| p["root"] == true).collect();
    assert_eq!(roots.len(), 1, "{info:#}");
    assert_eq!(roots[0]["name"], root);
    assert_eq!(roots[0]["source"], "local");
    info
}

/// The package `name` of a `.dep-v0` list.
fn package(info: &serde_json::Value, name: &str) -> serde_json::Value {
    info["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the dependency list"))
        .clone()
}

#[test]
fn build_push_lock_gate_inspect_run_and_reproduce_from_a_second_checkout() {
    let registry = Registry::start();
    let host = registry.host();
    let a = checkout(&host);

    // Build and push the three services and rel itself.
    let run = rel_build(a.path(), &["build", "--push", "--tag", "1.0.0"], &[]);
    run.expect(0);
    let build = build_json(a.path());
    let components: Vec<&str> = build["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["gateway", "identity", "rel", "worker"]);
    assert!(
        build["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["published"] == "registry")
    );

    // Lock the result and gate it.
    let lock = rel_in(
        a.path(),
        &[
            "lock",
            "--version",
            "1.0.0",
            "--from",
            "target/rel/build.json",
        ],
    );
    lock.expect(0);
    rel_in(a.path(), &["gate", "coherence", "--version", "1.0.0"]).expect(0);

    // skopeo sees our digest and our config.
    let identity = digest_of(&build, "identity");
    let reference = format!("docker://{host}/platform/identity:1.0.0");
    let inspect: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--tls-verify=false", &reference],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], identity.as_str());
    let config: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--tls-verify=false", "--config", &reference],
    ))
    .unwrap();
    assert_eq!(config["config"]["User"], "65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app/identity"])
    );
    assert_eq!(config["architecture"], "amd64");

    // skopeo copy + umoci unpack give a root filesystem whose binary starts and answers /healthz.
    let work = tempfile::tempdir().unwrap();
    let binary = unpack(&reference, work.path(), "identity").join("app/identity");
    assert!(binary.is_file(), "{} missing", binary.display());
    // It carries its dependency list as cargo auditable does (`.dep-v0`).
    let deps = dep_list(&binary, a.path(), "identity");
    let serde = package(&deps, "serde");
    assert_eq!(
        serde["kind"],
        serde_json::Value::Null,
        "a runtime dependency: {serde}"
    );
    assert_eq!(
        package(&deps, "serde_derive")["kind"],
        "build",
        "a proc macro"
    );
    // The binary from the image runs and answers: bound on port 0, its address read from its log.
    let log = work.path().join("identity.log");
    let service = Service::spawn(
        &binary,
        &log,
        &[
            (
                "DATABASE_URL",
                work.path().join("db.sqlite").display().to_string(),
            ),
            (
                "IDENTITY_SIGNING_KEY_B64",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            ),
            (
                "IDENTITY_CLIENTS",
                "smoke:service_account:not-a-real-secret".into(),
            ),
        ],
    );
    wait_until_answers(service.port, "/healthz", 200, Duration::from_secs(20), &log);

    // rel's own image (the in-cluster deploy gate runs it): unpacked the same way, its static
    // binary runs `rel gate smoke` from the root filesystem with nothing else in the environment,
    // against the identity service that runs from its image: exit 0 while it answers, 1 after.
    let rel_image = format!("docker://{host}/platform/rel:1.0.0");
    let rel_config: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--tls-verify=false", "--config", &rel_image],
    ))
    .unwrap();
    assert_eq!(rel_config["config"]["User"], "65532");
    assert_eq!(
        rel_config["config"]["Entrypoint"],
        serde_json::json!(["/app/rel"])
    );
    let rel_bin = unpack(&rel_image, work.path(), "rel").join("app/rel");
    package(&dep_list(&rel_bin, a.path(), "rel"), "oci");
    let gate = |args: &[&str]| {
        Command::new(&rel_bin)
            .args(args)
            .env_clear()
            .env("NO_COLOR", "1")
            .current_dir(work.path())
            .output()
            .unwrap()
    };
    let help = gate(&["gate", "smoke", "--help"]);
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("--base-url") && help.contains("--token-file"),
        "{help}"
    );
    let checks = work.path().join("gate");
    std::fs::create_dir(&checks).unwrap();
    std::fs::write(
        checks.join("rel.toml"),
        "registry = \"registry.example.com/platform\"\n\n\
         [environments.identity.smoke]\ntimeout = \"5s\"\n\n\
         [[environments.identity.smoke.checks]]\nname = \"identity healthz\"\nkind = \"readyz\"\npath = \"/healthz\"\n\n\
         [[environments.identity.smoke.checks]]\nkind = \"jwks\"\npath = \"/.well-known/jwks.json\"\n",
    )
    .unwrap();
    let base_url = format!("http://127.0.0.1:{}", service.port);
    let smoke = [
        "-C",
        checks.to_str().unwrap(),
        "gate",
        "smoke",
        "--env",
        "identity",
        "--base-url",
        &base_url,
        "--format",
        "json",
    ];
    let healthy = gate(&smoke);
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");
    let report: serde_json::Value = serde_json::from_slice(&healthy.stdout).unwrap();
    assert_eq!(report["checks"].as_array().unwrap().len(), 2, "{report}");
    drop(service);
    let down = gate(&smoke);
    assert_eq!(down.status.code(), Some(1), "{down:?}");

    // The same push again uploads nothing.
    let again = rel_build(a.path(), &["build", "--push", "--tag", "1.0.0"], &[]);
    again.expect(0);
    let stderr = again.stderr();
    assert_eq!(stderr.matches("(0 blobs uploaded").count(), 4, "{stderr}");
    assert_eq!(stderr.matches("tag unchanged").count(), 4, "{stderr}");

    // The tag is immutable: another digest under the same tag is refused, naming both.
    let other = rel_build(
        a.path(),
        &["build", "--push", "--tag", "1.0.0", "--component", "worker"],
        &[("SOURCE_DATE_EPOCH", "1000")],
    );
    other.expect(1);
    let worker = digest_of(&build, "worker");
    assert!(
        other.stderr().contains(&format!(
            "platform/worker:1.0.0` already points at {worker}; this build is sha256:"
        )),
        "{}",
        other.stderr()
    );
    assert_eq!(
        digest_of(&build_json(a.path()), "worker"),
        worker,
        "a refused push leaves build.json as it was"
    );

    // A second checkout (a clone: the same commit) at another path builds the same digests.
    let b = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(a.path())
        .arg(b.path().join("ws"))
        .status()
        .unwrap();
    assert!(status.success());
    let b_ws = b.path().join("ws");
    rel_build(&b_ws, &["build", "--tag", "1.0.0"], &[]).expect(0);
    let build_b = build_json(&b_ws);
    for c in ["identity", "gateway", "worker", "rel"] {
        assert_eq!(
            digest_of(&build_b, c),
            digest_of(&build, c),
            "{c} differs between checkouts"
        );
    }
    assert!(
        build_b["components"][0]["published"]
            .as_str()
            .unwrap()
            .starts_with("oci-layout:")
    );
    // ...and that layout is readable by skopeo.
    let layout_b = b_ws.join("target/rel/oci/identity");
    let inspect_b: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", &format!("oci:{}:1.0.0", layout_b.display())],
    ))
    .unwrap();
    assert_eq!(inspect_b["Digest"], identity.as_str());
}
