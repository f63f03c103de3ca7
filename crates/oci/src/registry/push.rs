//! Pushing an image: blobs first (HEAD → skip, cross-repository mount, or monolithic upload),
//! the manifest last, its digest checked against ours; tags are immutable unless told otherwise.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::try_join_all;
use image_ref::{Digest, ImageRef};
use reqwest::{Method, StatusCode, header};
use serde::Serialize;

use super::client::{Call, ClientOptions, Transport, endpoint};
use super::credentials::Credentials;
use super::error::RegistryError;
use crate::image::Image;
use crate::spec::MEDIA_TYPE_MANIFEST;

/// What to do besides pushing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// Move a tag that points at another digest (otherwise that is an error naming both).
    pub allow_overwrite: bool,
    /// Repositories of the same registry that may already hold our blobs (e.g. the other
    /// components of the release); a missing blob is mounted from the first that has it.
    pub mount_from: Vec<String>,
}

/// How one blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum BlobOutcome {
    Uploaded,
    AlreadyPresent,
    Mounted { from: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobPush {
    pub digest: Digest,
    pub size: u64,
    #[serde(flatten)]
    pub outcome: BlobOutcome,
}

/// What happened to the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum TagStatus {
    /// The manifest was put (under the tag, or by digest when there is no tag).
    Created,
    /// The tag (or digest) already pointed at our manifest: nothing was sent.
    Unchanged,
    /// The tag pointed at `previous` and was moved (`allow_overwrite`).
    Overwritten { previous: Digest },
}

/// The result of a push. `digest` is verified: the registry answered it for our manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// `registry/repository@sha256:…`
    pub reference: String,
    pub digest: Digest,
    pub tag: Option<String>,
    pub tag_status: TagStatus,
    /// Layers in manifest order, then the config.
    pub blobs: Vec<BlobPush>,
    pub bytes_uploaded: u64,
    /// Requests sent again after a 5xx, 429, timeout or dropped connection.
    pub retries: u32,
}

impl PushReport {
    pub fn count(&self, f: impl Fn(&BlobOutcome) -> bool) -> usize {
        self.blobs.iter().filter(|b| f(&b.outcome)).count()
    }
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A client for one registry host.
pub struct Registry {
    pub(super) t: Transport,
    /// Small blobs this client put (or found) per repository: not sent or asked for again.
    pub(super) known_blobs: std::sync::Mutex<std::collections::HashSet<(String, Digest)>>,
    /// Upload sessions opened ahead per repository ([`Registry::open_spare_uploads`]), each
    /// taken by one [`Registry::put_blob`].
    pub(super) spare_uploads: std::sync::Mutex<HashMap<String, Vec<BlobUpload>>>,
}

/// What one client prepared for another ([`Registry::take_ahead`], [`Registry::adopt`]): upload
/// sessions opened and small blobs put while the other had nothing to send yet.
#[derive(Debug, Default)]
pub struct UploadsAhead {
    sessions: HashMap<String, Vec<BlobUpload>>,
    known: std::collections::HashSet<(String, Digest)>,
}

impl UploadsAhead {
    /// No session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.values().all(Vec::is_empty)
    }
}

enum BlobData<'a> {
    /// A file, and a counter of the bytes sent from it (a caller's progress).
    File(&'a Path, Option<&'a Arc<AtomicU64>>),
    Bytes(&'a [u8]),
}

impl Registry {
    /// A client for `registry` (`127.0.0.1:5000`, `ghcr.io`; `docker.io` goes to its API host).
    pub fn new(
        registry: &str,
        credentials: Option<Credentials>,
        options: ClientOptions,
    ) -> Result<Self, RegistryError> {
        Ok(Registry {
            t: Transport::new(registry, credentials, options)?,
            known_blobs: Default::default(),
            spare_uploads: Default::default(),
        })
    }

