//! Atomic file writes, the one implementation in the workspace.
//!
//! - [`write`] replaces a file: the new content is written to an unnamed file in the target's
//!   directory (`O_TMPFILE`), made durable, given a temporary name and renamed over the target,
//!   then the directory is made durable. A crash leaves the old file or the new one, never half.
//! - [`create_new`] creates a file exclusively: the unnamed file is linked to the final name,
//!   which fails with `AlreadyExists` if anything is there. Two racing writers: one wins, the
//!   other gets `AlreadyExists`. A kill at any point leaves nothing under any other name, which is
//!   what keys need (`0o600` content never lies around as a temporary file).
//!
//! Where the file system has no `O_TMPFILE`, a named temporary file `.NAME.rel-tmp-PID-N` is used;
//! such names left by a killed process are swept by the next write to the same file (only when
//! their process is gone), and they match the `.*.rel-tmp-*` ignore pattern.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The marker in temporary file names (for ignore files and sweeps).
pub const TEMP_MARKER: &str = ".rel-tmp-";

/// Write `contents` to `path` atomically, replacing it, creating parent directories as needed.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with_mode(path, contents, None)
}

/// Like [`write`], with Unix permission bits for the new file (e.g. `0o600` for keys).
pub fn write_with_mode(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = parent(path)?;
    sweep_stale(&dir, path);
    let tmp = temp_name(&dir, path);
    let result = (|| {
        match unnamed(&dir, contents, mode)? {
            Some(file) => link_fd(&file, &tmp)?,
            None => named(&tmp, contents, mode)?,
        }
        fs::rename(&tmp, path)?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write`] without making anything durable (no fsync): for cache entries, which are
/// checked against their digest on every read, so a torn entry after a power loss is a miss.
/// A crash still leaves the old file or the new one under `path`, never half of one.
pub fn write_unsynced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent(path)?;
    let tmp = temp_name(&dir, path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A fresh temporary name next to `path` (same directory, so a rename onto `path` is atomic),
/// for content streamed in by the caller and renamed into place once complete. The parent
/// directory is created.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let dir = parent(path)?;
    Ok(temp_name(&dir, path))
}

/// Place a copy of `source` at `target` atomically: a hard link when both are on one file system
/// (for content-addressed files that are never modified in place), else a copy.
pub fn link_or_copy(source: &Path, target: &Path) -> io::Result<()> {
    let dir = parent(target)?;
    let tmp = temp_name(&dir, target);
    let result = fs::hard_link(source, &tmp)
        .or_else(|_| fs::copy(source, &tmp).map(|_| ()))
        .and_then(|()| fs::rename(&tmp, target));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Create `path` atomically, failing with `AlreadyExists` if it is there (the final step is a
/// link, which refuses an existing target: no check-then-write race).
pub fn create_new(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = parent(path)?;
    sweep_stale(&dir, path);
    match unnamed(&dir, contents, mode)? {
        Some(file) => link_fd(&file, path)?,
        None => {
            let tmp = temp_name(&dir, path);
            let linked = named(&tmp, contents, mode).and_then(|()| fs::hard_link(&tmp, path));
            let _ = fs::remove_file(&tmp);
            linked?;
        }
    }
    sync_dir(&dir);
    Ok(())
}

fn parent(path: &Path) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn temp_name(dir: &Path, path: &Path) -> PathBuf {
    dir.join(format!(
        ".{}{TEMP_MARKER}{}-{}",
        file_name(path),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The content in an unnamed, durable file of `dir`; `None` when the file system cannot.
fn unnamed(dir: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<Option<File>> {
    let mode = Mode::from_raw_mode(mode.unwrap_or(0o666));
    let fd = match rustix::fs::openat(
        CWD,
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        mode,
    ) {
        Ok(fd) => fd,
        Err(e)
            if e == rustix::io::Errno::OPNOTSUPP
                || e == rustix::io::Errno::ISDIR
                || e == rustix::io::Errno::INVAL =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let mut file = File::from(fd);
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(Some(file))
}

/// Give an unnamed file a name; `AlreadyExists` if the name is taken.
fn link_fd(file: &File, to: &Path) -> io::Result<()> {
    let proc_path = format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        file.as_fd().as_raw_fd()
    });
    rustix::fs::linkat(CWD, proc_path.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW)
        .map_err(io::Error::from)
}

fn named(tmp: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(tmp)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Remove temporary files of `path` left by processes that no longer run.
fn sweep_stale(dir: &Path, path: &Path) {
    let prefix = format!(".{}{TEMP_MARKER}", file_name(path));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn process_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => matches!(
            rustix::process::test_kill_process(p),
            Ok(()) | Err(rustix::io::Errno::PERM)
        ),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/file.yaml");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(names(p.parent().unwrap()), vec!["file.yaml"]);
    }

    #[test]
    fn create_new_refuses_existing_and_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        create_new(&p, b"secret", Some(0o600)).unwrap();
        let err = create_new(&p, b"other", Some(0o600)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&p).unwrap(), "secret");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(names(dir.path()), vec!["key"]);
    }

    #[test]
    fn racing_create_new_has_exactly_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.4.0.yaml");
        let results: Vec<io::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let p = p.clone();
                    s.spawn(move || create_new(&p, format!("writer {i}").as_bytes(), None))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(r.kind(), io::ErrorKind::AlreadyExists);
        }
        assert_eq!(names(dir.path()), vec!["0.4.0.yaml"]);
    }

    #[test]
    fn stale_temp_of_a_dead_process_is_swept_and_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.4.0.yaml");
        // A child that has exited: its pid is gone (reaped by wait).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".0.4.0.yaml{TEMP_MARKER}{dead}-0"));
        let live = dir
            .path()
            .join(format!(".0.4.0.yaml{TEMP_MARKER}{}-99", std::process::id()));
        fs::write(&stale, "half").unwrap();
        fs::write(&live, "in flight").unwrap();
        write(&p, b"whole").unwrap();
        assert!(!stale.exists(), "a dead writer's temp file is removed");
        assert!(live.exists(), "a live writer's temp file is kept");
    }
}
