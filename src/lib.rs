//! rel: a GitOps release toolkit.
//!
//! The binary (`src/main.rs`) is a shim over [`commands::run`]. Each command in [`commands`] is a
//! thin function over the library modules below, which take typed values and return typed
//! results; they never print. See `ARCHITECTURE.md` for the map.

// Honest visibility: an item that is `pub` but not reachable from the crate's public paths says
// `pub(crate)` (or narrower); `-D warnings` keeps it so.
#![warn(unreachable_pub)]

pub mod atomic_write;
pub mod attest;
pub mod audit;
pub mod build;
pub mod build_output;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diff;
pub mod env_vars;
pub mod error;
pub mod forge;
pub mod gate;
pub mod git_repo;
pub mod hold;
pub mod init;
pub mod kube_source;
pub mod lockfile;
pub mod manifests;
pub mod oncall;
pub mod ops;
pub mod overlay_pin;
pub mod project;
pub mod promote;
pub mod record;
pub mod redact;
pub mod releases;
pub mod report;
pub mod rollback;
pub mod secrets;
pub mod signing;
pub mod source_error;
pub mod stage;
pub mod status;
pub mod trailers;
pub mod trust;
pub mod version;
// Soak windows and freezes (issue 17).
pub mod clock;
pub mod freeze;
pub mod soak;

pub use error::{Error, Exit};
