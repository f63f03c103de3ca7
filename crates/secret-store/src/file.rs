//! The file store: `{root}/{name}/{version}`, one file per version.
//!
//! Versions are 20-digit zero-padded counters (`00000000000000000001`, ...), so their names sort
//! in creation order. A write goes to a temporary file (mode 0600) in the secret's directory, is
//! flushed with `fsync`, then hard-linked to its version name — which fails if that name exists,
//! so two writers can never overwrite each other's version — and the directory is synced. A crash
//! at any point leaves either no new version or a complete one (plus, at worst, a stray
//! `.tmp-*` file, which readers ignore).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::{
    SecretName, SecretStore, StoreError, StoredSecret, VersionId, VersionInfo, check_value,
};

const VERSION_DIGITS: usize = 20;
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of secrets. See the module docs for the layout and the write protocol.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Open (and create, mode 0700, if missing) the store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|source| StoreError::Io {
                op: "create store directory",
                path: root.clone(),
                source,
            })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn secret_dir(&self, name: &SecretName) -> PathBuf {
        self.root.join(name.as_str())
    }

    /// Version numbers present for `name`, ascending.
    fn version_numbers(&self, name: &SecretName) -> Result<Vec<u64>, StoreError> {
        let dir = self.secret_dir(name);
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "list",
                    path: dir,
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|source| StoreError::Io {
                op: "list",
                path: dir.clone(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(s) = file_name.to_str() else {
                continue;
            };
            if s.len() == VERSION_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = s.parse::<u64>() {
                    out.push(n);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

fn version_name(n: u64) -> String {
    format!("{n:0width$}", width = VERSION_DIGITS)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            op: "sync directory",
            path: dir.to_owned(),
            source,
        })
}

impl SecretStore for FileStore {
    fn put(&self, name: &SecretName, value: &SecretString) -> Result<VersionId, StoreError> {
        check_value(name, value)?;
        let dir = self.secret_dir(name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| StoreError::Io {
                op: "create secret directory",
                path: dir.clone(),
                source,
            })?;
        let temp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(value.expose_secret().as_bytes())?;
            f.sync_all()
        };
        if let Err(source) = write() {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::Io {
                op: "write",
                path: temp,
                source,
            });
        }
        // Claim the next free version name; a concurrent writer that got there first makes the
        // link fail with AlreadyExists, and we take the number after it.
        let mut next = self.version_numbers(name)?.last().copied().unwrap_or(0) + 1;
        let result = loop {
            let target = dir.join(version_name(next));
            match fs::hard_link(&temp, &target) {
                Ok(()) => break Ok(next),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => next += 1,
                Err(source) => {
                    break Err(StoreError::Io {
                        op: "link new version",
                        path: target,
                        source,
                    });
                }
            }
        };
        let _ = fs::remove_file(&temp);
        let n = result?;
        sync_dir(&dir)?;
        tracing::debug!(secret = %name, version = n, store = %self.root.display(), "stored new version");
        Ok(VersionId(version_name(n)))
    }

    fn get(
        &self,
        name: &SecretName,
        version: Option<&VersionId>,
    ) -> Result<StoredSecret, StoreError> {
        let not_found = || StoreError::NotFound {
            name: name.clone(),
            version: version.cloned(),
            location: self.location(),
        };
        let n = match version {
            Some(v) => {
                let s = v.as_str();
                if s.len() != VERSION_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(not_found());
                }
                s.parse::<u64>().map_err(|_| not_found())?
            }
            None => *self.version_numbers(name)?.last().ok_or_else(not_found)?,
        };
        let path = self.secret_dir(name).join(version_name(n));
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "open",
                    path,
                    source,
                });
            }
        };
        let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let mut bytes = Zeroizing::new(Vec::with_capacity(len + 1));
        f.read_to_end(&mut bytes).map_err(|source| StoreError::Io {
            op: "read",
            path,
            source,
        })?;
        let version = VersionId(version_name(n));
        let text = std::str::from_utf8(&bytes).map_err(|_| StoreError::NotUtf8 {
            name: name.clone(),
            version: version.clone(),
        })?;
        Ok(StoredSecret {
            name: name.clone(),
            version,
            value: SecretString::from(text.to_owned()),
        })
    }

    fn versions(&self, name: &SecretName) -> Result<Vec<VersionInfo>, StoreError> {
        let dir = self.secret_dir(name);
        self.version_numbers(name)?
            .into_iter()
            .map(|n| {
                let path = dir.join(version_name(n));
                let created = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs());
                Ok(VersionInfo {
                    version: VersionId(version_name(n)),
                    created,
                    enabled: None,
                })
            })
            .collect()
    }

    fn location(&self) -> String {
        format!("file store {}", self.root.display())
    }
}
