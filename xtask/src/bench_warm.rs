//! The no-change row of `cargo xtask bench build`: `rel build --push` of three services that
//! were already built and pushed, with warm cargo and a warm layer cache.
//!
//! A cargo workspace of three binaries (each embeds the bench's payload and its own name, so the
//! three layers differ: services the size of the real ones), committed in git, built and pushed
//! once. Each round then runs the same `rel build --push` again: cargo's freshness check, three
//! layer cache hits, three tag lookups that find the manifest unchanged. It also checks that the
//! no-change runs compressed nothing: a layer build renames a fresh blob into the cache, so the
//! blobs' modification times would move.
//!
//! Runs after `bench_trust`, which builds the release `rel` binary used here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use crate::bench_trust::{commit_all, quiet};

/// The services of the workspace, as in the repository's `rel.toml`.
const SERVICES: [&str; 3] = ["identity", "gateway", "worker"];

pub struct Rows {
    /// Median wall time of a no-change `rel build --push` of the three services.
    pub no_change: f64,
    /// Layer blobs written by the no-change runs (0: nothing was compressed).
    pub blobs_rewritten: usize,
}

pub fn run(
    root: &Path,
    host: &str,
    payload: &Path,
    work: &Path,
    rounds: usize,
) -> Result<Rows, String> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let rel = target_dir.join("release/rel");
    let ws = work.join("three-services-ws");
    let write = |rel_path: &str, text: String| {
        let path = ws.join(rel_path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{rel_path}: {e}"))
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n".into(),
    )?;
    let mut rel_toml = format!("registry = \"{host}/three\"\nrepo = \"example-org/three\"\n");
    for name in SERVICES {
        write(
            &format!("crates/{name}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )?;
        write(
            &format!("crates/{name}/src/main.rs"),
            format!(
                "static PAYLOAD: &[u8] = include_bytes!({:?});\nfn main() {{ println!(\"{name} {{}}\", std::hint::black_box(PAYLOAD).len()); }}\n",
                payload.display().to_string()
            ),
        )?;
        rel_toml.push_str(&format!("\n[components.{name}]\ncrate = \"{name}\"\n"));
    }
    rel_toml.push_str("\n[environments.prod]\noverlay = \"overlays/prod\"\n");
    write("rel.toml", rel_toml)?;
    write(".gitignore", "/target\n".into())?;
    quiet(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["generate-lockfile", "--offline"])
            .current_dir(&ws),
    )?;
    commit_all(&ws)?;
    let rel_build = || -> Result<f64, String> {
        let started = Instant::now();
        quiet(
            Command::new(&rel)
                .current_dir(&ws)
                .args(["build", "--push", "--tag", "v1"])
                .env_remove("REL_SIGNING_KEY"),
        )?;
        Ok(started.elapsed().as_secs_f64())
    };
    eprintln!("building and pushing three services once...");
    rel_build()?;
    let blobs = ws.join("target/rel/cache/blobs/sha256");
    let before = mtimes(&blobs)?;
    let mut times = Vec::new();
    for round in 0..rounds {
        eprintln!("no-change round {}/{rounds}...", round + 1);
        times.push(rel_build()?);
    }
    let after = mtimes(&blobs)?;
    let blobs_rewritten = after.iter().filter(|b| !before.contains(b)).count();
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Rows {
        no_change: times[times.len() / 2],
        blobs_rewritten,
    })
}

/// Every blob in `dir` with its modification time, sorted by name.
fn mtimes(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>, String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        out.push((entry.path(), modified));
    }
    out.sort();
    Ok(out)
}
