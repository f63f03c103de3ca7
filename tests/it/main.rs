//! Integration tests: drive the `rel` binary against real files, repositories and services.

mod coherence;
mod lock;
mod secrets;
mod support;
