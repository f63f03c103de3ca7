//! Image references and digests that cannot hold a wrong value.
//!
//! [`Digest`] is a `sha256:` digest with 64 lowercase hex characters. [`ImageRef`] follows the
//! Docker/OCI reference grammar (`distribution/reference`): an optional registry host (with an
//! optional port, or `localhost`), a lowercase repository path, an optional tag and an optional
//! digest. Both parse at the edge (`FromStr`, serde) and are only ever handled in parsed form.
//!
//! This crate does no I/O.

mod digest;
mod reference;

pub use digest::{Digest, DigestError, Sha256Hasher};
pub use reference::{DEFAULT_REGISTRY, ImageRef, ImageRefError};
