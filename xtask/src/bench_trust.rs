//! The signing rows of `cargo xtask bench build`: what a signing key adds to `rel build --push`
//! (cosign signature, SLSA provenance in DSSE, CycloneDX SBOM from `cargo metadata`, all pushed
//! and attached), and what `rel verify` of that release costs.
//!
//! A small cargo workspace of three binaries (`app`, `app2`, `app3`: three services), each
//! embedding the bench's 10 MiB payload (an image the size of a service), committed in git,
//! built once to warm cargo and the layer cache. Each round then pushes to new repositories
//! without and with `REL_SIGNING_KEY`, once one component (`--component app`) and once all three:
//! every run is cargo's freshness check + a layer cache hit + a cold push, so the difference of
//! a pair is the signing. The rel binary is built in release mode.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub struct Rows {
    /// One component, without and with a signing key.
    pub plain: f64,
    pub signed: f64,
    /// All three components, without and with a signing key.
    pub plain_all: f64,
    pub signed_all: f64,
    /// `rel verify` of the three-image release.
    pub verify: f64,
    /// `rel promote` of a signed three-image release (commit on the promotion branch), without
    /// `[trust]` and with it (which runs `rel verify` first).
    pub promote: f64,
    pub promote_trusted: f64,
}

/// The registry (path prefix) of the release the promotion rows promote.
const PROMOTE_REGISTRY: &str = "promote";

/// The bench workspace's components.
const APPS: [&str; 3] = ["app", "app2", "app3"];

