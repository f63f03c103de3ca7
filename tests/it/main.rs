//! Integration tests: drive the `rel` binary against real files, repositories and services.

mod audit;
mod coherence;
mod lock;
mod promote;
mod promote_forge;
mod promote_record;
mod promote_support;
mod rollback;
mod support;
