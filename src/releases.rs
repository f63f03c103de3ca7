//! The `releases/` directory: where lockfiles and validation records live, and the one rule that
//! decides whether a lockfile may still change.

use std::path::{Path, PathBuf};

use crate::version::Version;

/// The directory under the project root.
pub const DIR: &str = "releases";

/// `releases/<version>.yaml`
pub fn lockfile_path(root: &Path, version: &Version) -> PathBuf {
    root.join(DIR).join(format!("{version}.yaml"))
}

/// `releases/<version>.<env>.validation.yaml`: evidence that `version` passed the deep gate in `env`.
pub fn record_path(root: &Path, version: &Version, env: &str) -> PathBuf {
    root.join(DIR)
        .join(format!("{version}.{env}.validation.yaml"))
}

/// The validation records that exist for `version`, in any environment.
pub fn records_for(root: &Path, version: &Version) -> Vec<PathBuf> {
    let prefix = format!("{version}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(".validation.yaml"))
                    .is_some_and(|env| !env.is_empty() && !env.contains('.'))
            })
        })
        .collect();
    found.sort();
    found
}

/// Whether the lockfile of `version` may still be rewritten: only while no validation record exists.
/// Every command that would change a lockfile asks this one function.
pub fn ensure_mutable(root: &Path, version: &Version) -> Result<(), crate::Error> {
    let records = records_for(root, version);
    if let Some(first) = records.first() {
        return Err(crate::Error::refused(
            format!(
                "release {version} is validated ({}); a validated lockfile never changes",
                first.strip_prefix(root).unwrap_or(first).display()
            ),
            "cut a new version instead (e.g. bump the patch version) and lock that",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_per_version_only() {
        let dir = tempfile::tempdir().unwrap();
        let v: Version = "0.4.0".parse().unwrap();
        std::fs::create_dir_all(dir.path().join(DIR)).unwrap();
        assert!(ensure_mutable(dir.path(), &v).is_ok());
        std::fs::write(dir.path().join("releases/0.4.0.yaml"), "").unwrap();
        std::fs::write(
            dir.path().join("releases/0.4.01.staging.validation.yaml"),
            "",
        )
        .unwrap();
        assert!(ensure_mutable(dir.path(), &v).is_ok());
        std::fs::write(record_path(dir.path(), &v, "staging"), "").unwrap();
        let e = ensure_mutable(dir.path(), &v).unwrap_err();
        assert!(
            e.to_string()
                .contains("release 0.4.0 is validated (releases/0.4.0.staging.validation.yaml)"),
            "{e}"
        );
        assert_eq!(e.exit(), crate::Exit::Failed);
    }
}
