//! The layer cache: an unchanged binary is neither re-tarred nor re-gzipped.
//!
//! Key: sha256 of a canonical JSON of (layout version, compressor name+version, gzip level, diff
//! id). The diff id hashes the uncompressed tar, so it covers each file's content (the binary's
//! bytes), path and mode and the mtime. Value: diff id, digest, size. Blobs
//! live under `<cache>/blobs/sha256/<hex>`, entries under `<cache>/layers/<key hex>.json`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image_ref::Digest;
use serde::{Deserialize, Serialize};

use crate::layer::{self, COMPRESSOR, LAYOUT_VERSION, Layer, LayerError, LayerSpec};

/// A layer cache rooted at a directory the caller owns (rel uses `target/rel/cache`).
#[derive(Debug, Clone)]
pub struct LayerCache {
    root: PathBuf,
}

/// Whether a layer came from the cache or was built now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    Hit,
    Built,
}

#[derive(Serialize)]
struct KeyInput<'a> {
    layout_version: u32,
    compressor: &'a str,
    gzip_level: u32,
    diff_id: &'a Digest,
}

/// A layer's cache key and the diff id it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerKey {
    pub(crate) key: Digest,
    pub(crate) diff_id: Digest,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    diff_id: Digest,
    digest: Digest,
    size: u64,
    media_type: String,
}

impl LayerCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LayerCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blobs are stored: `<root>/blobs/sha256`.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// The layer for `spec`: from the cache when the inputs are unchanged, else built and stored.
    pub fn layer(&self, spec: &LayerSpec) -> Result<(Layer, CacheOutcome), LayerError> {
        let key = cache_key(spec)?;
        if let Some(layer) = self.get(&key.key)? {
            return Ok((layer, CacheOutcome::Hit));
        }
        Ok((
            self.build(&key, spec, &mut io::sink())?,
            CacheOutcome::Built,
        ))
    }

    /// The cached layer for `key` (from [`cache_key`]), if its blob is still there.
    pub fn get(&self, key: &Digest) -> Result<Option<Layer>, LayerError> {
        let found = self.lookup(&self.entry_path(key))?;
        if let Some(layer) = &found {
            tracing::debug!(digest = %layer.digest, "layer cache hit");
        }
        Ok(found)
    }

    fn entry_path(&self, key: &Digest) -> PathBuf {
        self.root.join("layers").join(format!("{}.json", key.hex()))
    }

    /// Build the layer for `spec`, store it under `key`, and copy its compressed bytes to `also`
    /// as they are produced.
    pub(crate) fn build(
        &self,
        key: &LayerKey,
        spec: &LayerSpec,
        also: &mut dyn io::Write,
    ) -> Result<Layer, LayerError> {
        let layer =
            layer::build_layer_inner(spec, &self.blob_dir(), also, Some(key.diff_id.clone()))?;
        self.insert(key, &layer)?;
        Ok(layer)
    }

    /// Record `layer` (whose blob is in [`LayerCache::blob_dir`]) under `key`.
    pub(crate) fn insert(&self, key: &LayerKey, layer: &Layer) -> Result<(), LayerError> {
        let entry_path = self.entry_path(&key.key);
        let entry = Entry {
            diff_id: layer.diff_id.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(|e| LayerError::Write {
            path: entry_path.clone(),
            source: e.into(),
        })?;
        atomic_file::write_unsynced(&entry_path, &bytes).map_err(|source| LayerError::Write {
            path: entry_path.clone(),
            source,
        })
    }

    fn lookup(&self, entry_path: &Path) -> Result<Option<Layer>, LayerError> {
        let bytes = match fs::read(entry_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LayerError::CacheEntry {
                    path: entry_path.to_owned(),
                    source,
                });
            }
        };
        // A corrupt entry is rebuilt, not fatal.
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
            return Ok(None);
        };
        let path = self.blob_dir().join(entry.digest.hex());
        match fs::metadata(&path) {
            Ok(m) if m.len() == entry.size => Ok(Some(Layer {
                diff_id: entry.diff_id,
                digest: entry.digest,
                size: entry.size,
                media_type: entry.media_type,
                path,
            })),
            _ => Ok(None),
        }
    }
}

/// The cache key of `spec`: its diff id (sha256 of the uncompressed tar, which covers every
/// file's content, path, mode and the mtime) with the compressor, its level and the layout
/// version. Costs one hashing pass over the files, no compression; on a miss the build reuses the
/// diff id instead of hashing the tar again.
pub(crate) fn cache_key(spec: &LayerSpec) -> Result<LayerKey, LayerError> {
    let diff_id = layer::diff_id(spec)?;
    let input = KeyInput {
        layout_version: LAYOUT_VERSION,
        compressor: COMPRESSOR,
        gzip_level: spec.gzip_level,
        diff_id: &diff_id,
    };
    let bytes = serde_json::to_vec(&input).expect("key input serialises");
    Ok(LayerKey {
        key: Digest::of(&bytes),
        diff_id,
    })
}
