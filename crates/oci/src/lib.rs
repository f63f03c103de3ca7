//! Reproducible OCI images from a binary, without Docker.
//!
//! - [`layer`]: a deterministic layer (sorted ustar, fixed owners/modes/mtime, gzip with a fixed
//!   header and level), tarred, hashed and compressed in one streaming pass.
//! - [`gzip`]: block-parallel gzip (pigz-style, 1 MiB blocks with 32 KiB dictionaries) whose bytes
//!   do not depend on the number of threads.
//! - [`cache`]: binary hash + compressor + layout version → layer, so an unchanged binary is
//!   neither re-tarred nor re-gzipped.
//! - [`image`]: base layers + ours → canonical config and manifest bytes → manifest digest.
//! - [`layout`]: the OCI image layout directory (the embedded default) and base images from one.
//! - [`registry`]: push over the distribution API: HEAD, cross-repository mount, upload, manifest
//!   last, immutable tags, docker credentials, basic and bearer auth, retries. Credentials go only
//!   to the registry's origin; private CAs are trusted when given (see the README).
//! - [`publish`]: build + push in one go; on a cache miss the gzip bytes stream into the registry
//!   while they are produced, and the config (which names only diff ids) is uploaded meanwhile.
//! - [`unpack`]: an image of a layout, by manifest digest, applied layer by layer (whiteouts,
//!   opaque directories) into a content-addressed cache of root filesystems (the local stage).
//!
//! Base images come from an OCI layout directory ([`layout::read_base`]) or a registry, by digest
//! ([`Registry::pull_base`]: every blob verified, kept in a content-addressed store).
//!
//! Not here yet: chunked
//! (PATCH with `Content-Range`) uploads of finished blobs, zstd layers.
//!
//! This crate does not print, read the clock for image content, or exit the process.

pub mod cache;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod layout;
pub mod publish;
pub mod registry;
pub mod spec;
mod tar;
pub mod timestamp;
pub mod unpack;

pub use cache::{CacheOutcome, FileStat, LayerCache};
pub use image::{BaseImage, Image, ImageError, ImageSpec, LayerBlob, assemble};
pub use image_ref::{Digest, ImageRef};
pub use layer::{Layer, LayerError, LayerFile, LayerSpec, build_layer};
pub use layout::{LayoutError, LayoutWrite, read_base, write_layout};
pub use publish::{PublishError, Published, Watch, build_and_push};
pub use registry::{
    BlobOutcome, ClientOptions, CredentialSources, Credentials, PullError, PushOptions, PushReport,
    Registry, RegistryError, TagStatus, resolve_credentials,
};
