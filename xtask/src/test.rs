//! `cargo xtask test`: provision, then run every test of the workspace.

use std::process::Command;

use crate::provision;

pub fn run(extra: &[String]) -> Result<(), String> {
    provision::ensure_tools()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if nextest {
        provision::run(
            Command::new(&cargo)
                .args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"])
                .args(extra),
        )?;
        // nextest does not run doctests.
        provision::run(Command::new(&cargo).args(["test", "--workspace", "--locked", "--doc"]))
    } else {
        eprintln!("xtask: cargo-nextest not found, using cargo test (install: cargo install cargo-nextest --locked)");
        provision::run(Command::new(&cargo).args(["test", "--workspace", "--locked", "--no-fail-fast"]).args(extra))
    }
}
