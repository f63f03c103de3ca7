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
//! Not here yet: base images from a registry (bases come from an OCI layout directory), chunked
//! (PATCH with `Content-Range`) uploads of finished blobs, zstd layers.
//!
//! This crate does not print, read the clock for image content, or exit the process.

mod atomic;
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

pub use cache::{CacheOutcome, LayerCache};
pub use image::{BaseImage, Image, ImageError, ImageSpec, LayerBlob, assemble};
pub use image_ref::{Digest, ImageRef};
pub use layer::{Layer, LayerError, LayerFile, LayerSpec, build_layer};
pub use layout::{LayoutError, LayoutWrite, read_base, write_layout};
pub use publish::{PublishError, Published, build_and_push};
pub use registry::{
    BlobOutcome, ClientOptions, CredentialSources, Credentials, PushOptions, PushReport, Registry,
    RegistryError, TagStatus, resolve_credentials,
};

/// Every `#[error]` variant in this crate's sources has a `#[diagnostic(help(...))]` that says
/// how to fix it, or is `#[error(transparent)] #[diagnostic(transparent)]`.
#[cfg(test)]
mod every_error_has_help {
    fn sources(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }

    /// The variants (file:line) whose attributes lack a help.
    fn missing_help(text: &str) -> Vec<usize> {
        let lines: Vec<&str> = text.lines().collect();
        let mut missing = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("#[error(") {
                continue;
            }
            let transparent = line.contains("#[error(transparent)]");
            // The attributes run until the variant's own line.
            let attrs: String = lines[i..]
                .iter()
                .take_while(|l| {
                    let t = l.trim_start();
                    !t.starts_with(|c: char| c.is_ascii_uppercase())
                })
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let ok = if transparent {
                attrs.contains("#[diagnostic(transparent)]")
            } else {
                attrs.contains("help(")
            };
            if !ok {
                missing.push(i + 1);
            }
        }
        missing
    }

    #[test]
    fn every_error_variant_has_a_help() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let missing: Vec<String> = files
            .iter()
            .flat_map(|(path, text)| {
                missing_help(text)
                    .into_iter()
                    .map(move |line| format!("{}:{line}", path.display()))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "error variants without a #[diagnostic(help(...))]:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn the_check_sees_a_variant_without_help() {
        let text = "enum E {\n    #[error(\"x\")]\n    A,\n    #[error(\"y\")]\n    #[diagnostic(help(\"fix\"))]\n    B,\n    #[error(transparent)]\n    C(X),\n}\n";
        assert_eq!(missing_help(text), vec![2, 7]);
    }
}
