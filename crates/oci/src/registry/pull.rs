//! Base images from a registry, pulled by digest: the manifest (through an index to linux/amd64),
//! the config and every layer, each verified against the digest that names it, kept in a
//! content-addressed store so a second build needs no network.
//!
//! The store is `<dir>/blobs/sha256/<hex>`, written atomically (temporary file, rename) only after
//! the bytes hashed to their name: a file there is a verified blob. Documents (manifests, config)
//! are small and re-hashed on every read; layers are checked by size.

use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use image_ref::{Digest, Sha256Hasher};
use reqwest::{Method, StatusCode, header};
use tokio::io::AsyncWriteExt as _;

use super::client::{Call, endpoint};
use super::error::RegistryError;
use super::push::Registry;
use crate::image::{BaseImage, LayerBlob};
use crate::spec::{
    self, Descriptor, ImageConfig, Index, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest,
};

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Why a base image could not be pulled.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PullError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    #[error("{what} {digest} is not in {repository}")]
    #[diagnostic(help(
        "check the base reference (`registry/repository@sha256:...`): copy the digest from `skopeo inspect docker://IMAGE` or the registry's UI"
    ))]
    NotFound {
        what: &'static str,
        repository: String,
        digest: Digest,
    },
    #[error("{what} of {repository} was asked for as {expected} but its bytes hash to {actual}")]
    #[diagnostic(help(
        "the registry served content that does not match its digest: nothing was used or kept. Check the digest in rel.toml, or the registry (a proxy rewriting manifests?)"
    ))]
    DigestMismatch {
        what: &'static str,
        repository: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} {digest} of {repository} has media type `{media_type}`, not {expected}")]
    #[diagnostic(help(
        "a base must be an OCI or Docker v2 image (or an index with a linux/amd64 image) with gzip, zstd or plain tar layers"
    ))]
    MediaType {
        what: &'static str,
        repository: String,
        digest: Digest,
        media_type: String,
        expected: &'static str,
    },
    #[error("image index {digest} of {repository} has no linux/amd64 image")]
    #[diagnostic(help("use the digest of a linux/amd64 image, or an index that has one"))]
    NoPlatform { repository: String, digest: Digest },
    #[error("{what} {digest} of {repository} is not valid JSON: {reason}")]
    #[diagnostic(help(
        "the registry served a broken document; check the image with `skopeo inspect`"
    ))]
    Json {
        what: &'static str,
        repository: String,
        digest: Digest,
        reason: String,
    },
    #[error(
        "image {digest} of {repository} has {layers} layers but its config lists {diff_ids} diff ids"
    )]
    #[diagnostic(help("the image is malformed; rebuild or choose another base"))]
    LayerCount {
        repository: String,
        digest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("blob store {}: {source}", path.display())]
    #[diagnostic(help("check that the directory is writable and the disk has room"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where verified blobs live.
fn blob_path(store: &Path, digest: &Digest) -> PathBuf {
    store.join("blobs").join("sha256").join(digest.hex())
}

