//! identity: issues the platform's tokens and owns its database schema.
//!
//! - `GET /.well-known/jwks.json`: the public key, `kid` = RFC 7638 thumbprint (stable per seed).
//! - `POST /token`: OAuth2 client-credentials style; a configured client id and secret get an
//!   EdDSA JWT with their `class` (`service_account` or `node`) and an expiry.
//! - `identity migrate`: applies the schema once (see `service_runtime::schema`).
//! - `/healthz`, `/readyz`, `/version` from `service_runtime::health`.

pub mod app;
pub mod cli;
pub mod clients;

pub use cli::{Cli, Command};

use service_runtime::schema::{ISSUED_TOKENS, SchemaRequirement};

/// What identity's `/readyz` asserts.
pub const SCHEMA: SchemaRequirement = SchemaRequirement {
    tables: &[ISSUED_TOKENS],
};
