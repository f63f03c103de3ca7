//! rel: a GitOps release toolkit.
//!
//! The binary (`src/main.rs`) is a shim over [`commands::run`]. Each command in [`commands`] is a
//! thin function over the library modules below, which take typed values and return typed
//! results; they never print. See `ARCHITECTURE.md` for the map.

// Honest visibility: an item that is `pub` but not reachable from the crate's public paths says
// `pub(crate)` (or narrower); `-D warnings` keeps it so.
#![warn(unreachable_pub)]

pub(crate) mod atomic_write;
pub(crate) mod attest;
pub(crate) mod audit;
pub(crate) mod build;
pub(crate) mod build_output;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diff;
pub mod env_vars;
pub mod error;
pub(crate) mod forge;
pub mod gate;
pub mod git_repo;
pub(crate) mod hold;
pub(crate) mod init;
pub mod kube_source;
pub mod lockfile;
pub mod manifests;
pub(crate) mod oncall;
pub(crate) mod ops;
pub mod overlay_pin;
pub mod project;
pub mod promote;
pub(crate) mod record;
pub(crate) mod redact;
pub(crate) mod releases;
pub(crate) mod report;
pub(crate) mod rollback;
pub mod secrets;
pub(crate) mod signing;
pub(crate) mod source_error;
pub mod stage;
pub(crate) mod status;
pub(crate) mod trailers;
pub(crate) mod trust;
pub(crate) mod version;
// Soak windows and freezes (issue 17).
pub mod clock;
pub(crate) mod freeze;
pub(crate) mod soak;

pub use error::{Error, Exit};