pub fn run(
    root: &Path,
    host: &str,
    payload: &Path,
    work: &Path,
    rounds: usize,
) -> Result<Rows, String> {
    eprintln!("building rel (release) for the signing rows...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "rel", "--bin", "rel"])
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_MANIFEST_PATH")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_CRATE_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building rel (release) failed".into());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let rel = target_dir.join("release/rel");

    let ws = work.join("signing-ws");
    std::fs::create_dir_all(ws.join("crates/app/src")).map_err(|e| e.to_string())?;
    let write = |rel_path: &str, text: String| {
        std::fs::write(ws.join(rel_path), text).map_err(|e| format!("{rel_path}: {e}"))
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n".into(),
    )?;
    for app in APPS {
        std::fs::create_dir_all(ws.join(format!("crates/{app}/src"))).map_err(|e| e.to_string())?;
        write(
            &format!("crates/{app}/Cargo.toml"),
            format!("[package]\nname = \"{app}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )?;
        write(
            &format!("crates/{app}/src/main.rs"),
            format!(
                "static PAYLOAD: &[u8] = include_bytes!({:?});\nfn main() {{ println!(\"{app} {{}}\", std::hint::black_box(PAYLOAD).len()); }}\n",
                payload.display().to_string()
            ),
        )?;
    }
    write(".gitignore", "/target\n".into())?;
    quiet(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["generate-lockfile", "--offline"])
            .current_dir(&ws),
    )?;
    let keys = work.join("signing-keys");
    std::fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
    quiet(
        Command::new(&rel)
            .args(["keygen", "--signing", "-o"])
            .arg(keys.join("k"))
            .current_dir(&keys),
    )?;
    let key = std::fs::read_to_string(keys.join("k")).map_err(|e| e.to_string())?;
    let public = std::fs::read_to_string(keys.join("k.pub"))
        .map_err(|e| e.to_string())?
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let components: String = APPS
        .iter()
        .map(|app| format!("[components.{app}]\ncrate = \"{app}\"\n\n"))
        .collect();
    write(
        "rel.toml",
        format!(
            "registry = \"{host}/warm\"\nrepo = \"example-org/app\"\n\n{components}\
             [environments.staging]\noverlay = \"overlays/staging\"\npromotes-to = \"prod\"\n\n\
             [environments.prod]\noverlay = \"overlays/prod\"\n\n[trust]\nkeys = [\"{public}\"]\n"
        ),
    )?;
    // The overlays the promotion rows pin: each names the three images of the `promote`
    // registry at an older digest.
    let images: String = APPS
        .iter()
        .map(|app| {
            format!(
                "  - name: {host}/{PROMOTE_REGISTRY}/{app}\n    digest: sha256:{}\n",
                "0".repeat(64)
            )
        })
        .collect();
    for env in ["staging", "prod"] {
        std::fs::create_dir_all(ws.join(format!("overlays/{env}"))).map_err(|e| e.to_string())?;
        write(
            &format!("overlays/{env}/kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployments.yaml\nimages:\n{images}"
            ),
        )?;
        let deployments: String = APPS
            .iter()
            .map(|app| {
                format!(
                    "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers:\n        - name: {app}\n          image: {host}/{PROMOTE_REGISTRY}/{app}\n"
                )
            })
            .collect();
        write(&format!("overlays/{env}/deployments.yaml"), deployments)?;
    }
    commit_all(&ws)?;
    let rel_build = |registry: &str, signed: bool| -> Result<f64, String> {
        let mut cmd = Command::new(&rel);
        cmd.current_dir(&ws)
            .args(["build", "--push", "--tag", "v1", "--registry", registry])
            .env_remove("REL_SIGNING_KEY");
        // `one-*` registries: only the first component; the others: all three.
        if registry.contains("/one-") {
            cmd.args(["--component", APPS[0]]);
        }
        if signed {
            cmd.env("REL_SIGNING_KEY", &key);
        }
        let started = Instant::now();
        quiet(&mut cmd)?;
        let secs = started.elapsed().as_secs_f64();
        if signed && !registry.contains("/one-") {
            // The lock below takes the signed three-image build's result.
            let round = registry.rsplit('-').next().unwrap_or_default();
            std::fs::copy(
                ws.join("target/rel/build.json"),
                work.join(format!("signed-{round}.json")),
            )
            .map_err(|e| format!("copy build.json: {e}"))?;
        }
        Ok(secs)
    };
    eprintln!("warming cargo and the layer cache...");
    rel_build(&format!("{host}/warm"), false)?;
    // The image must be the payload's size: an optimizer that drops the unused bytes would
    // make every row measure a small image.
    let built = std::fs::metadata(ws.join("target/rel/bin/app/app"))
        .map_err(|e| format!("the built app: {e}"))?
        .len();
    let wanted = std::fs::metadata(payload).map_err(|e| e.to_string())?.len();
    if built < wanted {
        return Err(format!(
            "the bench binary is {built} bytes, smaller than its {wanted}-byte payload"
        ));
    }
    let (mut plain, mut signed, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plain_all, mut signed_all) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!("signing round {}/{rounds}...", round + 1);
        // Alternate the order so neither run always follows the other.
        let mut runs = [
            (format!("{host}/one-plain-{round}"), false, &mut plain),
            (format!("{host}/one-signed-{round}"), true, &mut signed),
            (format!("{host}/plain-{round}"), false, &mut plain_all),
            // The lock below takes this (three-image) build's result.
            (format!("{host}/signed-{round}"), true, &mut signed_all),
        ];
        if round % 2 == 1 {
            runs.swap(0, 1);
            runs.swap(2, 3);
        }
        for (registry, sign, into) in runs {
            into.push(rel_build(&registry, sign)?);
        }
        let version = format!("1.0.{round}");
        quiet(
            Command::new(&rel)
                .current_dir(&ws)
                .args(["lock", "--version", &version, "--from"])
                .arg(work.join(format!("signed-{round}.json")))
                .env("REL_SIGNING_KEY", &key),
        )?;
        let started = Instant::now();
        quiet(
            Command::new(&rel)
                .current_dir(&ws)
                .args(["verify", "--version", &version, "--format", "json"])
                .env_remove("REL_SIGNING_KEY"),
        )?;
        verify.push(started.elapsed().as_secs_f64());
    }
    let (promote, promote_trusted) = promote_rows(&rel, &ws, work, host, &key, rounds)?;
    Ok(Rows {
        promote,
        promote_trusted,
        plain: median(&mut plain),
        signed: median(&mut signed),
        plain_all: median(&mut plain_all),
        signed_all: median(&mut signed_all),
        verify: median(&mut verify),
    })
}

