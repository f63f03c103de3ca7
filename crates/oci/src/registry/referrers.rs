//! Artifacts attached to an image: OCI 1.1 manifests with a `subject` and an `artifactType`
//! (SBOMs, attestations), found through the referrers API or, on registries without it, through
//! the tag-schema fallback (an image index tagged `sha256-<hex>` listing the referrers); and
//! cosign signature manifests (tag `sha256-<hex>.sig`, one simple-signing layer per signature).
//!
//! Nothing here signs or verifies: the caller brings signature bytes and checks them.

use std::collections::BTreeMap;

use image_ref::Digest;
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::client::{Call, endpoint};
use super::error::RegistryError;
use super::push::{BlobUpload, Registry};
use crate::spec::{Descriptor, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};

/// The OCI empty descriptor's media type (an artifact without a config).
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty JSON object every artifact without a config points at.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// cosign's simple-signing layer media type.
pub const MEDIA_TYPE_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a cosign signature (base64) on its layer.
pub const ANNOTATION_COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An image manifest with the OCI 1.1 fields (keys in lexicographic order: canonical bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
}

/// One entry of a referrers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referrer {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub digest: Digest,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReferrerIndex {
    #[serde(default)]
    manifests: Vec<Referrer>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
}

/// Where a referrers list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The `sha256-<hex>` tag (the registry has no referrers API).
    FallbackTag,
}

/// The tag-schema fallback tag of `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &Digest) -> String {
    digest.to_string().replacen(':', "-", 1)
}

/// One artifact for [`Registry::attach_all`]: its type, the media type and bytes of its one layer,
/// and the annotations of its manifest (also copied into the fallback index).
#[derive(Debug, Clone)]
pub struct Artifact<'a> {
    pub artifact_type: &'a str,
    pub media_type: &'a str,
    pub content: &'a [u8],
    pub annotations: BTreeMap<String, String>,
}

/// Attachments whose blobs and manifests are in the registry ([`Registry::stage_attachments`]),
/// to be listed in the fallback index ([`Registry::list_attachments`]).
#[derive(Debug, Clone)]
pub struct StagedAttachments {
    repository: String,
    subject: Digest,
    /// Entries the registry did not index itself.
    unlisted: Vec<Referrer>,
    /// The artifacts' manifest digests, in the order they were given.
    pub digests: Vec<Digest>,
}

/// A cosign signature whose payload is in the registry ([`Registry::stage_cosign_signature`]),
/// to be added to the signature manifest ([`Registry::add_cosign_signature`]).
#[derive(Debug, Clone)]
pub struct StagedSignature {
    repository: String,
    tag: String,
    /// The simple-signing layer, its signature annotated.
    layer: Descriptor,
    payload: Vec<u8>,
    signature_b64: String,
}

/// How many writes a read-merge-write of a shared manifest (the fallback index, the cosign
/// signature manifest) may take before giving up on a writer that keeps dropping our entries.
pub const CONVERGE_ROUNDS: u32 = 8;

/// After writing a shared manifest: wait twice as long as our read and write took (at least
/// 1 ms), so that a writer doing the same, who read the old manifest before our write, has
/// written before we read back. (Once as long loses one race in a few dozen in the tests.)
async fn settle(read_and_write: std::time::Duration) {
    tokio::time::sleep((read_and_write * 2).max(std::time::Duration::from_millis(1))).await;
}

fn manifest_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("manifests serialize")
}

impl Registry {
    fn pull_scopes(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull")]
    }

    fn push_scopes(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull,push")]
    }