    /// Open `count` upload sessions in `repository` now and keep them for
    /// [`Registry::put_blob`]: each small blob put later is one request (a PUT) instead of two.
    /// For a caller with idle time before its blobs exist (signatures, attestations).
    pub async fn open_spare_uploads(
        &self,
        repository: &str,
        count: usize,
    ) -> Result<(), RegistryError> {
        let opened =
            futures_util::future::join_all((0..count).map(|_| self.begin_upload(repository))).await;
        let mut first_error = None;
        let mut spare = self.spare_uploads.lock().expect("spare uploads");
        for session in opened {
            match session {
                Ok(s) => spare.entry(repository.to_owned()).or_default().push(s),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The spare sessions and known blobs of this client, for another ([`Registry::adopt`]):
    /// e.g. made on a thread of its own while the caller's runtime was busy elsewhere.
    pub fn take_ahead(&self) -> UploadsAhead {
        UploadsAhead {
            sessions: std::mem::take(&mut *self.spare_uploads.lock().expect("spare uploads")),
            known: std::mem::take(&mut *self.known_blobs.lock().expect("known blobs")),
        }
    }

    /// Use what another client of the same registry prepared ([`Registry::take_ahead`]).
    pub fn adopt(&self, ahead: UploadsAhead) {
        let mut spare = self.spare_uploads.lock().expect("spare uploads");
        for (repository, sessions) in ahead.sessions {
            spare.entry(repository).or_default().extend(sessions);
        }
        self.known_blobs
            .lock()
            .expect("known blobs")
            .extend(ahead.known);
    }

    /// Cancel the spare upload sessions no blob took.
    pub async fn abort_spare_uploads(&self) {
        let spare: Vec<BlobUpload> =
            std::mem::take(&mut *self.spare_uploads.lock().expect("spare uploads"))
                .into_values()
                .flatten()
                .collect();
        futures_util::future::join_all(spare.into_iter().map(|s| self.abort_upload(s))).await;
    }

    /// A spare upload session of `repository`, if one is left.
    pub(super) fn spare_upload(&self, repository: &str) -> Option<BlobUpload> {
        self.spare_uploads
            .lock()
            .expect("spare uploads")
            .get_mut(repository)
            .and_then(Vec::pop)
    }

    pub fn registry(&self) -> &str {
        &self.t.registry
    }

    fn scopes(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull,push")]
    }

    /// The digest `reference` (a tag or digest) points at in `repository`, or `None`.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self
            .t
            .url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let scopes = Self::scopes(repository);
        let accept = [(header::ACCEPT, MANIFEST_ACCEPT.to_owned())];
        let call = Call {
            method: Method::HEAD,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self.t.send(&call, &|| Ok(None), &accept).await?;
        let ep = endpoint(&Method::HEAD, &url);
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                if let Some(d) = header_digest(&resp) {
                    return Ok(Some(d));
                }
                // No Docker-Content-Digest: hash the manifest bytes.
                let call = Call {
                    method: Method::GET,
                    url: url.clone(),
                    scopes: &scopes,
                    body_len: 0,
                };
                let resp = self.t.send(&call, &|| Ok(None), &accept).await?;
                if !resp.status().is_success() {
                    return Err(
                        RegistryError::from_response(&endpoint(&Method::GET, &url), resp).await,
                    );
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|source| RegistryError::Transport {
                        endpoint: ep,
                        attempts: 1,
                        cause: super::tls::chain(&source),
                    })?;
                Ok(Some(Digest::of(&bytes)))
            }
            _ => Err(RegistryError::from_response(&ep, resp).await),
        }
    }

    /// Whether `repository` has the blob `digest`.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        self.blob_in(repository, digest, &Self::scopes(repository))
            .await
    }

    async fn blob_in(
        &self,
        repository: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<bool, RegistryError> {
        let url = self.t.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let call = Call {
            method: Method::HEAD,
            url: url.clone(),
            scopes,
            body_len: 0,
        };
        let resp = self.t.send(&call, &|| Ok(None), &[]).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(RegistryError::from_response(&endpoint(&Method::HEAD, &url), resp).await),
        }
    }

