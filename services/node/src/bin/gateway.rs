//! The `gateway` binary: `cargo build -p node --bin gateway --features gateway` (the binary
//! requires its feature, so cargo names the flag when it is missing).

fn main() -> std::process::ExitCode {
    use clap::Parser;
    // First, while single-threaded: tracing, and the hook where the genesis autoload goes.
    service_runtime::startup::bootstrap_process();
    node::gateway::main(node::gateway::Cli::parse())
}
