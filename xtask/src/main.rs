//! `cargo xtask <task>`: developer tasks for this workspace.

mod services;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  run-services [--base-port N] [--check]
      build identity, gateway and worker, migrate a local SQLite database, start all three on
      127.0.0.1 (ports N, N+1, N+2; default 8081) and print curl commands to query them.
      --check: query once through the gateway, stop the services (SIGTERM) and exit.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run-services") => services::run_services(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
