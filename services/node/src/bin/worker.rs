//! The `worker` binary: `cargo build -p node --bin worker --features worker`.

#[cfg(not(feature = "worker"))]
compile_error!(
    "the `worker` binary is the worker role: build it with `cargo build -p node --bin worker --features worker`"
);

#[cfg(feature = "worker")]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    // First, while single-threaded: tracing, and the hook where the genesis autoload goes.
    service_runtime::startup::bootstrap_process();
    node::worker::main(node::worker::Cli::parse())
}

#[cfg(not(feature = "worker"))]
fn main() {}
