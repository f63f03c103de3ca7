//! File access under kustomize's default load restrictor: a file a kustomization reads must be
//! in or below its root (after resolving symlinks); directories of bases may be anywhere.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};

/// Resolves `rel` against `root` and checks it stays inside `root`.
pub fn resolve_file(root: &Path, rel: &str, at: &Location) -> Result<PathBuf> {
    let joined = root.join(rel);
    let real = std::fs::canonicalize(&joined).map_err(|_| Error::NotFound {
        at: at.clone(),
        entry: rel.to_string(),
    })?;
    let real_root = std::fs::canonicalize(root).map_err(|source| Error::Read {
        at: Location::file(root),
        source,
    })?;
    if !real.starts_with(&real_root) {
        return Err(Error::OutsideRoot {
            at: at.clone(),
            file: real,
            root: real_root,
        });
    }
    Ok(real)
}

/// Reads a file inside `root`.
pub fn read_file(root: &Path, rel: &str, at: &Location) -> Result<(PathBuf, Vec<u8>)> {
    let path = resolve_file(root, rel, at)?;
    if path.is_dir() {
        return Err(Error::Invalid {
            at: at.clone(),
            message: format!("'{rel}' is a directory, expected a file"),
        });
    }
    let bytes = std::fs::read(&path).map_err(|source| Error::Read {
        at: Location::file(&path),
        source,
    })?;
    Ok((path, bytes))
}

/// Reads a UTF-8 file inside `root`.
pub fn read_text(root: &Path, rel: &str, at: &Location) -> Result<(PathBuf, String)> {
    let (path, bytes) = read_file(root, rel, at)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Invalid {
        at: Location::file(&path),
        message: "file is not valid UTF-8".into(),
    })?;
    Ok((path, text))
}
