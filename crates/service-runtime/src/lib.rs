//! What the platform's services (`identity`, and the `gateway` and `worker` roles of `node`) share.
//!
//! - [`startup`]: the process bootstrap every `main` calls first (tracing, then the genesis
//!   autoload, before any configuration is read).
//! - [`autoload`]: the genesis envelope's entries into the environment, set-if-absent.
//! - [`config`]: the serve flags every service takes (listen address, database, drain settings).
//! - [`env`]: every environment variable the services read, in one place.
//! - [`database`]: the `DATABASE_URL` type and SQLite connections.
//! - [`schema`]: the migrations (applied only by `identity migrate`) and the schema assertion behind
//!   `/readyz` (which never migrates).
//! - [`health`]: `/healthz`, `/readyz`, `/version` and the draining flag.
//! - [`serve`]: the HTTP(S) server loop with the SIGTERM drain sequence.
//! - [`tls`]: optional HTTPS from a PEM certificate and key (rustls with ring).
//! - [`token`]: the EdDSA JWT format and JWKS shared by the issuer (identity) and verifiers (gateway).
//!
//! This crate never prints; it logs through `tracing` and never logs a secret value.

pub mod autoload;
pub mod build_info;
pub mod config;
pub mod database;
pub mod env;
pub mod health;
pub mod schema;
pub mod serve;
pub mod startup;
pub mod tls;
pub mod token;

pub use build_info::BuildInfo;
pub use health::Health;
