//! Atomic file writes: a temporary file in the target's directory, then a rename.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary path next to `target` (same directory, so the rename is atomic).
pub(crate) fn temp_path_for(target: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Write `bytes` to `target` atomically; a crash leaves either the old file or the new one.
pub(crate) fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(target, bytes, true)
}

/// [`write`] without the fsync, for cache entries that are checked on every read.
pub(crate) fn write_unsynced(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(target, bytes, false)
}

fn write_with(target: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path_for(target);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Place a copy of `source` at `target` atomically: a hard link when both are on one file system
/// (blobs are content-addressed and never modified in place), else a copy.
pub(crate) fn link_or_copy(source: &Path, target: &Path) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path_for(target);
    let result = fs::hard_link(source, &tmp)
        .or_else(|_| fs::copy(source, &tmp).map(|_| ()))
        .and_then(|()| fs::rename(&tmp, target));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