/// `rel promote --version 2.0.0 --env prod` of a signed three-image release validated in staging
/// (signed lockfile and record), in the bench workspace (with `[trust]`) and in a clone of it
/// without `[trust]`: medians of `rounds` runs each, alternating. Each run commits the pin on the
/// promotion branch (the branch is deleted between runs, so every run does the same work).
fn promote_rows(
    rel: &Path,
    ws: &Path,
    work: &Path,
    host: &str,
    key: &str,
    rounds: usize,
) -> Result<(f64, f64), String> {
    eprintln!("preparing the promotion rows...");
    let signed = |args: &[&str]| {
        quiet(
            Command::new(rel)
                .current_dir(ws)
                .args(args)
                .env("REL_SIGNING_KEY", key),
        )
    };
    let registry = format!("{host}/{PROMOTE_REGISTRY}");
    signed(&["build", "--push", "--tag", "v2", "--registry", &registry])?;
    signed(&[
        "lock",
        "--version",
        "2.0.0",
        "--from",
        "target/rel/build.json",
    ])?;
    git(ws, &["add", "releases"])?;
    git(ws, &["commit", "-q", "-m", "release 2.0.0"])?;
    let evidence = work.join("promote-evidence.json");
    crate::bench_git::write_evidence(&ws.join("releases/2.0.0.yaml"), "2.0.0", &evidence)?;
    let evidence = evidence.to_string_lossy().into_owned();
    signed(&[
        "record",
        "--version",
        "2.0.0",
        "--env",
        "staging",
        "--evidence",
        &evidence,
    ])?;
    // The same repository without [trust].
    let plain_ws = work.join("signing-ws-untrusted");
    let _ = std::fs::remove_dir_all(&plain_ws);
    quiet(
        Command::new("git")
            .arg("clone")
            .arg("-q")
            .arg(ws)
            .arg(&plain_ws),
    )?;
    let config = std::fs::read_to_string(plain_ws.join("rel.toml")).map_err(|e| e.to_string())?;
    let untrusted = config
        .split("[trust]")
        .next()
        .unwrap_or_default()
        .to_owned();
    std::fs::write(plain_ws.join("rel.toml"), untrusted).map_err(|e| e.to_string())?;
    git(&plain_ws, &["commit", "-q", "-am", "no trust"])?;

    let promote = |dir: &Path| -> Result<f64, String> {
        // A fresh promotion each time: the previous run's branch goes first.
        let _ = Command::new("git")
            .args(["branch", "-q", "-D", "rel/promote/prod/2.0.0"])
            .current_dir(dir)
            .output();
        let mut cmd = Command::new(rel);
        cmd.current_dir(dir)
            .args(["promote", "--version", "2.0.0", "--env", "prod"])
            .env_remove("REL_SIGNING_KEY");
        let started = Instant::now();
        quiet(&mut cmd)?;
        Ok(started.elapsed().as_secs_f64())
    };
    // One untimed run each: git's and the page cache's first touches.
    promote(&plain_ws)?;
    promote(ws)?;
    let (mut plain, mut trusted) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            plain.push(promote(&plain_ws)?);
            trusted.push(promote(ws)?);
        } else {
            trusted.push(promote(ws)?);
            plain.push(promote(&plain_ws)?);
        }
    }
    Ok((median(&mut plain), median(&mut trusted)))
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    quiet(
        Command::new("git")
            .args([
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.com",
            ])
            .args(args)
            .current_dir(dir),
    )
}

/// Runs `cmd`; its output only when it fails.
pub(crate) fn quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// `git init` the bench workspace `ws` and commit everything in it (rel builds from a commit).
pub(crate) fn commit_all(ws: &std::path::Path) -> Result<(), String> {
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-q",
            "-m",
            "bench",
        ],
    ] {
        quiet(Command::new("git").args(&args).current_dir(ws))?;
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
