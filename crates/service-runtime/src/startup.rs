//! The process bootstrap every service's `main` runs first.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Prepares the process before any configuration is read. Every service's `main` calls this
/// first, while the process is still single-threaded (before the tokio runtime is built), and
/// parses its flags and environment only after it returns.
///
/// In order:
/// 1. tracing, filtered by `RUST_LOG` (default `info`), to stderr, so the next step can log;
/// 2. the environment step. **This is where the genesis autoload (issue 6, `crates/genesis`) is
///    called**: it opens the sealed envelope and sets each entry the environment does not already
///    have (set-if-absent, explicit env wins). Setting variables is only sound while the process
///    has one thread, which is why this runs before the runtime exists and why clap's `env`
///    fallbacks (`IDENTITY_SIGNING_KEY_B64`, `DATABASE_URL`, ...) are read after it.
pub fn bootstrap_process() {
    init_tracing();
}

/// Installs the global `tracing` subscriber (once; later calls are no-ops).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .try_init();
}
