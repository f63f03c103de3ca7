//! `cargo xtask bench git`: rel's git paths against git itself.
//!
//! 1. `rel audit --format json` over a 10,000-commit history (one commit in ten carries rel
//!    trailers) against `git log` extracting the same trailers. Goal: no slower than git.
//! 2. `rel promote --dry-run` of a 50-component release. Goal: under 200 ms.
//!
//! Builds rel with `--release` (pass `--dev` to use the debug build) and reports medians.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COMMITS: usize = 10_000;
const COMPONENTS: usize = 50;
const RUNS: usize = 7;

pub fn run(args: &[String]) -> Result<(), String> {
    let dev = args.iter().any(|a| a == "--dev");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .current_dir(&root)
        .args(["build", "--quiet", "-p", "rel", "--bin", "rel"]);
    if !dev {
        build.arg("--release");
    }
    let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("building rel failed".into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let rel = target
        .join(if dev { "debug" } else { "release" })
        .join("rel");

    let tmp = std::env::temp_dir().join(format!("rel-bench-git-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let result = (|| {
        let audit = bench_audit(&rel, &tmp.join("history"))?;
        let promote = bench_promote(&rel, &tmp.join("promote"))?;
        println!(
            "\nrel built {}",
            if dev { "debug (--dev)" } else { "release" }
        );
        println!("{audit}{promote}");
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench_audit(rel: &Path, dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    sh(dir, "git", &["init", "--quiet", "--initial-branch=main"])?;
    // A fast-import stream: COMMITS commits, one in ten a rel promotion with trailers.
    let mut stream = String::with_capacity(COMMITS * 300);
    let mut rel_commits = 0;
    for i in 0..COMMITS {
        let msg = if i % 10 == 0 {
            rel_commits += 1;
            format!(
                "rel: promote 0.{i}.0 to prod\n\nPins every component.\n\nRel-Action: promote\nRel-Version: 0.{i}.0\nRel-Env: prod\nRel-From-Env: staging\nRel-Lockfile-Sha256: {:064x}\nRel-Actor: ci@example.com\n",
                i
            )
        } else {
            format!("change {i}\n\nAn ordinary commit body that mentions nothing in particular.\n")
        };
        stream.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter Bench <bench@example.com> {} +0000\ndata {}\n{msg}\n",
            i + 1,
            1_700_000_000 + i as i64 * 60,
            msg.len()
        ));
        if i > 0 {
            stream.push_str(&format!("from :{i}\n"));
        }
        stream.push_str(&format!(
            "M 644 inline file-{}.txt\ndata 2\n{}\n\n",
            i % 100,
            i % 10
        ));
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(stream.as_bytes())
        .map_err(|e| e.to_string())?;
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("git fast-import failed".into());
    }
    sh(dir, "git", &["reset", "--quiet", "--hard", "main"])?;
    std::fs::write(dir.join("rel.toml"), "registry = \"r.example.com/p\"\n")
        .map_err(|e| e.to_string())?;

    let git_args = [
        "log",
        "--format=%H%x00%ct%x00%s%x00%(trailers:key=Rel-Action,key=Rel-Version,key=Rel-Env,key=Rel-From-Env,key=Rel-Actor,key=Rel-Lockfile-Sha256,separator=%x1f)",
        "HEAD",
    ];
    let (git_time, git_out) = median(|| run_timed(dir, "git", &git_args))?;
    let (rel_time, rel_out) = median(|| {
        run_timed(
            dir,
            rel.to_str().unwrap_or("rel"),
            &["audit", "--format", "json"],
        )
    })?;
    let git_found = git_out
        .lines()
        .filter(|l| l.contains("Rel-Action: promote"))
        .count();
    let rel_found = rel_out.matches("\"action\": \"promote\"").count();
    if git_found != rel_commits || rel_found != rel_commits {
        return Err(format!(
            "audit disagrees: {rel_commits} rel commits, git log found {git_found}, rel audit found {rel_found}"
        ));
    }
    let verdict = if rel_time <= git_time {
        "goal met: no slower than git"
    } else {
        "goal MISSED: slower than git"
    };
    Ok(format!(
        "audit over {COMMITS} commits ({rel_commits} with rel trailers), median of {RUNS}:\n  git log (trailers)   {:>8.1} ms\n  rel audit --json     {:>8.1} ms   ({verdict})\n",
        ms(git_time),
        ms(rel_time)
    ))
}

fn bench_promote(rel: &Path, dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut config =
        String::from("registry = \"registry.example.com/platform\"\nrepo = \"org/platform\"\n\n");
    let mut overlay = String::from(
        "# prod overlay\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n",
    );
    let digest = |seed: usize, i: usize| format!("sha256:{:0>64x}", seed * 1000 + i);
    for i in 0..COMPONENTS {
        config.push_str(&format!("[components.c{i:02}]\ncrate = \"c{i:02}\"\n\n"));
        overlay.push_str(&format!(
            "  # component {i}\n  - name: registry.example.com/platform/c{i:02}\n    digest: {}\n",
            digest(1, i)
        ));
    }
    config.push_str("[environments.staging]\noverlay = \"overlays/staging\"\npromotes-to = \"prod\"\n\n[environments.prod]\noverlay = \"overlays/prod\"\n");
    let write = |p: &str, t: &str| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(|e| e.to_string())?;
        std::fs::write(path, t).map_err(|e| e.to_string())
    };
    write("rel.toml", &config)?;
    write("overlays/prod/kustomization.yaml", &overlay)?;
    write("overlays/staging/kustomization.yaml", &overlay)?;
    sh(dir, "git", &["init", "--quiet", "--initial-branch=main"])?;
    sh(
        dir,
        "git",
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "add",
            "-A",
        ],
    )?;
    sh(
        dir,
        "git",
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "commit",
            "--quiet",
            "-m",
            "init",
        ],
    )?;
    for (version, seed) in [("0.1.0", 1), ("0.2.0", 2)] {
        let mut args: Vec<String> = vec!["lock".into(), "--version".into(), version.into()];
        for i in 0..COMPONENTS {
            args.push("--digest".into());
            args.push(format!("c{i:02}={}", digest(seed, i)));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sh(dir, rel.to_str().unwrap_or("rel"), &refs)?;
    }
    let evidence = dir.join("evidence.json");
    write_evidence(&dir.join("releases/0.2.0.yaml"), "0.2.0", &evidence)?;
    sh(
        dir,
        "git",
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "add",
            "releases/0.1.0.yaml",
        ],
    )?;
    sh(
        dir,
        "git",
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "commit",
            "--quiet",
            "-m",
            "0.1.0",
        ],
    )?;
    sh(
        dir,
        rel.to_str().unwrap_or("rel"),
        &[
            "record",
            "--version",
            "0.2.0",
            "--env",
            "staging",
            "--evidence",
            evidence.to_str().unwrap_or_default(),
        ],
    )?;

    let (t, out) = median(|| {
        run_timed(
            dir,
            rel.to_str().unwrap_or("rel"),
            &[
                "promote",
                "--version",
                "0.2.0",
                "--env",
                "prod",
                "--dry-run",
            ],
        )
    })?;
    if !out.contains(&format!("{COMPONENTS} of {COMPONENTS} components change")) {
        return Err(format!(
            "promote --dry-run did not plan {COMPONENTS} changes:\n{out}"
        ));
    }
    let verdict = if t < Duration::from_millis(200) {
        "goal met: under 200 ms"
    } else {
        "goal MISSED: 200 ms"
    };
    Ok(format!(
        "promote --dry-run, {COMPONENTS} components, median of {RUNS}:\n  rel promote --dry-run {:>7.1} ms   ({verdict})\n",
        ms(t)
    ))
}

/// A green deep smoke report in staging for `version`, naming the sha256 of `lockfile` as the
/// deep gate's evidence does (`rel record` checks it), written to `to`.
pub(crate) fn write_evidence(lockfile: &Path, version: &str, to: &Path) -> Result<(), String> {
    let sum = Command::new("sha256sum")
        .arg(lockfile)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    let lock_sha = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .ok_or("sha256sum printed no digest")?
        .to_owned();
    std::fs::write(
        to,
        format!(
            r#"{{"gate":"smoke","target":"staging","status":"pass","summary":{{"pass":1,"fail":0,"warn":0,"skip":0}},"checks":[{{"name":"ok","status":"pass","detail":"ok"}}],"context":{{"profile":"deep","env":"staging","version":"{version}","lockfileSha256":"{lock_sha}"}}}}"#
        ),
    )
    .map_err(|e| e.to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(
    mut f: impl FnMut() -> Result<(Duration, String), String>,
) -> Result<(Duration, String), String> {
    let (_, out) = f()?; // warm the page cache
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(f()?.0);
    }
    times.sort();
    Ok((times[RUNS / 2], out))
}

fn run_timed(dir: &Path, program: &str, args: &[&str]) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn sh(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("REL_ACTOR", "bench@example.com")
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
