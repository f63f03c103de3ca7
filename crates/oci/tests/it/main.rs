//! Integration tests of the `oci` crate against real tools: Debian's `docker-registry`, `skopeo`
//! and `umoci`, and a static binary built for the purpose.

mod fake;
mod layer;
mod layout;
mod origin;
mod proxy;
mod pull;
mod referrers;
mod registry;
mod support;
