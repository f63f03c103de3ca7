//! Developer tasks: `cargo xtask <task>`.
//!
//! - `test`: install what the tests need (Debian packages when root) and run the whole suite.
//! - `run-services`: build, migrate and start the three services locally.

use std::process::ExitCode;

mod provision;
mod services;
mod test;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("run-services") => return services::run_services(&args[1..]),
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
         run-services [--base-port N] [--check]\n                \
         build identity, gateway and worker, migrate a local SQLite database, start all three on\n                \
         127.0.0.1 (ports N, N+1, N+2; default 8081) and print curl commands to query them.\n                \
         --check: query once through the gateway, stop the services (SIGTERM) and exit.\n"
    );
}
