//! Build and push in one go, overlapping the two on a cache miss: the layer's gzip bytes stream
//! into a registry upload session while they are produced, so a cold push costs little more
//! than compressing the layer. On a cache hit it is the ordinary push (HEAD, skip, mount).

use std::io::{self, Write};

use bytes::Bytes;
use image_ref::ImageRef;
use tokio::sync::mpsc;

use crate::cache::{self, CacheOutcome, LayerCache};
use crate::image::{self, BaseImage, Image, ImageError, ImageSpec};
use crate::layer::{Layer, LayerError, LayerSpec};
use crate::registry::{Known, PushOptions, PushReport, Registry, RegistryError};

/// What [`build_and_push`] made and did.
#[derive(Debug, Clone)]
pub struct Published {
    pub image: Image,
    pub layer: Layer,
    pub cache: CacheOutcome,
    pub push: PushReport,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PublishError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
}

/// Build (or take from `cache`) the layer of `layer_spec`, assemble it over `base` with
/// `image_spec`, and push the image to `target`. Needs a tokio runtime with the blocking pool.
pub async fn build_and_push(
    cache: &LayerCache,
    layer_spec: &LayerSpec,
    base: Option<&BaseImage>,
    image_spec: &ImageSpec,
    registry: &Registry,
    target: &ImageRef,
    options: &PushOptions,
) -> Result<Published, PublishError> {
    // The tag lookup runs while the binary is hashed for the cache key.
    let key_and_hit = {
        let (cache, spec) = (cache.clone(), layer_spec.clone());
        blocking(move || {
            let key = cache::cache_key(&spec)?;
            let hit = cache.get(&key.key)?;
            Ok::<_, LayerError>((key, hit))
        })
    };
    let (key_and_hit, tag_digest) = futures_util::future::join(key_and_hit, registry.tag_digest(target)).await;
    let (key, hit) = key_and_hit?;
    let tag_digest = tag_digest?;
    if let Some(layer) = hit {
        let image = image::assemble(base, std::slice::from_ref(&layer), image_spec)?;
        let known = Known { sent: Vec::new(), tag_digest };
        let push = registry.push_with(target, &image, options, known).await?;
        return Ok(Published { image, layer, cache: CacheOutcome::Hit, push });
    }

    // Cache miss: the blob is new to us, most likely new to the registry too. Stream it.
    let size_hint: u64 = layer_spec.files.iter().filter_map(|f| std::fs::metadata(&f.source).ok()).map(|m| m.len()).sum();
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let diff_id = key.diff_id.clone();
    let build = {
        let (cache, spec) = (cache.clone(), layer_spec.clone());
        blocking(move || {
            let mut sink = ChannelWriter { tx: Some(tx), buf: Vec::with_capacity(CHUNK) };
            let layer = cache.build(&key, &spec, &mut sink)?;
            sink.close();
            Ok::<_, LayerError>(layer)
        })
    };
    let repository = target.repository();
    let upload = async {
        let session = match registry.begin_upload(repository).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open an upload session; pushing after the build");
                return None;
            }
        };
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, io::Error>(b), rx)) });
        match registry.stream_upload(session, chunks, size_hint).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(error = %e, "streamed upload failed; uploading the finished blob");
                None
            }
        }
    };
    // The config names only diff ids, known from the cache key: upload it during the build.
    let config = image::config(base, std::slice::from_ref(&diff_id), image_spec)?;
    let config_digest = image_ref::Digest::of(&config);
    let put_config = async {
        let session = registry.begin_upload(repository).await.ok()?;
        registry.upload_into(&session, &config_digest, &config).await.ok().map(|()| config_digest.clone())
    };
    let (layer, (streamed, config_sent)) =
        futures_util::future::join(build, futures_util::future::join(upload, put_config)).await;
    let layer = layer?;
    let image = image::assemble(base, std::slice::from_ref(&layer), image_spec)?;
    debug_assert_eq!(image.config_digest, config_digest);
    let config_sent = config_sent.filter(|d| *d == image.config_digest);

    let commit_layer = async {
        let upload = streamed.filter(|u| u.sent() == layer.size)?;
        match registry.commit_upload(&upload, &layer.digest).await {
            Ok(()) => Some(layer.digest.clone()),
            Err(e) => {
                tracing::debug!(error = %e, "closing the streamed upload failed; uploading again");
                None
            }
        }
    };
    let layer_sent = commit_layer.await;
    let known = Known { sent: layer_sent.into_iter().chain(config_sent).collect(), tag_digest };
    let push = registry.push_with(target, &image, options, known).await?;
    Ok(Published { image, layer, cache: CacheOutcome::Built, push })
}

async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    E: From<LayerError>,
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
