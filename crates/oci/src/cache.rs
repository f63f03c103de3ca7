//! The layer cache: an unchanged binary is neither re-tarred nor re-gzipped.
//!
//! Key: sha256 of a canonical JSON of (layout version, compressor name+version, gzip level, diff
//! id). The diff id hashes the uncompressed tar, so it covers each file's content (the binary's
//! bytes), path and mode and the mtime. Value: diff id, digest, size. Blobs
//! live under `<cache>/blobs/sha256/<hex>`, entries under `<cache>/layers/<key hex>.json`.
//!
//! Computing the key reads every byte of the files. A stamp (`<cache>/stamps/<hex>.json`, one per
//! layer spec) remembers the key with each file's identity as the filesystem reports it (size,
//! modification and change time in nanoseconds, inode, device), as git's index does: while
//! none of them moved, the key is taken from the stamp without reading the files. A write to a
//! file moves its ctime, which no tool can set back. A stamp is only written for files whose
//! ctime is a few seconds old, so that a rewrite within the same clock tick cannot go unseen
//! (git's "racy" rule); a younger file is hashed again next time (its stamp only says that a
//! cache hit is likely, so no speculative work starts).

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
    /// How old a file's change time must be before a stamp vouches for it.
    racy: std::time::Duration,
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
        LayerCache {
            root: root.into(),
            racy: RACY,
        }
    }

    /// Stamp files whose change time is at least `window` old (default 3 s). Tests use zero; a
    /// filesystem with coarse timestamps needs more than its tick.
    pub fn with_racy_window(mut self, window: std::time::Duration) -> Self {
        self.racy = window;
        self
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
        if let Some(layer) = self.stamped(spec)? {
            return Ok((layer, CacheOutcome::Hit));
        }
        let key = self.key(spec)?;
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

    /// The cached layer for `spec` if its stamp says no file changed since the key was computed
    /// (no file is read); `None` means: compute the key.
    pub fn stamped(&self, spec: &LayerSpec) -> Result<Option<Layer>, LayerError> {
        let path = self.stamp_path(spec);
        let Ok(bytes) = fs::read(&path) else {
            return Ok(None);
        };
        let Ok(stamp) = serde_json::from_slice::<Stamp>(&bytes) else {
            return Ok(None);
        };
        match file_stats(spec) {
            Some(now) if now == stamp.files && !stamp.racy => self.get(&stamp.key),
            _ => Ok(None),
        }
    }

    /// Whether no file of `spec` moved since its key was last computed, even when the stamp
    /// cannot vouch for it (a file changed just before): the key must still be computed, but a
    /// cache hit is the likely answer, not worth speculative work.
    pub fn likely_unchanged(&self, spec: &LayerSpec) -> bool {
        let Ok(bytes) = fs::read(self.stamp_path(spec)) else {
            return false;
        };
        serde_json::from_slice::<Stamp>(&bytes)
            .is_ok_and(|stamp| file_stats(spec).is_some_and(|now| now == stamp.files))
    }

    /// The cache key of `spec` (one hashing pass over its files), remembered in its stamp.
    pub(crate) fn key(&self, spec: &LayerSpec) -> Result<LayerKey, LayerError> {
        let before = file_stats(spec);
        let key = cache_key(spec)?;
        // Only if nothing moved while we read; it vouches for the key only if every file is old
        // enough that a rewrite would show in its times.
        if let Some(files) = before.filter(|b| Some(b) == file_stats(spec).as_ref()) {
            let stamp = Stamp {
                racy: !settled(&files, self.racy),
                files,
                key: key.key.clone(),
            };
            let path = self.stamp_path(spec);
            let written = serde_json::to_vec(&stamp)
                .map_err(io::Error::from)
                .and_then(|bytes| atomic_file::write_unsynced(&path, &bytes));
            if let Err(e) = written {
                tracing::debug!(path = %path.display(), error = %e, "layer stamp not written");
            }
        }
        Ok(key)
    }

    fn stamp_path(&self, spec: &LayerSpec) -> PathBuf {
        let id = StampId {
            layout_version: LAYOUT_VERSION,
            compressor: COMPRESSOR,
            gzip_level: spec.gzip_level,
            mtime: spec.mtime,
            files: spec
                .files
                .iter()
                .map(|f| {
                    (
                        f.source.to_string_lossy().into_owned(),
                        f.dest.as_str(),
                        f.mode,
                    )
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&id).expect("stamp id serialises");
        self.root
            .join("stamps")
            .join(format!("{}.json", Digest::of(&bytes).hex()))
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

/// What a stamp is for: the spec without the files' bytes.
#[derive(Serialize)]
struct StampId<'a> {
    layout_version: u32,
    compressor: &'a str,
    gzip_level: u32,
    mtime: u64,
    files: Vec<(String, &'a str, u32)>,
}

/// A layer key and the identity of each file it was computed from.
#[derive(Serialize, Deserialize)]
struct Stamp {
    files: Vec<FileStat>,
    key: Digest,
    /// A file had changed within the racy window: the stamp only says "likely unchanged".
    racy: bool,
}

/// A file as `stat` reports it: size, modification and change time (ns), inode, device. Equal
/// stats mean an unchanged file, as in git's index, once the file is older than the racy window
/// ([`FileStat::settled`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

/// How old a file's change time must be before a stamp vouches for it, by default.
pub const RACY: std::time::Duration = std::time::Duration::from_secs(3);

/// Every file of `spec` as `stat` sees it (`None`: one cannot be read, or not on Unix).
fn file_stats(spec: &LayerSpec) -> Option<Vec<FileStat>> {
    spec.files.iter().map(|f| stat(&f.source)).collect()
}

impl FileStat {
    /// `path`'s stat (`None`: it cannot be read, or not on Unix).
    pub fn of(path: &Path) -> Option<FileStat> {
        stat(path)
    }

    /// Whether the file last changed `window` ago or earlier (so a rewrite would show).
    pub fn settled(&self, window: std::time::Duration) -> bool {
        settled(std::slice::from_ref(self), window)
    }
}

#[cfg(unix)]
fn stat(path: &Path) -> Option<FileStat> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Some(FileStat {
        len: m.len(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        ino: m.ino(),
        dev: m.dev(),
    })
}

#[cfg(not(unix))]
fn stat(_: &Path) -> Option<FileStat> {
    None
}

/// Whether every file last changed `window` ago or earlier.
fn settled(files: &[FileStat], window: std::time::Duration) -> bool {
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let limit = i128::try_from(now.saturating_sub(window).as_nanos()).unwrap_or(i128::MAX);
    files
        .iter()
        .all(|f| f.ctime_ns <= limit && f.mtime_ns <= limit)
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
