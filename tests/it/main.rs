//! Integration tests: drive the `rel` binary against real files, repositories and services.

mod coherence;
mod lock;
mod support;
mod gates_server;
mod gates_smoke;
mod gates_headroom;
mod gates_drift;
