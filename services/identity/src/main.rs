use clap::Parser;

fn main() -> std::process::ExitCode {
    // First, while single-threaded: tracing, and the hook where the genesis autoload goes.
    service_runtime::startup::bootstrap_process();
    identity::cli::main_exit_code(identity::Cli::parse())
}
