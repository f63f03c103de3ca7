//! The process bootstrap every service's `main` runs first.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Prepares the process before any configuration is read. Every service's `main` calls this
/// first, while the process is still single-threaded (before the tokio runtime is built), and
/// parses its flags and environment only after it returns.
///
/// In order:
/// 1. tracing, filtered by `RUST_LOG` (default `info`), to stderr, so the next step can log;
/// 2. the genesis autoload ([`crate::autoload`], issue 6): when `REL_GENESIS_B64` is set, it
///    opens the sealed envelope with `REL_MASTER_KEY` for `REL_ENV` and sets each entry the
///    environment does not already have (set-if-absent, explicit env wins), logging the names set
///    and skipped, never values. Setting variables is only sound while the process has one
///    thread, which is why this runs before the runtime exists and why clap's `env` fallbacks
///    (`IDENTITY_SIGNING_KEY_B64`, `DATABASE_URL`, ...) are read after it. A misconfigured or
///    unopenable envelope stops the process here with exit code 2.
pub fn bootstrap_process() {
    init_tracing();
    match crate::autoload::autoload_process_env() {
        Ok(None) => {
            tracing::debug!("no genesis envelope (REL_GENESIS_B64 unset): nothing to autoload")
        }
        Ok(Some(loaded)) => tracing::info!(
            env = %loaded.env,
            key_id = %loaded.key_id,
            sealed_at = loaded.sealed_at,
            set = ?loaded.set,
            skipped = ?loaded.skipped,
            "genesis autoload: set {} entries, skipped {} already in the environment",
            loaded.set.len(),
            loaded.skipped.len()
        ),
        Err(error) => {
            tracing::error!(%error, "genesis autoload failed; not starting");
            #[allow(clippy::exit)] // a service that cannot load its secrets must not start
            std::process::exit(2);
        }
    }
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
