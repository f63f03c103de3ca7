//! node: one crate, two roles, the Rust counterpart of the seed's Go build tags.
//!
//! Each role is a cargo feature and a binary, built on its own into its own image:
//!
//! ```text
//! cargo build -p node --bin gateway --features gateway   # the front door: POST /api/query
//! cargo build -p node --bin worker  --features worker    # the worker: POST /work
//! ```
//!
//! The features are additive: each enables its role's module and its binary
//! (`required-features`), so an image built for one role holds only that role's code, while
//! `--all-features` (clippy, rust-analyzer, the tests) sees all of it. With neither, only the
//! role-independent [`protocol`] builds.

pub mod protocol;

#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "worker")]
pub mod worker;
