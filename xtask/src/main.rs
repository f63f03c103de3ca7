//! Developer tasks: `cargo xtask <task>`.
//!
//! - `test`: install what the tests need (Debian packages when root) and run the whole suite.
//! - `bench gates`: the gates' performance targets (smoke concurrency, drift on 10,000 pods).

use std::process::ExitCode;

mod bench_gates;
mod provision;
mod test;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("gates") => bench_gates::run(&args[2..]),
            other => Err(format!("unknown benchmark {other:?}; known: gates")),
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
         test [ARGS]   install what the tests need (Debian packages when root) and run every test;\n                \
         ARGS go to cargo-nextest (or cargo test)\n  \
         bench gates   smoke with 50 checks (one slow) and drift --pods on 10,000 pods, timed\n                \
         [--debug] [--runs N]\n"
    );
}
