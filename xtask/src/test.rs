//! `cargo xtask test`: provision, then run every test of the workspace.

use std::process::Command;

use crate::provision;

/// The service binaries the tests start as real processes, built here once instead of by each
/// test binary (the role features of `node` are additive: one cargo run builds all three).
const SERVICE_BUILD: &[&str] = &[
    "-p",
    "identity",
    "--bin",
    "identity",
    "-p",
    "node",
    "--bin",
    "gateway",
    "--bin",
    "worker",
    "--features",
    "node/gateway,node/worker",
];

pub fn run(extra: &[String]) -> Result<(), String> {
    provision::ensure_tools()?;
    provision::ensure_python_modules()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The rules first: one style, no lint, no tidy problem (each fails fast with its file:line).
    provision::run(Command::new(&cargo).args(["fmt", "--all", "--check"]))?;
    provision::run(Command::new(&cargo).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::tidy::run(&crate::workspace_root())?;
    provision::run(
        Command::new(&cargo)
            .args(["build", "--locked", "--quiet"])
            .args(SERVICE_BUILD),
    )?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    // SAFETY: single-threaded here; the variable is inherited by the test processes.
    unsafe { std::env::set_var("REL_SERVICES_BIN_DIR", target.join("debug")) };
    let nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if nextest {
        provision::run(
            Command::new(&cargo)
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--locked",
                    "--no-fail-fast",
                ])
                .args(extra),
        )?;
        // nextest does not run doctests.
        provision::run(Command::new(&cargo).args(["test", "--workspace", "--locked", "--doc"]))?;
        fuzz_briefly()
    } else {
        eprintln!(
            "xtask: cargo-nextest not found, using cargo test (install: cargo install cargo-nextest --locked)"
        );
        provision::run(
            Command::new(&cargo)
                .args(["test", "--workspace", "--locked", "--no-fail-fast"])
                .args(extra),
        )?;
        fuzz_briefly()
    }
}

/// Every fuzz target for a short, bounded time (`REL_FUZZ_SECONDS` per target, default 3; `0`
/// skips): a crash fails CI with its reproducer. Longer runs: `cargo xtask fuzz --seconds N`.
fn fuzz_briefly() -> Result<(), String> {
    let seconds = std::env::var("REL_FUZZ_SECONDS").unwrap_or_else(|_| "3".to_owned());
    if seconds == "0" {
        eprintln!("xtask: fuzzing skipped (REL_FUZZ_SECONDS=0)");
        return Ok(());
    }
    crate::fuzz::run(&["--seconds".to_owned(), seconds])
}
