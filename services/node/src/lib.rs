//! node: one crate, two roles, the Rust counterpart of the seed's Go build tags.
//!
//! Each role is a cargo feature and a binary, built on its own into its own image:
//!
//! ```text
//! cargo build -p node --bin gateway --features gateway   # the front door: POST /api/query
//! cargo build -p node --bin worker  --features worker    # the worker: POST /work
//! ```
//!
//! The features are mutually exclusive: with both, this crate does not compile. With neither, only
//! the role-independent part ([`protocol`], [`role`]) builds, so `cargo build --workspace` and
//! `cargo test --workspace` work; the binaries need their feature (`required-features`), and each
//! binary refuses to compile without it.

#[cfg(all(feature = "gateway", feature = "worker"))]
compile_error!(
    "node: the `gateway` and `worker` features are mutually exclusive (one role per binary, one \
     binary per image). Build one role at a time: \
     `cargo build -p node --bin gateway --features gateway` or \
     `cargo build -p node --bin worker --features worker`."
);

pub mod protocol;
pub mod role;

#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "worker")]
pub mod worker;
