//! Image references and digests that cannot hold a wrong value.
//!
//! [`Digest`] is a `sha256:` digest with 64 lowercase hex characters. [`ImageRef`] follows the
//! Docker/OCI reference grammar (`distribution/reference`): an optional registry host (with an
//! optional port, or `localhost`), a lowercase repository path, an optional tag and an optional
//! digest. Both parse at the edge (`FromStr`, serde) and are only ever handled in parsed form.
//!
//! [`redact_url`] makes a URL fit for an error or a log line (user info and query tokens
//! redacted); the registry client, the secret store and the CLI share it.
//!
//! This crate does no I/O.

mod digest;
mod redact;
mod reference;

pub use digest::{Digest, DigestError, Sha256Hasher};
pub use redact::{REDACTED, redact_url};
pub use reference::{DEFAULT_REGISTRY, ImageRef, ImageRefError};
