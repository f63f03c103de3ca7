//! Finding the project: the nearest `rel.toml` at or above a directory.

use std::path::{Path, PathBuf};

use crate::config::{Config, FILE_NAME};

/// The `rel.toml` at or above `start`, if any.
pub fn find_config(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Load the project's configuration, searching upward from `start`.
pub fn load(start: &Path) -> Result<Config, crate::Error> {
    let path = find_config(start).ok_or_else(|| crate::Error::NoProject {
        start: start.to_path_buf(),
    })?;
    Config::load(&path)
}

/// Load the project if there is one; an unreadable or invalid `rel.toml` is still an error.
pub fn load_optional(start: &Path) -> Result<Option<Config>, crate::Error> {
    match find_config(start) {
        Some(path) => Config::load(&path).map(Some),
        None => Ok(None),
    }
}
