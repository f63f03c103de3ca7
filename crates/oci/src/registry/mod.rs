//! Pushing images over the OCI distribution API, on `reqwest` (rustls, no aws-lc).
//!
//! Registry bases (pulling a base image from a registry) are not implemented yet: bases come
//! from an OCI layout directory ([`crate::layout::read_base`]).

mod challenge;
mod client;
mod credentials;
mod error;
mod push;
mod referrers;
mod tls;

pub use client::{ClientOptions, RetryPolicy};
pub use credentials::{
    CredentialError, CredentialSources, Credentials, Secret, resolve_credentials,
};
pub use error::RegistryError;
pub(crate) use push::Known;
pub use push::{BlobOutcome, BlobPush, BlobUpload, PushOptions, PushReport, Registry, TagStatus};
pub use referrers::{
    ANNOTATION_COSIGN_SIGNATURE, ArtifactManifest, EMPTY_CONFIG, MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_SIMPLE_SIGNING, Referrer, ReferrersSource, cosign_signature_tag, fallback_tag,
    simple_signing_payload,
};
