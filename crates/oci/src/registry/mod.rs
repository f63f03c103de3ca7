//! Pushing images over the OCI distribution API, on `reqwest` (rustls, no aws-lc).
//!
//! Base images are pulled by digest ([`Registry::pull_base`], `pull.rs`), each blob verified.

mod challenge;
mod client;
mod credentials;
mod error;
mod pull;
mod push;
mod referrers;
mod tls;

pub use client::{ClientOptions, DEFAULT_RETRY};
pub use credentials::{
    CredentialError, CredentialSources, Credentials, Secret, resolve_credentials,
};
pub use error::RegistryError;
pub use pull::PullError;
pub(crate) use push::Known;
pub use push::{
    BlobOutcome, BlobPush, BlobUpload, PushOptions, PushReport, Registry, TagStatus, UploadsAhead,
};
pub use referrers::{
    ANNOTATION_COSIGN_SIGNATURE, Artifact, ArtifactManifest, CONVERGE_ROUNDS, EMPTY_CONFIG,
    MEDIA_TYPE_EMPTY, MEDIA_TYPE_SIMPLE_SIGNING, Referrer, ReferrersSource, StagedAttachments,
    StagedSignature, cosign_signature_tag, fallback_tag, simple_signing_payload,
};
pub use retry::Backoff;
