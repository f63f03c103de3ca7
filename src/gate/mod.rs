//! The deploy gates. Each takes typed inputs and returns a [`crate::report::Report`].

pub mod coherence;
pub mod drift;
pub mod headroom;
pub mod smoke;
