//! The serve flags every service takes. Each has an environment fallback, shown in `--help`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::database::DatabaseUrl;

/// Listen address, database and drain settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub drain: DrainArgs,
}

/// Where the SQLite database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// SQLite database: a path, `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://rel-platform.db")]
    pub database_url: DatabaseUrl,
}

/// How SIGTERM is handled (see [`crate::serve`]).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DrainArgs {
    /// After SIGTERM, keep serving this long (milliseconds) with `/healthz` at 503, so load
    /// balancers stop routing here before the listener closes.
    #[arg(long, env = "DRAIN_DELAY_MS", default_value_t = 5_000)]
    pub drain_delay_ms: u64,

    /// Once the listener is closed, in-flight requests get this long (milliseconds) to finish.
    #[arg(long, env = "SHUTDOWN_BUDGET_MS", default_value_t = 30_000)]
    pub shutdown_budget_ms: u64,
}

impl DrainArgs {
    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }

    pub fn shutdown_budget(&self) -> Duration {
        Duration::from_millis(self.shutdown_budget_ms)
    }
}
