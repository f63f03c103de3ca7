//! Every environment variable the platform services read. Flags with an `env = ...` fallback name
//! these constants' values; keep the two in step (clap's `env` attribute needs a literal).

/// `tracing` filter (`info` when unset).
pub const RUST_LOG: &str = "RUST_LOG";
/// Address to listen on, `host:port`.
pub const LISTEN_ADDR: &str = "LISTEN_ADDR";
/// SQLite database: a path, `sqlite:PATH` or `sqlite://PATH`.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// Milliseconds to keep serving (and accepting) after SIGTERM while `/healthz` says 503.
pub const DRAIN_DELAY_MS: &str = "DRAIN_DELAY_MS";
/// Milliseconds allowed for in-flight requests to finish once the listener is closed.
pub const SHUTDOWN_BUDGET_MS: &str = "SHUTDOWN_BUDGET_MS";
/// PEM certificate chain; with `TLS_KEY_FILE`, the service speaks HTTPS only.
pub const TLS_CERT_FILE: &str = "TLS_CERT_FILE";
/// PEM private key for `TLS_CERT_FILE`.
pub const TLS_KEY_FILE: &str = "TLS_KEY_FILE";
/// Git commit reported by `/version`; read at compile time (set by the build) and at run time.
pub const REL_GIT_COMMIT: &str = "REL_GIT_COMMIT";

/// The sealed genesis envelope (base64), autoloaded at boot by [`crate::autoload`]. Secret-bearing.
pub const REL_GENESIS_B64: &str = "REL_GENESIS_B64";
/// The master key that opens [`REL_GENESIS_B64`], standard base64. Secret.
pub const REL_MASTER_KEY: &str = "REL_MASTER_KEY";
/// The environment this service runs in; the envelope must have been sealed for it.
pub const REL_ENV: &str = "REL_ENV";

/// identity: the 32-byte Ed25519 seed, standard base64. Secret.
pub const IDENTITY_SIGNING_KEY_B64: &str = "IDENTITY_SIGNING_KEY_B64";
/// identity: client credentials, `id:class:secret` entries separated by commas. Secret.
pub const IDENTITY_CLIENTS: &str = "IDENTITY_CLIENTS";
/// identity: a file of client credentials, one `id:class:secret` a line, `#` comments.
pub const IDENTITY_CLIENTS_FILE: &str = "IDENTITY_CLIENTS_FILE";
/// identity: token lifetime in seconds.
pub const IDENTITY_TOKEN_TTL_SECS: &str = "IDENTITY_TOKEN_TTL_SECS";
/// identity (issues) and gateway (checks): the `iss` claim.
pub const IDENTITY_ISSUER: &str = "IDENTITY_ISSUER";

/// gateway: where identity's JWKS is served.
pub const IDENTITY_JWKS_URL: &str = "IDENTITY_JWKS_URL";
/// gateway: extra PEM CA certificates trusted for https identity and worker URLs.
pub const UPSTREAM_CA_FILE: &str = "UPSTREAM_CA_FILE";
/// gateway: the worker's base URL.
pub const WORKER_URL: &str = "WORKER_URL";

/// worker: the id it reports (defaults to `HOSTNAME`, the pod name on Kubernetes).
pub const WORKER_ID: &str = "WORKER_ID";
/// worker: the largest `delay_ms` a request may ask for (0, the default, ignores `delay_ms`).
pub const WORKER_MAX_DELAY_MS: &str = "WORKER_MAX_DELAY_MS";
/// Set by Kubernetes to the pod name.
pub const HOSTNAME: &str = "HOSTNAME";
/// gateway: per-attempt timeout of a call to the worker, in milliseconds.
pub const WORKER_TIMEOUT_MS: &str = "WORKER_TIMEOUT_MS";
