//! Integration tests: drive the `rel` binary against real files, repositories and services.

mod audit;
mod base_image;
mod build;
mod coherence;
mod completions;
mod deploy;
mod diff;
mod gates_drift;
mod gates_headroom;
mod gates_server;
mod gates_smoke;
mod hardening;
mod init;
mod lock;
mod pin;
mod progress;
mod promote;
mod promote_forge;
mod promote_record;
mod promote_support;
mod render;
mod rollback;
mod secrets;
mod smoke_services;
mod stage;
mod support;
