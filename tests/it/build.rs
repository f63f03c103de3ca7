//! `rel build` against real parts: the services of this workspace, Debian's docker-registry,
//! and skopeo/umoci as independent checkers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A docker-registry (the CNCF distribution registry) on a free loopback port, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is needed (Debian package `docker-registry`; `cargo xtask test` installs it)");
        let registry = Registry {
            child,
            port,
            _dir: dir,
        };
        wait_for_http(&format!("127.0.0.1:{port}"), "/v2/", 200);
        registry
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on `addr` over plain HTTP/1.0; the status code, or None when it cannot connect.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for_http(addr: &str, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http_status(addr, path) == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr}{path} did not answer {want} within 30 s");
}

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rel"));
    cmd.args(args)
        .current_dir(dir)
        .env("REL_CARGO_TARGET_DIR", shared_cargo_target())
        .env("NO_COLOR", "1")
        .env_remove("REL_REGISTRY_USERNAME")
        .env_remove("REL_REGISTRY_PASSWORD")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("REL_PROJECT_DIR");
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

#[test]
fn build_push_lock_gate_inspect_run_and_reproduce_from_a_second_checkout() {
    let registry = Registry::start();
    let host = registry.host();
    let a = checkout(&host);

    // Build and push the three services.
    let run = rel_build(a.path(), &["build", "--push", "--tag", "1.0.0"], &[]);
    run.expect(0);
    let build = build_json(a.path());
    let components: Vec<&str> = build["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["gateway", "identity", "worker"]);
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
    let layout = work.path().join("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &reference,
            &format!("oci:{}:run", layout.display()),
        ],
    );
    let bundle = work.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:run", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let binary = bundle.join("rootfs/app/identity");
    assert!(binary.is_file(), "{} missing", binary.display());
    let port = free_port();
    let mut service = Command::new(&binary)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", work.path().join("db.sqlite"))
        .env(
            "IDENTITY_SIGNING_KEY_B64",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env(
            "IDENTITY_CLIENTS",
            "smoke:service_account:not-a-real-secret",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_status(&format!("127.0.0.1:{port}"), "/healthz") == Some(200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })();
    let _ = service.kill();
    let _ = service.wait();
    assert!(
        healthy,
        "the unpacked identity binary did not answer /healthz"
    );

    // The same push again uploads nothing.
    let again = rel_build(a.path(), &["build", "--push", "--tag", "1.0.0"], &[]);
    again.expect(0);
    let stderr = again.stderr();
    assert_eq!(stderr.matches("(0 blobs uploaded").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("tag unchanged").count(), 3, "{stderr}");

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
    for c in ["identity", "gateway", "worker"] {
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