impl Registry {
    /// The image `repository@digest` as a base: its layers (fetched into `store` unless there,
    /// each verified), env, history and platform. An index resolves to its linux/amd64 image.
    pub async fn pull_base(
        &self,
        repository: &str,
        digest: &Digest,
        store: &Path,
    ) -> Result<BaseImage, PullError> {
        let origin = format!("{}/{repository}@{digest}", self.t.registry);
        let (media_type, bytes) = self.document(repository, digest, store).await?;
        let (manifest_digest, manifest_bytes) =
            if media_type == MEDIA_TYPE_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST {
                let index: Index = parse(&bytes, "image index", repository, digest)?;
                let chosen = index
                    .manifests
                    .into_iter()
                    .find(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                    })
                    .ok_or_else(|| PullError::NoPlatform {
                        repository: repository.to_owned(),
                        digest: digest.clone(),
                    })?;
                let (_, inner) = self.document(repository, &chosen.digest, store).await?;
                (chosen.digest, inner)
            } else {
                (digest.clone(), bytes)
            };
        let manifest: Manifest = parse(
            &manifest_bytes,
            "image manifest",
            repository,
            &manifest_digest,
        )?;
        let kind = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_owned());
        if kind != MEDIA_TYPE_MANIFEST && kind != MEDIA_TYPE_DOCKER_MANIFEST {
            return Err(PullError::MediaType {
                what: "manifest",
                repository: repository.to_owned(),
                digest: manifest_digest,
                media_type: kind,
                expected: "an image manifest",
            });
        }
        let config_bytes = self
            .blob(repository, &manifest.config, store, "image config")
            .await?;
        let config_bytes = read(&config_bytes)?;
        let config: ImageConfig = parse(
            &config_bytes,
            "image config",
            repository,
            &manifest.config.digest,
        )?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(PullError::LayerCount {
                repository: repository.to_owned(),
                digest: manifest_digest,
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (d, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let media_type =
                spec::oci_layer_media_type(&d.media_type).ok_or_else(|| PullError::MediaType {
                    what: "layer",
                    repository: repository.to_owned(),
                    digest: d.digest.clone(),
                    media_type: d.media_type.clone(),
                    expected: "a gzip, zstd or plain tar layer",
                })?;
            let path = self.blob(repository, d, store, "layer").await?;
            layers.push(LayerBlob {
                descriptor: Descriptor::new(media_type, d.digest.clone(), d.size),
                diff_id: diff_id.clone(),
                path,
            });
        }
        Ok(BaseImage::from_config(config, layers, origin))
    }

    /// A manifest or index by digest, from the store or the registry; its media type and bytes.
    async fn document(
        &self,
        repository: &str,
        digest: &Digest,
        store: &Path,
    ) -> Result<(String, Vec<u8>), PullError> {
        let path = blob_path(store, digest);
        if let Ok(bytes) = std::fs::read(&path)
            && Digest::of(&bytes) == *digest
        {
            return Ok((media_type_of(&bytes), bytes));
        }
        let url = self
            .t
            .url(&format!("/v2/{repository}/manifests/{digest}"))?;
        let scopes = vec![format!("repository:{repository}:pull")];
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let accept = [(header::ACCEPT, ACCEPT.to_owned())];
        let resp = self.t.send(&call, &|| Ok(None), &accept).await?;
        let ep = endpoint(&Method::GET, &url);
        match resp.status() {
            StatusCode::NOT_FOUND => {
                return Err(PullError::NotFound {
                    what: "manifest",
                    repository: repository.to_owned(),
                    digest: digest.clone(),
                });
            }
            s if !s.is_success() => {
                return Err(RegistryError::from_response(&ep, resp).await.into());
            }
            _ => {}
        }
        let header_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            endpoint: ep,
            attempts: 1,
            cause: super::tls::chain(&e),
        })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(PullError::DigestMismatch {
                what: "manifest",
                repository: repository.to_owned(),
                expected: digest.clone(),
                actual,
            });
        }
        atomic_file::write_unsynced(&path, &bytes).map_err(|source| PullError::Io {
            path: path.clone(),
            source,
        })?;
        let media_type = match media_type_of(&bytes) {
            t if t.is_empty() => header_type.unwrap_or_default(),
            t => t,
        };
        Ok((media_type, bytes.to_vec()))
    }

    /// A blob by descriptor into the store (streamed, hashed while written, renamed into place
    /// only when digest and size match); its path.
    async fn blob(
        &self,
        repository: &str,
        d: &Descriptor,
        store: &Path,
        what: &'static str,
    ) -> Result<PathBuf, PullError> {
        let path = blob_path(store, &d.digest);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == d.size) {
            return Ok(path);
        }
        let url = self
            .t
            .url(&format!("/v2/{repository}/blobs/{}", d.digest))?;
        let scopes = vec![format!("repository:{repository}:pull")];
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            scopes: &scopes,
            body_len: d.size,
        };
        let resp = self.t.send(&call, &|| Ok(None), &[]).await?;
        let ep = endpoint(&Method::GET, &url);
        match resp.status() {
            StatusCode::NOT_FOUND => {
                return Err(PullError::NotFound {
                    what,
                    repository: repository.to_owned(),
                    digest: d.digest.clone(),
                });
            }
            s if !s.is_success() => {
                return Err(RegistryError::from_response(&ep, resp).await.into());
            }
            _ => {}
        }
        let io = |source| PullError::Io {
            path: path.clone(),
            source,
        };
        let tmp = atomic_file::temp_path(&path).map_err(io)?;
        let result = async {
            // A fresh temporary name, renamed over the blob's only once verified (like
            // `atomic_file::write_unsynced`: store entries are checked when read).
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await
                .map_err(io)?;
            let mut hasher = Sha256Hasher::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| RegistryError::Transport {
                    endpoint: ep.clone(),
                    attempts: 1,
                    cause: super::tls::chain(&e),
                })?;
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            let actual = hasher.finish();
            if actual != d.digest {
                return Err(PullError::DigestMismatch {
                    what,
                    repository: repository.to_owned(),
                    expected: d.digest.clone(),
                    actual,
                });
            }
            tokio::fs::rename(&tmp, &path).await.map_err(io)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| path.clone())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PullError> {
    std::fs::read(path).map_err(|source| PullError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The `mediaType` a manifest or index names for itself ("" when it names none).
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) if p.media_type.is_empty() && p.manifests.is_some() => MEDIA_TYPE_INDEX.to_owned(),
        Ok(p) if p.media_type.is_empty() => MEDIA_TYPE_MANIFEST.to_owned(),
        Ok(p) => p.media_type,
        Err(_) => String::new(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    repository: &str,
    digest: &Digest,
) -> Result<T, PullError> {
    serde_json::from_slice(bytes).map_err(|e| PullError::Json {
        what,
        repository: repository.to_owned(),
        digest: digest.clone(),
        reason: e.to_string(),
    })
}
