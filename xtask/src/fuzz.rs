//! `cargo xtask fuzz [--seconds N] [TARGET...]`: build the cargo-fuzz targets of `fuzz/` and run
//! each for a bounded time (libFuzzer's `-max_total_time`), from the seed corpus in
//! `fuzz/seeds/<target>` plus what earlier runs found (`fuzz/corpus/<target>`, not committed).
//! A crash fails the task and names the reproducer. CI runs it with a short budget.

use std::process::Command;

const TARGETS: &[&str] = &[
    "kustomize_render",
    "lockfile",
    "rel_toml",
    "image_ref",
    "envelope",
    "kube_inputs",
    "elf_section",
];

pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = 10u32;
    let mut only: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds takes a whole number")?;
            }
            t if TARGETS.contains(&t) => only.push(t.to_owned()),
            other => {
                return Err(format!(
                    "unknown fuzz argument `{other}`; targets: {}",
                    TARGETS.join(", ")
                ));
            }
        }
    }
    let root = crate::workspace_root();
    let fuzz = root.join("fuzz");
    ensure_cargo_fuzz()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // No sanitizer: libFuzzer's coverage instrumentation with stable codegen flags. The
    // bootstrap variable lets cargo-fuzz pass the few `-Z` flags it needs on a stable toolchain.
    crate::provision::run(
        Command::new(&cargo)
            .current_dir(&fuzz)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "build", "--sanitizer", "none", "--release"]),
    )?;
    let targets: Vec<&str> = if only.is_empty() {
        TARGETS.to_vec()
    } else {
        only.iter().map(String::as_str).collect()
    };
    let mut summary = Vec::new();
    for t in targets {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("create {}: {e}", corpus.display()))?;
        let seeds = fuzz.join("seeds").join(t);
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&fuzz)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", "--release", t])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
            "-timeout=10",
            "-print_final_stats=1",
        ]);
        let out = cmd.output().map_err(|e| format!("run cargo fuzz: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        let runs = stat(&err, "stat::number_of_executed_units:").unwrap_or_default();
        if !out.status.success() {
            let tail: Vec<&str> = err.lines().rev().take(30).collect();
            return Err(format!(
                "fuzz target {t} failed after {runs} inputs; the reproducer is under {}:\n{}",
                fuzz.join("artifacts").join(t).display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        summary.push(format!("{t}: {runs} inputs in {seconds}s, no crash"));
    }
    for line in &summary {
        eprintln!("fuzz: {line}");
    }
    Ok(())
}

fn stat(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let have = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    crate::provision::run(Command::new(&cargo).args(["install", "cargo-fuzz", "--locked"]))
}