    /// Push `image` to `target` (its registry must be this client's; its tag, if any, is set).
    pub async fn push(
        &self,
        target: &ImageRef,
        image: &Image,
        options: &PushOptions,
    ) -> Result<PushReport, RegistryError> {
        self.push_with(target, image, options, Known::default())
            .await
    }

    /// Open an upload session in `repository` before the blob's digest is known.
    pub async fn begin_upload(&self, repository: &str) -> Result<BlobUpload, RegistryError> {
        Ok(BlobUpload {
            repository: repository.to_owned(),
            location: self.start_upload(repository).await?,
            sent: 0,
        })
    }

    /// Send a blob's bytes into `upload` as they are produced, in one streamed PATCH (no retry:
    /// on failure, upload the finished blob again with [`Registry::push`]).
    pub async fn stream_upload<S>(
        &self,
        mut upload: BlobUpload,
        chunks: S,
        size_hint: u64,
    ) -> Result<BlobUpload, RegistryError>
    where
        S: futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static,
    {
        let url = self.t.url(&upload.location)?;
        let scopes = Self::scopes(&upload.repository);
        let call = Call {
            method: Method::PATCH,
            url: url.clone(),
            scopes: &scopes,
            body_len: size_hint,
        };
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = counted.clone();
        let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(
            futures_util::StreamExt::inspect(chunks, move |chunk| {
                if let Ok(b) = chunk {
                    c.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }),
        )));
        let make = || -> Result<Option<reqwest::Body>, RegistryError> {
            body.lock()
                .expect("body lock")
                .take()
                .map(Some)
                .ok_or_else(|| RegistryError::BadResponse {
                    endpoint: endpoint(&Method::PATCH, &url),
                    detail: "a streamed upload cannot be sent twice".into(),
                })
        };
        let headers = [(header::CONTENT_TYPE, "application/octet-stream".to_owned())];
        let resp = self.t.send(&call, &make, &headers).await?;
        let ep = endpoint(&Method::PATCH, &url);
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        upload.location = self.location(&resp, &ep)?;
        upload.sent = counted.load(std::sync::atomic::Ordering::Relaxed);
        Ok(upload)
    }

    /// Close a streamed upload with the digest of what was sent.
    pub async fn commit_upload(
        &self,
        upload: &BlobUpload,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let mut url = self.t.url(&upload.location)?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let scopes = Self::scopes(&upload.repository);
        let call = Call {
            method: Method::PUT,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let headers = [(header::CONTENT_LENGTH, "0".to_owned())];
        let resp = self.t.send(&call, &|| Ok(None), &headers).await?;
        if !resp.status().is_success() {
            return Err(RegistryError::from_response(&endpoint(&Method::PUT, &url), resp).await);
        }
        Ok(())
    }

    /// Cancel an upload session opened with [`Registry::begin_upload`] that will not be used
    /// (the blob turned out to be cached and present). Best effort: a registry purges stale
    /// sessions itself, so a failure is only logged.
    pub async fn abort_upload(&self, upload: BlobUpload) {
        let Ok(url) = self.t.url(&upload.location) else {
            return;
        };
        let scopes = Self::scopes(&upload.repository);
        let call = Call {
            method: Method::DELETE,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        match self.t.send(&call, &|| Ok(None), &[]).await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::debug!(status = %resp.status(), "cancelling an upload session"),
            Err(e) => tracing::debug!(error = %e, "cancelling an upload session"),
        }
    }

    /// Upload `bytes` (a small blob such as a config) into a session opened earlier.
    pub(crate) async fn upload_into(
        &self,
        upload: &BlobUpload,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        self.finish_upload(
            &upload.repository,
            &upload.location,
            digest,
            bytes.len() as u64,
            &BlobData::Bytes(bytes),
        )
        .await
    }

    /// Where `target`'s tag points now (`None` when it has no tag: then it is looked up by digest
    /// at push time).
    pub(crate) async fn tag_digest(
        &self,
        target: &ImageRef,
    ) -> Result<Option<Option<Digest>>, RegistryError> {
        match target.tag() {
            Some(tag) => Ok(Some(self.manifest_digest(target.repository(), tag).await?)),
            None => Ok(None),
        }
    }

    /// [`Registry::push`] with what is already known: blobs just uploaded, and where the tag
    /// pointed before.
    pub(crate) async fn push_with(
        &self,
        target: &ImageRef,
        image: &Image,
        options: &PushOptions,
        known: Known,
    ) -> Result<PushReport, RegistryError> {
        let sent = known.sent.as_slice();
        if target.registry() != self.t.registry {
            return Err(RegistryError::WrongRegistry {
                reference: target.to_string(),
                reference_registry: target.registry().to_owned(),
                registry: self.t.registry.clone(),
            });
        }
        let retries_before = self.t.retries.load(std::sync::atomic::Ordering::Relaxed);
        let repository = target.repository();
        let tag = target.tag().map(str::to_owned);
        let ours = image.manifest_digest.clone();
        let reference = format!("{}@{ours}", target.name());
        let current = match known.tag_digest {
            Some(d) if tag.is_some() => d,
            _ => {
                self.manifest_digest(
                    repository,
                    tag.as_deref().unwrap_or(ours.to_string().as_str()),
                )
                .await?
            }
        };
        let all_present = || {
            let outcome = |d: &Digest| {
                if sent.contains(d) {
                    BlobOutcome::Uploaded
                } else {
                    BlobOutcome::AlreadyPresent
                }
            };
            let mut blobs: Vec<BlobPush> = image
                .layers
                .iter()
                .map(|l| BlobPush {
                    digest: l.descriptor.digest.clone(),
                    size: l.descriptor.size,
                    outcome: outcome(&l.descriptor.digest),
                })
                .collect();
            blobs.push(BlobPush {
                digest: image.config_digest.clone(),
                size: image.config.len() as u64,
                outcome: outcome(&image.config_digest),
            });
            blobs
        };
        let mut previous = None;
        match current {
            Some(d) if d == ours => {
                // The registry only accepts a manifest whose blobs it has: nothing to send.
                let blobs = all_present();
                return Ok(PushReport {
                    reference,
                    digest: ours,
                    tag,
                    tag_status: TagStatus::Unchanged,
                    bytes_uploaded: blobs
                        .iter()
                        .filter(|b| b.outcome == BlobOutcome::Uploaded)
                        .map(|b| b.size)
                        .sum(),
                    blobs,
                    retries: self.t.retries.load(std::sync::atomic::Ordering::Relaxed)
                        - retries_before,
                });
            }
            Some(existing) if !options.allow_overwrite => {
                return Err(RegistryError::TagExists {
                    reference: format!("{}:{}", target.name(), tag.as_deref().unwrap_or_default()),
                    existing,
                    ours,
                });
            }
            Some(existing) => previous = Some(existing),
            None => {}
        }

        let mut jobs = Vec::new();
        for l in &image.layers {
            jobs.push(self.push_blob(
                repository,
                &l.descriptor.digest,
                l.descriptor.size,
                BlobData::File(&l.path, known.progress.as_ref()),
                options,
                sent,
            ));
        }
        jobs.push(self.push_blob(
            repository,
            &image.config_digest,
            image.config.len() as u64,
            BlobData::Bytes(&image.config),
            options,
            sent,
        ));
        let blobs = try_join_all(jobs).await?;
        let bytes_uploaded = blobs
            .iter()
            .filter(|b| b.outcome == BlobOutcome::Uploaded)
            .map(|b| b.size)
            .sum();

        self.put_manifest(
            repository,
            tag.as_deref().unwrap_or(ours.to_string().as_str()),
            image,
        )
        .await?;
        Ok(PushReport {
            reference,
            digest: ours,
            tag,
            tag_status: match previous {
                Some(previous) => TagStatus::Overwritten { previous },
                None => TagStatus::Created,
            },
            blobs,
            bytes_uploaded,
            retries: self.t.retries.load(std::sync::atomic::Ordering::Relaxed) - retries_before,
        })
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        image: &Image,
    ) -> Result<(), RegistryError> {
        let url = self
            .t
            .url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let scopes = Self::scopes(repository);
        let call = Call {
            method: Method::PUT,
            url: url.clone(),
            scopes: &scopes,
            body_len: image.manifest.len() as u64,
        };
        let body = image.manifest.clone();
        let headers = [(header::CONTENT_TYPE, MEDIA_TYPE_MANIFEST.to_owned())];
        let resp = self
            .t
            .send(
                &call,
                &|| Ok(Some(reqwest::Body::from(body.clone()))),
                &headers,
            )
            .await?;
        let ep = endpoint(&Method::PUT, &url);
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        match resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(got) if got == image.manifest_digest.to_string() => Ok(()),
            Some(got) => Err(RegistryError::DigestMismatch {
                endpoint: ep,
                expected: image.manifest_digest.clone(),
                got: got.to_owned(),
            }),
            None => {
                // Not all registries send it: ask for the digest the tag now resolves to.
                match self.manifest_digest(repository, reference).await? {
                    Some(d) if d == image.manifest_digest => Ok(()),
                    other => Err(RegistryError::DigestMismatch {
                        endpoint: ep,
                        expected: image.manifest_digest.clone(),
                        got: other
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "nothing".into()),
                    }),
                }
            }
        }
    }

    async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        data: BlobData<'_>,
        options: &PushOptions,
        sent: &[Digest],
    ) -> Result<BlobPush, RegistryError> {
        let done = |outcome| {
            Ok(BlobPush {
                digest: digest.clone(),
                size,
                outcome,
            })
        };
        if sent.contains(digest) {
            return done(BlobOutcome::Uploaded);
        }
        if self.blob_exists(repository, digest).await? {
            return done(BlobOutcome::AlreadyPresent);
        }
        let mut session = None;
        let candidates: Vec<&String> = options
            .mount_from
            .iter()
            .filter(|r| r.as_str() != repository)
            .collect();
        for (i, from) in candidates.iter().enumerate() {
            // Ask the candidates that may not have it first; the last one is tried blind (a 202
            // answer still opens the upload session we need).
            let last = i + 1 == candidates.len();
            if !last
                && !self
                    .blob_in(from, digest, &[format!("repository:{from}:pull")])
                    .await?
            {
                continue;
            }
            match self.try_mount(repository, digest, from).await? {
                Mount::Mounted => {
                    return done(BlobOutcome::Mounted {
                        from: (*from).clone(),
                    });
                }
                Mount::Upload(location) => {
                    session = Some(location);
                    break;
                }
            }
        }
        // An upload session can die with a failed PUT; a second one starts from scratch.
        for round in 0..2 {
            let location = match session.take() {
                Some(l) => l,
                None => self.start_upload(repository).await?,
            };
            match self
                .finish_upload(repository, &location, digest, size, &data)
                .await
            {
                Ok(()) => return done(BlobOutcome::Uploaded),
                Err(RegistryError::Status {
                    status: 400 | 404 | 416,
                    ..
                }) if round == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second round returns")
    }

    async fn try_mount(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let mut url = self.t.url(&format!("/v2/{repository}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scopes = vec![
            format!("repository:{repository}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        let call = Call {
            method: Method::POST,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self
            .t
            .send(&call, &|| Ok(Some(reqwest::Body::from(Vec::new()))), &[])
            .await?;
        let ep = endpoint(&Method::POST, &url);
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(self.location(&resp, &ep)?)),
            _ => Err(RegistryError::from_response(&ep, resp).await),
        }
    }

    async fn start_upload(&self, repository: &str) -> Result<String, RegistryError> {
        let url = self.t.url(&format!("/v2/{repository}/blobs/uploads/"))?;
        let scopes = Self::scopes(repository);
        let call = Call {
            method: Method::POST,
            url: url.clone(),
            scopes: &scopes,
            body_len: 0,
        };
        let resp = self
            .t
            .send(&call, &|| Ok(Some(reqwest::Body::from(Vec::new()))), &[])
            .await?;
        let ep = endpoint(&Method::POST, &url);
        if resp.status() != StatusCode::ACCEPTED {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        self.location(&resp, &ep)
    }

    /// Monolithic upload: one PUT with the whole blob and `?digest=`.
    async fn finish_upload(
        &self,
        repository: &str,
        location: &str,
        digest: &Digest,
        size: u64,
        data: &BlobData<'_>,
    ) -> Result<(), RegistryError> {
        let mut url = self.t.url(location)?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let scopes = Self::scopes(repository);
        let call = Call {
            method: Method::PUT,
            url: url.clone(),
            scopes: &scopes,
            body_len: size,
        };
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ];
        let body = || -> Result<Option<reqwest::Body>, RegistryError> {
            Ok(Some(match data {
                BlobData::Bytes(b) => reqwest::Body::from(b.to_vec()),
                BlobData::File(p, progress) => file_body(p, progress.cloned())?,
            }))
        };
        let resp = self.t.send(&call, &body, &headers).await?;
        let ep = endpoint(&Method::PUT, &url);
        if !resp.status().is_success() {
            return Err(RegistryError::from_response(&ep, resp).await);
        }
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if got != digest.to_string() {
                return Err(RegistryError::DigestMismatch {
                    endpoint: ep,
                    expected: digest.clone(),
                    got: got.to_owned(),
                });
            }
        }
        Ok(())
    }
}

impl Registry {
    /// The upload `Location` of `resp`, resolved against the registry and checked (no
    /// downgrade from https to http).
    pub(super) fn location(
        &self,
        resp: &reqwest::Response,
        ep: &str,
    ) -> Result<String, RegistryError> {
        let raw = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::BadResponse {
                endpoint: ep.to_owned(),
                detail: "202 without a Location header".into(),
            })?;
        Ok(self.t.resolve(resp.url(), raw)?.to_string())
    }
}

