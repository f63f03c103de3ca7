//! Developer tasks: `cargo xtask <task>`.
//!
//! - `test`: install what the tests need (Debian packages when root) and run the whole suite.
//! - `kustomize-oracle`: compare the renderer with `kubectl kustomize`.
//! - `bench render|git`: the side-by-side benchmarks.

use std::process::ExitCode;

mod bench_git;
mod bench_render;
mod kustomize;
mod provision;
mod test;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = |c: i32| if c == 0 { Ok(()) } else { Err(format!("exit code {c}")) };
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("kustomize-oracle") => code(kustomize::oracle(&args[1..])),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("render") => code(bench_render::run(&args[2..])),
            Some("git") => bench_git::run(&args[2..]),
            _ => Err("usage: cargo xtask bench render [--sizes 500,1000,2000] | bench git [--dev]".to_owned()),
        },
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         test [ARGS]          install what the tests need (Debian packages when root) and run every test;\n                       \
         ARGS go to cargo-nextest (or cargo test)\n  \
         kustomize-oracle     compare the kustomize renderer with `kubectl kustomize`\n  \
         bench render         the renderer against `kubectl kustomize`\n  \
         bench git [--dev]    rel audit vs git log over 10,000 commits; rel promote --dry-run of 50 components\n"
    );
}
