//! Build and push in one go, overlapping the two on a cache miss: the layer's gzip bytes stream
//! into a registry upload session while they are produced, so a cold push costs little more
//! than compressing the layer. On a cache hit it is the ordinary push (HEAD, skip, mount).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use image_ref::ImageRef;
use tokio::sync::{mpsc, oneshot};

use crate::cache::{CacheOutcome, LayerCache};
use crate::image::{self, BaseImage, Image, ImageError, ImageSpec};
use crate::layer::{self, Layer, LayerError, LayerSpec};
use crate::registry::{Known, PushOptions, PushReport, Registry, RegistryError};

/// What [`build_and_push`] made and did.
#[derive(Debug, Clone)]
pub struct Published {
    pub image: Image,
    pub layer: Layer,
    pub cache: CacheOutcome,
    pub push: PushReport,
}

/// What a caller can follow while [`build_and_push`] works.
#[derive(Debug, Default)]
pub struct Watch {
    /// Told the image as soon as its digest is known, before its manifest is pushed (e.g. to
    /// sign it while the push finishes). Dropped unsent when the build or push fails first.
    pub image: Option<oneshot::Sender<Image>>,
    /// Layer bytes sent to the registry so far (streamed or uploaded), for a progress display.
    pub sent: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PublishError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
}

/// Build (or take from `cache`) the layer of `layer_spec`, assemble it over `base` with
/// `image_spec`, and push the image to `target`. Needs a tokio runtime with the blocking pool.
/// `watch` hears of the image once its digest is known and counts the layer bytes sent.
#[allow(clippy::too_many_arguments)] // each is one input of a different kind; a struct would only rename them
pub async fn build_and_push(
    cache: &LayerCache,
    layer_spec: &LayerSpec,
    base: Option<&BaseImage>,
    image_spec: &ImageSpec,
    registry: &Registry,
    target: &ImageRef,
    options: &PushOptions,
    watch: Watch,
) -> Result<Published, PublishError> {
    let Watch {
        image: mut tell_image,
        sent: sent_bytes,
    } = watch;
    let to = Destination {
        base,
        image_spec,
        registry,
        target,
        options,
    };
    // A stamp that says no file changed: the cached layer, with no file read and no speculative
    // work. A stamp too recent to vouch for the files: a hit is likely, so the key is computed
    // first and nothing is built or uploaded speculatively.
    let cached = match cache.stamped(layer_spec)? {
        Some(layer) => Some((layer, CacheOutcome::Hit)),
        None if cache.likely_unchanged(layer_spec) => {
            let (cache, spec) = (cache.clone(), layer_spec.clone());
            Some(blocking(move || cache.layer(&spec)).await?)
        }
        None => None,
    };
    if let Some((layer, outcome)) = cached {
        let known = Known {
            progress: Some(sent_bytes),
            ..Known::default()
        };
        return to.push(layer, outcome, known, tell_image).await;
    }
    // Three things start at once: the cache key (one hashing pass over the tar), the tag lookup,
    // and — speculatively — the layer build. On a cache hit the build is cancelled (it has spent
    // at most the key's hashing time); on a miss it is already that far along.
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let build = {
        let (blob_dir, spec, cancel) = (cache.blob_dir(), layer_spec.clone(), cancel.clone());
        blocking(move || {
            let mut sink = ChannelWriter {
                tx: Some(tx),
                buf: Vec::with_capacity(CHUNK),
                cancel,
            };
            // The diff id comes from the key pass, so this pass does not hash the tar: the
            // placeholder is replaced below.
            let layer = layer::build_layer_inner(
                &spec,
                &blob_dir,
                &mut sink,
                Some(PLACEHOLDER.parse().expect("digest")),
            )?;
            sink.close();
            Ok::<_, LayerError>(layer)
        })
    };
    let (miss_tx, miss_rx) = oneshot::channel::<bool>();
    let key_and_hit = async {
        let (cache, spec) = (cache.clone(), layer_spec.clone());
        let result = blocking(move || {
            let key = cache.key(&spec)?;
            let hit = cache.get(&key.key)?;
            Ok::<_, LayerError>((key, hit))
        })
        .await;
        let miss = matches!(&result, Ok((_, None)));
        if !miss {
            cancel.store(true, Ordering::Relaxed);
        }
        let _ = miss_tx.send(miss);
        result
    };
    let size_hint: u64 = layer_spec
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.source).ok())
        .map(|m| m.len())
        .sum();
    let repository = target.repository();
    // The layer's upload session opens at once, beside the key pass (a round trip off the
    // critical path); once the key says miss it drains what the build produced. On a hit it is
    // cancelled and no layer byte is sent.
    let upload = async {
        let (session, miss) =
            futures_util::future::join(registry.begin_upload(repository), miss_rx).await;
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open an upload session; pushing after the build");
                drop(rx);
                return None;
            }
        };
        if miss != Ok(true) {
            drop(rx);
            registry.abort_upload(session).await;
            return None;
        }
        let counter = sent_bytes.clone();
        let chunks = futures_util::stream::unfold(rx, move |mut rx| {
            let counter = counter.clone();
            async move {
                let chunk = rx.recv().await?;
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Some((Ok::<_, io::Error>(chunk), rx))
            }
        });
        match registry.stream_upload(session, chunks, size_hint).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(error = %e, "streamed upload failed; uploading the finished blob");
                None
            }
        }
    };
    // The config names only diff ids: once the key is known it is uploaded during the build,
    // into a session opened beside the key pass.
    let key_then_config = async {
        let (session, keyed) =
            futures_util::future::join(registry.begin_upload(repository), key_and_hit).await;
        let (key, hit) = keyed?;
        if hit.is_some() {
            if let Ok(session) = session {
                registry.abort_upload(session).await;
            }
            return Ok::<_, PublishError>((key, hit, None));
        }
        let config = image::config(base, std::slice::from_ref(&key.diff_id), image_spec)?;
        let digest = image_ref::Digest::of(&config);
        let sent = async {
            let session = session.ok()?;
            registry
                .upload_into(&session, &digest, &config)
                .await
                .ok()
                .map(|()| digest.clone())
        }
        .await;
        Ok((key, hit, sent))
    };
    let ((keyed, tag_digest), (built, streamed)) = futures_util::future::join(
        futures_util::future::join(key_then_config, registry.tag_digest(target)),
        futures_util::future::join(build, upload),
    )
    .await;
    let (key, hit, config_sent) = keyed?;
    let tag_digest = tag_digest?;

    if let Some(layer) = hit {
        let _ = built; // cancelled, or finished into an unused temp file that it removed
        let known = Known {
            sent: Vec::new(),
            tag_digest,
            progress: Some(sent_bytes),
        };
        return to.push(layer, CacheOutcome::Hit, known, tell_image).await;
    }

    let mut layer = built?;
    layer.diff_id = key.diff_id.clone();
    cache.insert(&key, &layer)?;
    let image = image::assemble(base, std::slice::from_ref(&layer), image_spec)?;
    if let Some(tell) = tell_image.take() {
        let _ = tell.send(image.clone());
    }
    let config_sent = config_sent.filter(|d| *d == image.config_digest);
    let layer_sent = match streamed.filter(|u| u.sent() == layer.size) {
        Some(upload) => match registry.commit_upload(&upload, &layer.digest).await {
            Ok(()) => Some(layer.digest.clone()),
            Err(e) => {
                tracing::debug!(error = %e, "closing the streamed upload failed; uploading again");
                None
            }
        },
        None => None,
    };
    if layer_sent.is_none() {
        // The push uploads the layer from its file: count from zero again.
        sent_bytes.store(0, Ordering::Relaxed);
    }
    let known = Known {
        sent: layer_sent.into_iter().chain(config_sent).collect(),
        tag_digest,
        progress: Some(sent_bytes),
    };
    let push = registry.push_with(target, &image, options, known).await?;
    Ok(Published {
        image,
        layer,
        cache: CacheOutcome::Built,
        push,
    })
}