    /// Upload `bytes` (a small blob: a config, a signature payload, an attestation) unless this
    /// client already put it in `repository`; its digest. There is no HEAD first: the blob goes
    /// into a spare session opened ahead ([`Registry::open_spare_uploads`]) in one PUT, else in
    /// one POST with `?digest=` (a registry that takes it whole answers 201; one that does not
    /// opens an upload session, which one PUT closes). Sending a blob the registry already has
    /// is harmless and costs what the HEAD would have.
    pub async fn put_blob(&self, repository: &str, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let key = (repository.to_owned(), digest.clone());
        if self.known_blobs.lock().expect("known blobs").contains(&key) {
            return Ok(digest);
        }
        if let Some(upload) = self.spare_upload(repository) {
            match self.upload_into(&upload, &digest, bytes).await {
                Ok(()) => {
                    self.known_blobs.lock().expect("known blobs").insert(key);
                    return Ok(digest);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a spare upload session failed; opening another");
                }
            }
        }
        let mut url = self.t.url(&format!("/v2/{repository}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let scopes = Self::push_scopes(repository);
        let call = Call {
            method: Method::POST,
            url: url.clone(),
            scopes: &scopes,
            body_len: bytes.len() as u64,
        };
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, bytes.len().to_string()),
        ];
        let owned = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .t
            .send(
                &call,
                &|| Ok(Some(reqwest::Body::from(owned.clone()))),
                &headers,
            )
            .await?;
        let ep = endpoint(&Method::POST, &url);
        match resp.status() {
            StatusCode::CREATED => {
                if let Some(got) = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    && got != digest.to_string()
                {
                    return Err(RegistryError::DigestMismatch {
                        endpoint: ep,
                        expected: digest,
                        got: got.to_owned(),
                    });
                }
            }
            StatusCode::ACCEPTED => {
                let upload = BlobUpload {
                    repository: repository.to_owned(),
                    location: self.location(&resp, &ep)?,
                    sent: 0,
                };
                self.upload_into(&upload, &digest, bytes).await?;
            }
            _ => return Err(RegistryError::from_response(&ep, resp).await),
        }
        self.known_blobs.lock().expect("known blobs").insert(key);
        Ok(digest)
    }

    /// Fetch a blob and check its digest.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = self.t.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let scopes = Self::pull_scopes(repository);
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self.t.send(&call, &|| Ok(None), &[]).await?;
        let ep = endpoint(&Method::GET, &url);
        if !resp.status().is_success() {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        let bytes = body(resp, &ep).await?;
        if Digest::of(&bytes) != *digest {
            return Err(RegistryError::DigestMismatch {
                endpoint: ep,
                expected: digest.clone(),
                got: Digest::of(&bytes).to_string(),
            });
        }
        Ok(bytes)
    }