/// What a push already knows from work done earlier in the same run.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Blobs uploaded just now: no HEAD, reported as uploaded.
    pub sent: Vec<Digest>,
    /// The tag's digest, looked up while the layer was being built.
    pub tag_digest: Option<Option<Digest>>,
    /// Counts the layer bytes uploaded (for a caller's progress display).
    pub progress: Option<Arc<AtomicU64>>,
}

/// An upload session opened with [`Registry::begin_upload`].
#[derive(Debug)]
pub struct BlobUpload {
    pub(super) repository: String,
    pub(super) location: String,
    pub(super) sent: u64,
}

impl BlobUpload {
    /// Bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

enum Mount {
    Mounted,
    Upload(String),
}

fn header_digest(resp: &reqwest::Response) -> Option<Digest> {
    resp.headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A streamed request body: 1 MiB reads on the blocking pool, never the whole blob in memory;
/// each chunk is added to `progress` as it is handed to the connection.
fn file_body(
    path: &Path,
    progress: Option<Arc<AtomicU64>>,
) -> Result<reqwest::Body, RegistryError> {
    let file = std::fs::File::open(path).map_err(|source| RegistryError::ReadBlob {
        path: path.to_owned(),
        source,
    })?;
    let path: PathBuf = path.to_owned();
    let stream = futures_util::stream::try_unfold((file, path), |(mut file, path)| async move {
        let (file, path, chunk) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
                    }
                }
            }
            buf.truncate(filled);
            Ok((file, path, buf))
        })
        .await
        .map_err(io::Error::other)??;
        if chunk.is_empty() {
            Ok::<_, io::Error>(None)
        } else {
            Ok(Some((bytes::Bytes::from(chunk), (file, path))))
        }
    });
    let stream = futures_util::StreamExt::inspect(stream, move |chunk| {
        if let (Some(p), Ok(b)) = (&progress, chunk) {
            p.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}