/// Where a built or cached layer goes: the image around it, and the push.
struct Destination<'a> {
    base: Option<&'a BaseImage>,
    image_spec: &'a ImageSpec,
    registry: &'a Registry,
    target: &'a ImageRef,
    options: &'a PushOptions,
}

impl Destination<'_> {
    /// Assemble the image of `layer` (the cache's), tell the watcher its digest, push it.
    async fn push(
        &self,
        layer: Layer,
        cache: CacheOutcome,
        known: Known,
        tell_image: Option<oneshot::Sender<Image>>,
    ) -> Result<Published, PublishError> {
        let image = image::assemble(self.base, std::slice::from_ref(&layer), self.image_spec)?;
        if let Some(tell) = tell_image {
            let _ = tell.send(image.clone());
        }
        let push = self
            .registry
            .push_with(self.target, &image, self.options, known)
            .await?;
        Ok(Published {
            image,
            layer,
            cache,
            push,
        })
    }
}

/// Stands in for the diff id while the speculative build runs (it is never stored).
const PLACEHOLDER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<LayerError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(join) => Err(E::from(LayerError::Write {
            path: "<layer build task>".into(),
            source: io::Error::other(join.to_string()),
        })),
    }
}

const CHUNK: usize = 256 << 10;

/// Sends 256 KiB chunks to the upload; once the upload is gone, writes are dropped (the layer
/// still goes to its file, and the push uploads it from there).
struct ChannelWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    buf: Vec<u8>,
    /// Set when the cache turned out to have the layer: the build stops.
    cancel: Arc<AtomicBool>,
}

impl ChannelWriter {
    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        if let Some(tx) = &self.tx {
            if tx.blocking_send(chunk).is_err() {
                self.tx = None;
            }
        }
    }

    fn close(mut self) {
        self.send();
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("layer build cancelled: the cache has it"));
        }
        if self.tx.is_none() {
            return Ok(data.len());
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
