//! OCI image layout directories: write an image under a tag (the embedded default, no registry),
//! and read a base image from one.
//!
//! Writes are atomic per file (blobs first, `index.json` last), so a crash leaves the previous
//! index intact. Two processes writing one layout at the same time may lose one's index entry:
//! callers write sequentially.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image_ref::Digest;

use crate::image::{BaseImage, Image, LayerBlob};
use crate::spec::{
    self, ANNOTATION_REF_NAME, Descriptor, ImageConfig, Index, MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest,
};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Why a layout could not be written or read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayoutError {
    #[error("cannot access `{path}`: {source}")]
    #[diagnostic(help("check that the path exists and that this user may read and write it"))]
    Io { path: PathBuf, source: io::Error },
    #[error("`{path}` is not valid JSON for an OCI {what}: {source}")]
    #[diagnostic(help(
        "the layout was written or changed by another tool; write it again, or check the file"
    ))]
    Json {
        path: PathBuf,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("OCI layout `{dir}` has no image{}", match .reference { Some(r) => format!(" named `{r}`"), None => String::new() })]
    #[diagnostic(help(
        "name an image the layout holds (its `org.opencontainers.image.ref.name`), or write one there first"
    ))]
    NotFound {
        dir: PathBuf,
        reference: Option<String>,
    },
    #[error("OCI layout `{dir}` holds several images; name one of: {names}")]
    #[diagnostic(help("name the image to use, as a tag after the layout path"))]
    Ambiguous { dir: PathBuf, names: String },
    #[error("OCI layout `{dir}`: no linux/amd64 image in index `{digest}`")]
    #[diagnostic(help(
        "use a base image index with a linux/amd64 entry, or a single-platform image"
    ))]
    NoPlatform { dir: PathBuf, digest: Digest },
    #[error("OCI layout `{dir}`: unsupported media type `{media_type}` for {what}")]
    #[diagnostic(help(
        "use an OCI or Docker v2 image (gzip layers); convert other formats first, e.g. with skopeo copy"
    ))]
    MediaType {
        dir: PathBuf,
        media_type: String,
        what: &'static str,
    },
    #[error("OCI layout `{dir}`: blob `{digest}` does not match its digest")]
    #[diagnostic(help(
        "the blob changed after it was written; copy the layout again from its source"
    ))]
    Corrupt { dir: PathBuf, digest: Digest },
    #[error("OCI layout `{dir}`: base image has {layers} layers but {diff_ids} diff ids")]
    #[diagnostic(help(
        "the base image config does not fit its manifest; rebuild or re-copy the base image"
    ))]
    LayerCount {
        dir: PathBuf,
        layers: usize,
        diff_ids: usize,
    },
}

/// What writing an image into a layout did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayoutWrite {
    /// Blobs (config, layers, manifest) newly stored.
    pub blobs_written: usize,
    /// Blobs the layout already had.
    pub blobs_present: usize,
    /// The digest `tag` pointed at before, when it pointed elsewhere.
    pub replaced: Option<Digest>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Path of a blob in a layout.
pub(crate) fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

/// Store `image` in the layout at `dir` (created when missing) and point `tag` at it in
/// `index.json` (annotation `org.opencontainers.image.ref.name`). Readable as `oci:DIR:TAG` by
/// skopeo and umoci.
pub fn write_layout(dir: &Path, image: &Image, tag: &str) -> Result<LayoutWrite, LayoutError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut report = LayoutWrite::default();
    let layout_file = dir.join("oci-layout");
    if !layout_file.exists() {
        atomic_file::write(&layout_file, OCI_LAYOUT).map_err(io_err(&layout_file))?;
    }
    for layer in &image.layers {
        let target = blob_path(dir, &layer.descriptor.digest);
        if present(&target, layer.descriptor.size) {
            report.blobs_present += 1;
        } else {
            atomic_file::link_or_copy(&layer.path, &target).map_err(io_err(&target))?;
            report.blobs_written += 1;
        }
    }
    for (digest, bytes) in [
        (&image.config_digest, &image.config),
        (&image.manifest_digest, &image.manifest),
    ] {
        let target = blob_path(dir, digest);
        if present(&target, bytes.len() as u64) {
            report.blobs_present += 1;
        } else {
            atomic_file::write(&target, bytes).map_err(io_err(&target))?;
            report.blobs_written += 1;
        }
    }
    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(bytes) => {
            serde_json::from_slice::<Index>(&bytes).map_err(|source| LayoutError::Json {
                path: index_path.clone(),
                what: "image index",
                source,
            })?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index {
            manifests: Vec::new(),
            media_type: Some(MEDIA_TYPE_INDEX.into()),
            schema_version: 2,
        },
        Err(source) => {
            return Err(LayoutError::Io {
                path: index_path,
                source,
            });
        }
    };
    let mut descriptor = image.manifest_descriptor();
    descriptor
        .annotations
        .insert(ANNOTATION_REF_NAME.into(), tag.to_owned());
    let mut replaced = None;
    index.manifests.retain(|d| {
        let same_tag = d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag);
        if same_tag && d.digest != image.manifest_digest {
            replaced = Some(d.digest.clone());
        }
        !same_tag
    });
    index.manifests.push(descriptor);
    report.replaced = replaced;
    atomic_file::write(&index_path, &spec::canonical_json(&index)).map_err(io_err(&index_path))?;
    Ok(report)
}