    /// Put manifest `bytes` of `media_type` under `reference` (a tag or its digest); the registry
    /// must answer our digest. Returns whether the registry says it indexed the `subject`
    /// (the `OCI-Subject` header of registries with the referrers API).
    pub async fn put_manifest_bytes(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let url = self
            .t
            .url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let scopes = Self::push_scopes(repository);
        let call = Call {
            method: Method::PUT,
            url: url.clone(),
            scopes: &scopes,
            body_len: bytes.len() as u64,
        };
        let owned = bytes.to_vec();
        let headers = [(header::CONTENT_TYPE, media_type.to_owned())];
        let resp = self
            .t
            .send(
                &call,
                &|| Ok(Some(reqwest::Body::from(owned.clone()))),
                &headers,
            )
            .await?;
        let ep = endpoint(&Method::PUT, &url);
        if !resp.status().is_success() {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        let ours = Digest::of(bytes).to_string();
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && got != ours
        {
            return Err(RegistryError::DigestMismatch {
                endpoint: ep,
                expected: Digest::of(bytes),
                got: got.to_owned(),
            });
        }
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// Put a manifest whose blobs (`blobs`) this client has just put. A registry may not see a
    /// blob for a moment while another client commits the same bytes (distribution then answers
    /// MANIFEST_BLOB_UNKNOWN): the blobs are sent again and the manifest once more.
    async fn put_manifest_over(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        blobs: &[&[u8]],
    ) -> Result<bool, RegistryError> {
        match self
            .put_manifest_bytes(repository, reference, media_type, bytes)
            .await
        {
            Err(RegistryError::Status {
                status: 400,
                detail,
                ..
            }) if detail.contains("BLOB_UNKNOWN") => {
                {
                    let mut known = self.known_blobs.lock().expect("known blobs");
                    for b in blobs {
                        known.remove(&(repository.to_owned(), Digest::of(b)));
                    }
                }
                futures_util::future::try_join_all(
                    blobs.iter().map(|b| self.put_blob(repository, b)),
                )
                .await?;
                self.put_manifest_bytes(repository, reference, media_type, bytes)
                    .await
            }
            other => other,
        }
    }

    /// The manifest `reference` names, with its media type, or `None`.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        accept: &str,
    ) -> Result<Option<(String, Vec<u8>)>, RegistryError> {
        let url = self
            .t
            .url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let scopes = Self::pull_scopes(repository);
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self
            .t
            .send(&call, &|| Ok(None), &[(header::ACCEPT, accept.to_owned())])
            .await?;
        let ep = endpoint(&Method::GET, &url);
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let media_type = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let bytes = body(resp, &ep).await?;
                if let Ok(d) = reference.parse::<Digest>()
                    && Digest::of(&bytes) != d
                {
                    return Err(RegistryError::DigestMismatch {
                        endpoint: ep,
                        expected: d,
                        got: Digest::of(&bytes).to_string(),
                    });
                }
                Ok(Some((media_type, bytes)))
            }
            _ => Err(RegistryError::from_response(&ep, resp).await),
        }
    }

    /// The artifacts that name `subject`: from the referrers API, else from the fallback tag.
    /// Both are asked at once (one round trip on a registry without the API, not two).
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<(Vec<Referrer>, ReferrersSource), RegistryError> {
        let (api, fallback) = futures_util::future::join(
            self.referrers_api(repository, subject),
            self.fallback_index(repository, subject),
        )
        .await;
        if let Some(list) = api? {
            return Ok((list, ReferrersSource::Api));
        }
        Ok((
            fallback?.map(|i| i.manifests).unwrap_or_default(),
            ReferrersSource::FallbackTag,
        ))
    }

    /// `GET /v2/<name>/referrers/<digest>`: the list, or `None` when the registry has no such API.
    async fn referrers_api(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<Referrer>>, RegistryError> {
        let url = self
            .t
            .url(&format!("/v2/{repository}/referrers/{subject}"))?;
        let scopes = Self::pull_scopes(repository);
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self
            .t
            .send(
                &call,
                &|| Ok(None),
                &[(header::ACCEPT, MEDIA_TYPE_INDEX.to_owned())],
            )
            .await?;
        let ep = endpoint(&Method::GET, &url);
        let is_index = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with(MEDIA_TYPE_INDEX));
        if !(resp.status().is_success() && is_index) {
            return Ok(None);
        }
        let bytes = body(resp, &ep).await?;
        let index: ReferrerIndex =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadResponse {
                endpoint: ep,
                detail: format!("the referrers list is not an image index: {e}"),
            })?;
        Ok(Some(index.manifests))
    }

    async fn fallback_index(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<ReferrerIndex>, RegistryError> {
        let tag = fallback_tag(subject);
        let Some((_, bytes)) = self
            .get_manifest(repository, &tag, MEDIA_TYPE_INDEX)
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::BadResponse {
                endpoint: format!("GET {repository}:{tag}"),
                detail: format!("the referrers fallback tag is not an image index: {e}"),
            })
    }

    /// Attach `content` (of `media_type`) to `subject` as an artifact of `artifact_type`; see
    /// [`Registry::attach_all`].
    pub async fn attach(
        &self,
        repository: &str,
        subject: &Descriptor,
        artifact_type: &str,
        media_type: &str,
        content: &[u8],
        annotations: BTreeMap<String, String>,
    ) -> Result<Digest, RegistryError> {
        let artifact = Artifact {
            artifact_type,
            media_type,
            content,
            annotations,
        };
        let digests = self
            .attach_all(repository, subject, std::slice::from_ref(&artifact))
            .await?;
        Ok(digests
            .into_iter()
            .next()
            .expect("one artifact, one digest"))
    }

    /// Attach `artifacts` to `subject`, each an OCI 1.1 manifest of one layer:
    /// [`Registry::stage_attachments`], then [`Registry::list_attachments`]. Returns the
    /// manifests' digests in the order of `artifacts`. Rerunning converges.
    pub async fn attach_all(
        &self,
        repository: &str,
        subject: &Descriptor,
        artifacts: &[Artifact<'_>],
    ) -> Result<Vec<Digest>, RegistryError> {
        let staged = self
            .stage_attachments(repository, subject, artifacts)
            .await?;
        self.list_attachments(&staged).await?;
        Ok(staged.digests)
    }

    /// Put every blob of `artifacts` (and the one empty config) at once, then every manifest at
    /// once, by digest. Nothing lists them yet (unless the registry indexed the subject itself:
    /// `OCI-Subject`): [`Registry::list_attachments`] adds them to the fallback index. A caller
    /// with other uploads in flight may stage during them and list after, when the registry is
    /// quieter and the read-merge-write of the shared index is short.
    pub async fn stage_attachments(
        &self,
        repository: &str,
        subject: &Descriptor,
        artifacts: &[Artifact<'_>],
    ) -> Result<StagedAttachments, RegistryError> {
        let blobs = futures_util::future::try_join_all(
            artifacts
                .iter()
                .map(|a| self.put_blob(repository, a.content)),
        );
        let (blobs, config) =
            futures_util::future::try_join(blobs, self.put_blob(repository, EMPTY_CONFIG)).await?;
        let manifests: Vec<Vec<u8>> = artifacts
            .iter()
            .zip(blobs)
            .map(|(a, blob)| {
                manifest_bytes(&ArtifactManifest {
                    annotations: a.annotations.clone(),
                    artifact_type: Some(a.artifact_type.to_owned()),
                    config: Descriptor::new(
                        MEDIA_TYPE_EMPTY,
                        config.clone(),
                        EMPTY_CONFIG.len() as u64,
                    ),
                    layers: vec![Descriptor::new(a.media_type, blob, a.content.len() as u64)],
                    media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
                    schema_version: 2,
                    subject: Some(Descriptor::new(
                        &subject.media_type,
                        subject.digest.clone(),
                        subject.size,
                    )),
                })
            })
            .collect();
        let digests: Vec<Digest> = manifests.iter().map(|m| Digest::of(m)).collect();
        let indexed =
            futures_util::future::try_join_all(manifests.iter().zip(&digests).zip(artifacts).map(
                |((bytes, digest), a)| async move {
                    self.put_manifest_over(
                        repository,
                        &digest.to_string(),
                        MEDIA_TYPE_MANIFEST,
                        bytes,
                        &[a.content, EMPTY_CONFIG],
                    )
                    .await
                },
            ))
            .await?;
        let ours: Vec<Referrer> = artifacts
            .iter()
            .zip(&manifests)
            .zip(&digests)
            .zip(indexed)
            .filter(|(_, indexed)| !indexed)
            .map(|(((a, bytes), digest), _)| Referrer {
                annotations: a.annotations.clone(),
                artifact_type: Some(a.artifact_type.to_owned()),
                digest: digest.clone(),
                media_type: MEDIA_TYPE_MANIFEST.to_owned(),
                size: bytes.len() as u64,
            })
            .collect();
        Ok(StagedAttachments {
            repository: repository.to_owned(),
            subject: subject.digest.clone(),
            unlisted: ours,
            digests,
        })
    }

    /// List staged attachments in the fallback index of their subject (nothing to do where the
    /// registry indexed them itself). Rerunning converges.
    ///
    /// The fallback index is read, extended and written, which two writers can interleave so
    /// that one drops the other's entries. After writing, the index is read back (after waiting
    /// twice as long as the read and write took, so a writer that read before ours has written)
    /// and what is missing of ours is merged in again, up to a bounded number of rounds. A writer
    /// that read before our write and writes after our read-back can still drop our entries: the
    /// fallback has no compare-and-swap. Registries with the referrers API have no such window.
    pub async fn list_attachments(&self, staged: &StagedAttachments) -> Result<(), RegistryError> {
        if staged.unlisted.is_empty() {
            return Ok(());
        }
        self.converge_fallback_index(&staged.repository, &staged.subject, &staged.unlisted)
            .await
    }

    /// Read, merge `ours` into, write and read back the fallback index of `subject` until it
    /// lists every one of `ours` (at most [`CONVERGE_ROUNDS`] writes).
    async fn converge_fallback_index(
        &self,
        repository: &str,
        subject: &Digest,
        ours: &[Referrer],
    ) -> Result<(), RegistryError> {
        let tag = fallback_tag(subject);
        let mut read_at = std::time::Instant::now();
        let mut current = self.fallback_index(repository, subject).await?;
        for _ in 0..CONVERGE_ROUNDS {
            let mut index = current.unwrap_or_else(|| ReferrerIndex {
                manifests: Vec::new(),
                media_type: Some(MEDIA_TYPE_INDEX.to_owned()),
                schema_version: 2,
            });
            let missing: Vec<Referrer> = ours
                .iter()
                .filter(|r| !index.manifests.iter().any(|m| m.digest == r.digest))
                .cloned()
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            index.manifests.extend(missing);
            self.put_manifest_bytes(repository, &tag, MEDIA_TYPE_INDEX, &manifest_bytes(&index))
                .await?;
            settle(read_at.elapsed()).await;
            read_at = std::time::Instant::now();
            current = self.fallback_index(repository, subject).await?;
        }
        Err(RegistryError::Contended {
            reference: format!("{repository}:{tag}"),
            rounds: CONVERGE_ROUNDS,
        })
    }

    /// The manifest of an attached artifact and the bytes of its first layer.
    pub async fn artifact_content(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<(ArtifactManifest, Vec<u8>), RegistryError> {
        let ep = format!("GET {repository}@{digest}");
        let (_, bytes) = self
            .get_manifest(repository, &digest.to_string(), MEDIA_TYPE_MANIFEST)
            .await?
            .ok_or_else(|| RegistryError::BadResponse {
                endpoint: ep.clone(),
                detail: "the referrers list names a manifest the registry does not have".into(),
            })?;
        let manifest: ArtifactManifest =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadResponse {
                endpoint: ep.clone(),
                detail: format!("not an OCI manifest: {e}"),
            })?;
        let layer = manifest
            .layers
            .first()
            .ok_or_else(|| RegistryError::BadResponse {
                endpoint: ep,
                detail: "the artifact has no layer".into(),
            })?;
        let content = self.get_blob(repository, &layer.digest).await?;
        Ok((manifest, content))
    }

    /// Add a cosign signature (`signature_b64` over `payload`) to the `sha256-<hex>.sig` manifest
    /// of `subject`, keeping the signatures already there: [`Registry::stage_cosign_signature`],
    /// then [`Registry::add_cosign_signature`]. Rerunning converges.
    pub async fn push_cosign_signature(
        &self,
        repository: &str,
        subject: &Digest,
        payload: &[u8],
        signature_b64: &str,
    ) -> Result<Digest, RegistryError> {
        let staged = self
            .stage_cosign_signature(repository, subject, payload, signature_b64)
            .await?;
        self.add_cosign_signature(&staged).await
    }

    /// Put a signature's payload, and the config of a signature manifest holding it alone (the
    /// usual case of a new image). Nothing names them until [`Registry::add_cosign_signature`].
    pub async fn stage_cosign_signature(
        &self,
        repository: &str,
        subject: &Digest,
        payload: &[u8],
        signature_b64: &str,
    ) -> Result<StagedSignature, RegistryError> {
        let mut layer = Descriptor::new(
            MEDIA_TYPE_SIMPLE_SIGNING,
            Digest::of(payload),
            payload.len() as u64,
        );
        layer.annotations.insert(
            ANNOTATION_COSIGN_SIGNATURE.to_owned(),
            signature_b64.to_owned(),
        );
        futures_util::future::try_join(
            self.put_blob(repository, payload),
            self.put_blob(repository, &signature_config(std::slice::from_ref(&layer))),
        )
        .await?;
        Ok(StagedSignature {
            repository: repository.to_owned(),
            tag: cosign_signature_tag(subject),
            layer,
            payload: payload.to_vec(),
            signature_b64: signature_b64.to_owned(),
        })
    }

    /// Add a staged signature to the signature manifest: read it, add ours, write it, and read it
    /// back (after waiting as [`Registry::list_attachments`] does) until it holds our signature;
    /// the manifest's digest then. Rerunning converges.
    pub async fn add_cosign_signature(
        &self,
        staged: &StagedSignature,
    ) -> Result<Digest, RegistryError> {
        let StagedSignature {
            repository,
            tag,
            layer,
            payload,
            signature_b64,
        } = staged;
        let is_ours = |l: &Descriptor| {
            l.digest == layer.digest
                && l.annotations
                    .get(ANNOTATION_COSIGN_SIGNATURE)
                    .map(String::as_str)
                    == Some(signature_b64.as_str())
        };
        for _ in 0..CONVERGE_ROUNDS {
            let read_at = std::time::Instant::now();
            let mut layers = match self.signature_manifest(repository, tag).await? {
                Some((digest, layers)) if layers.iter().any(is_ours) => return Ok(digest),
                Some((_, layers)) => layers,
                None => Vec::new(),
            };
            layers.push(layer.clone());
            // Already up when the manifest held no other signature.
            let config = signature_config(&layers);
            let config_digest = self.put_blob(repository, &config).await?;
            let manifest = ArtifactManifest {
                annotations: BTreeMap::new(),
                artifact_type: None,
                config: Descriptor::new(MEDIA_TYPE_CONFIG, config_digest, config.len() as u64),
                layers,
                media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
                schema_version: 2,
                subject: None,
            };
            self.put_manifest_over(
                repository,
                tag,
                MEDIA_TYPE_MANIFEST,
                &manifest_bytes(&manifest),
                &[payload, &config],
            )
            .await?;
            settle(read_at.elapsed()).await;
        }
        match self.signature_manifest(repository, tag).await? {
            Some((digest, layers)) if layers.iter().any(is_ours) => Ok(digest),
            _ => Err(RegistryError::Contended {
                reference: format!("{repository}:{tag}"),
                rounds: CONVERGE_ROUNDS,
            }),
        }
    }

    /// The cosign signature manifest under `tag`: its digest and layers.
    async fn signature_manifest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<(Digest, Vec<Descriptor>)>, RegistryError> {
        Ok(self
            .get_manifest(repository, tag, MEDIA_TYPE_MANIFEST)
            .await?
            .map(|(_, bytes)| {
                let layers = serde_json::from_slice::<ArtifactManifest>(&bytes)
                    .map(|m| m.layers)
                    .unwrap_or_default();
                (Digest::of(&bytes), layers)
            }))
    }

    /// The cosign signatures of `subject`: each layer's payload and its base64 signature.
    pub async fn cosign_signatures(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Vec<(Vec<u8>, String)>, RegistryError> {
        let tag = cosign_signature_tag(subject);
        let Some((_, bytes)) = self
            .get_manifest(repository, &tag, MEDIA_TYPE_MANIFEST)
            .await?
        else {
            return Ok(Vec::new());
        };
        let manifest: ArtifactManifest =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadResponse {
                endpoint: format!("GET {repository}:{tag}"),
                detail: format!("the signature manifest is not an OCI manifest: {e}"),
            })?;
        // Every payload at once.
        futures_util::future::try_join_all(
            manifest
                .layers
                .iter()
                .filter(|l| l.media_type == MEDIA_TYPE_SIMPLE_SIGNING)
                .filter_map(|l| Some((l, l.annotations.get(ANNOTATION_COSIGN_SIGNATURE)?)))
                .map(|(layer, sig)| async move {
                    let payload = self.get_blob(repository, &layer.digest).await?;
                    Ok::<_, RegistryError>((payload, sig.clone()))
                }),
        )
        .await
    }
}

/// The config of a cosign signature manifest: the layers as diff ids (they are not compressed),
/// as cosign writes it.
fn signature_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"diff_ids": diff_ids, "type": "layers"},
    }))
    .expect("json")
}

