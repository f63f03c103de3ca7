//! The `worker` binary: `cargo build -p node --bin worker --features worker` (the binary
//! requires its feature, so cargo names the flag when it is missing).

fn main() -> std::process::ExitCode {
    use clap::Parser;
    // First, while single-threaded: tracing, and the hook where the genesis autoload goes.
    service_runtime::startup::bootstrap_process();
    node::worker::main(node::worker::Cli::parse())
}
