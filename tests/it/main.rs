//! Integration tests: drive the `rel` binary against real files, repositories and services.

mod audit;
mod build;
mod coherence;
mod lock;
mod pin;
mod render;
mod promote;
mod promote_forge;
mod promote_record;
mod promote_support;
mod secrets;
mod smoke_services;
mod rollback;
mod support;
mod gates_server;
mod gates_smoke;
mod gates_headroom;
mod gates_drift;