/// cosign's signature tag of `digest`: `sha256-<hex>.sig`.
pub fn cosign_signature_tag(digest: &Digest) -> String {
    format!("{}.sig", fallback_tag(digest))
}

/// cosign's simple-signing payload for `docker_reference` (the repository, without tag or digest)
/// at `digest`, in cosign's byte layout.
pub fn simple_signing_payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .expect("json")
}

async fn body(resp: reqwest::Response, ep: &str) -> Result<Vec<u8>, RegistryError> {
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|source| RegistryError::Transport {
            endpoint: ep.to_owned(),
            attempts: 1,
            cause: super::tls::chain(&source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_payload_follow_cosign() {
        let d: Digest = "sha256:62ae288d059f84a10e47af8945d1062c7fb84168577b7f5eed211d85e2686e19"
            .parse()
            .unwrap();
        assert_eq!(
            cosign_signature_tag(&d),
            "sha256-62ae288d059f84a10e47af8945d1062c7fb84168577b7f5eed211d85e2686e19.sig"
        );
        assert_eq!(
            String::from_utf8(simple_signing_payload(
                "localhost:5000/platform/gateway",
                &d
            ))
            .unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"localhost:5000/platform/gateway"},"image":{"docker-manifest-digest":"sha256:62ae288d059f84a10e47af8945d1062c7fb84168577b7f5eed211d85e2686e19"},"type":"cosign container image signature"},"optional":null}"#
        );
    }
}
