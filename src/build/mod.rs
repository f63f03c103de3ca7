//! `rel build`: compile each built component and assemble its OCI image.

pub mod cargo;
pub mod source;
