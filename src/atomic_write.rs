//! Atomic file writes: a temporary file in the same directory, fsync, rename, fsync the directory.
//!
//! A crash or Ctrl-C leaves either the old file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `contents` to `path` atomically, creating parent directories as needed.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with_mode(path, contents, None)
}

/// Like [`write`], with Unix permission bits for the new file (e.g. `0o600` for keys).
pub fn write_with_mode(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    publish(path, contents, mode, "tmp", |tmp| fs::rename(tmp, path))
}

/// Create `path` atomically, failing with `AlreadyExists` if it is there (no overwrite race:
/// the final step is a hard link, which refuses an existing target).
pub fn create_new(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    publish(path, contents, mode, "new", |tmp| fs::hard_link(tmp, path))
}

/// Write a durable temporary file next to `path`, move it into place with `finish`, make that
/// durable too; the temporary file never outlives the call.
fn publish(
    path: &Path,
    contents: &[u8],
    mode: Option<u32>,
    kind: &str,
    finish: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{kind}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        finish(&tmp)?;
        // Make the new name durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    // After a rename the temporary name is gone; after a hard link (or a failure) remove it.
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/file.yaml");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.yaml")]);
    }

    #[test]
    fn create_new_refuses_existing_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        create_new(&p, b"secret", Some(0o600)).unwrap();
        let err = create_new(&p, b"other", Some(0o600)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&p).unwrap(), "secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
