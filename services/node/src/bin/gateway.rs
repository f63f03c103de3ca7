//! The `gateway` binary: `cargo build -p node --bin gateway --features gateway`.

#[cfg(not(feature = "gateway"))]
compile_error!(
    "the `gateway` binary is the gateway role: build it with `cargo build -p node --bin gateway --features gateway`"
);

#[cfg(feature = "gateway")]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    // First, while single-threaded: tracing, and the hook where the genesis autoload goes.
    service_runtime::startup::bootstrap_process();
    node::gateway::main(node::gateway::Cli::parse())
}

#[cfg(not(feature = "gateway"))]
fn main() {}
