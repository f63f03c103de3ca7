//! The `rel` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = rel::cli::Cli::parse();
    rel::commands::run(cli)
}