fn present(path: &Path, size: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() == size)
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<(Vec<u8>, T), LayoutError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let value = serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
        path: path.to_owned(),
        what,
        source,
    })?;
    Ok((bytes, value))
}

fn read_blob_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    digest: &Digest,
    what: &'static str,
) -> Result<T, LayoutError> {
    let (bytes, value) = read_json(&blob_path(dir, digest), what)?;
    if &Digest::of(&bytes) != digest {
        return Err(LayoutError::Corrupt {
            dir: dir.to_owned(),
            digest: digest.clone(),
        });
    }
    Ok(value)
}

/// The digest `reference` (a ref name) points at in the layout's `index.json`, if any.
pub fn resolve_tag(dir: &Path, reference: &str) -> Result<Option<Descriptor>, LayoutError> {
    let (_, index): (_, Index) = read_json(&dir.join("index.json"), "image index")?;
    Ok(index
        .manifests
        .into_iter()
        .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(reference)))
}

/// Read a base image from the layout at `dir`: the manifest named `reference`, or the only one.
/// A multi-platform index is resolved to its linux/amd64 entry. Docker v2 layer media types are
/// taken as their OCI equivalents (same bytes).
pub fn read_base(dir: &Path, reference: Option<&str>) -> Result<BaseImage, LayoutError> {
    let (_, index): (_, Index) = read_json(&dir.join("index.json"), "image index")?;
    let chosen = match reference {
        Some(r) => index
            .manifests
            .iter()
            .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(r))
            .cloned(),
        None if index.manifests.len() > 1 => {
            let names: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
                .collect();
            return Err(LayoutError::Ambiguous {
                dir: dir.to_owned(),
                names: names.join(", "),
            });
        }
        None => index.manifests.first().cloned(),
    };
    let mut desc = chosen.ok_or_else(|| LayoutError::NotFound {
        dir: dir.to_owned(),
        reference: reference.map(str::to_owned),
    })?;
    if desc.media_type == MEDIA_TYPE_INDEX || desc.media_type == MEDIA_TYPE_DOCKER_LIST {
        let inner: Index = read_blob_json(dir, &desc.digest, "image index")?;
        desc = inner
            .manifests
            .into_iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| LayoutError::NoPlatform {
                dir: dir.to_owned(),
                digest: desc.digest.clone(),
            })?;
    }
    if desc.media_type != MEDIA_TYPE_MANIFEST && desc.media_type != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(LayoutError::MediaType {
            dir: dir.to_owned(),
            media_type: desc.media_type,
            what: "a manifest",
        });
    }
    let manifest: Manifest = read_blob_json(dir, &desc.digest, "image manifest")?;
    let config: ImageConfig = read_blob_json(dir, &manifest.config.digest, "image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(LayoutError::LayerCount {
            dir: dir.to_owned(),
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let media_type =
            spec::oci_layer_media_type(&d.media_type).ok_or_else(|| LayoutError::MediaType {
                dir: dir.to_owned(),
                media_type: d.media_type.clone(),
                what: "a layer",
            })?;
        let path = blob_path(dir, &d.digest);
        if !present(&path, d.size) {
            return Err(LayoutError::Io {
                path,
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "layer blob missing or of the wrong size",
                ),
            });
        }
        layers.push(LayerBlob {
            descriptor: Descriptor::new(media_type, d.digest.clone(), d.size),
            diff_id: diff_id.clone(),
            path,
        });
    }
    let origin = format!(
        "oci:{}{}",
        dir.display(),
        reference.map(|r| format!(":{r}")).unwrap_or_default()
    );
    Ok(BaseImage::from_config(config, layers, origin))
}
