//! The `releases/` directory: where lockfiles and validation records live, and the one rule that
//! decides whether a lockfile may still change.

use std::path::{Path, PathBuf};

use crate::version::Version;

/// A change to a release that its validation forbids.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("release {version} is validated ({record}); a validated lockfile never changes")]
#[diagnostic(
    code(rel::releases::validated),
    help("cut a new version instead (e.g. bump the patch version) and lock that")
)]
pub struct ValidatedError {
    pub version: Version,
    /// The first validation record, relative to the project root.
    pub record: String,
}

/// The directory under the project root.
pub(crate) const DIR: &str = "releases";

/// `releases/<version>.yaml`
pub(crate) fn lockfile_path(root: &Path, version: &Version) -> PathBuf {
    root.join(DIR).join(format!("{version}.yaml"))
}

/// `releases/<version>.<env>.validation.yaml`: evidence that `version` passed the deep gate in `env`.
pub(crate) fn record_path(root: &Path, version: &Version, env: &str) -> PathBuf {
    root.join(DIR)
        .join(format!("{version}.{env}.validation.yaml"))
}

/// What `releases/` holds, classified once: the one scanner every command uses.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `<version>.yaml`, sorted by version, newest first.
    pub lockfiles: Vec<(Version, PathBuf)>,
    /// `<version>.<env>.validation.yaml`, sorted by version then environment.
    pub records: Vec<RecordEntry>,
    /// `holds.yaml`, when present.
    pub holds: Option<PathBuf>,
    /// `freezes.yaml`, when present.
    pub freezes: Option<PathBuf>,
    /// Files that are none of the above (a lockfile named with a bad version, a stray file):
    /// reported by whoever cares (the coherence gate), ignored by everyone else.
    pub other: Vec<PathBuf>,
}

/// A validation record found by [`index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    pub version: Version,
    pub env: String,
    pub path: PathBuf,
}

/// Suffix of validation record file names.
const RECORD_SUFFIX: &str = ".validation.yaml";

/// Scan `releases/` under `root`. A missing directory is an empty index. Names are unambiguous by
/// construction: environment names have no dots, and no version ends in `.validation`
/// ([`crate::version::RESERVED_SUFFIX`]).
pub(crate) fn index(root: &Path) -> Index {
    let mut index = Index::default();
    let Ok(entries) = std::fs::read_dir(root.join(DIR)) else {
        return index;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            index.other.push(path);
            continue;
        };
        if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
            // Hidden files (temporary files of a writer) and directories are not releases.
            continue;
        }
        if name == crate::hold::FILE {
            index.holds = Some(path);
        } else if name == crate::freeze::FILE {
            index.freezes = Some(path);
        } else if let Some(stem) = name.strip_suffix(RECORD_SUFFIX) {
            match stem
                .rsplit_once('.')
                .and_then(|(v, env)| Some((v.parse::<Version>().ok()?, env)))
            {
                Some((version, env)) if crate::config::valid_name(env) => {
                    index.records.push(RecordEntry {
                        version,
                        env: env.to_owned(),
                        path,
                    });
                }
                _ => index.other.push(path),
            }
        } else if let Some(v) = name
            .strip_suffix(".yaml")
            .and_then(|v| v.parse::<Version>().ok())
        {
            index.lockfiles.push((v, path));
        } else {
            index.other.push(path);
        }
    }
    index.lockfiles.sort_by(|a, b| b.0.cmp(&a.0));
    index
        .records
        .sort_by(|a, b| (&a.version, &a.env).cmp(&(&b.version, &b.env)));
    index.other.sort();
    index
}

/// The validation records that exist for `version`, in any environment.
pub(crate) fn records_for(root: &Path, version: &Version) -> Vec<PathBuf> {
    index(root)
        .records
        .into_iter()
        .filter(|r| &r.version == version)
        .map(|r| r.path)
        .collect()
}

/// Whether the lockfile of `version` may still be rewritten: only while no validation record exists.
/// Every command that would change a lockfile asks this one function.
pub(crate) fn ensure_mutable(root: &Path, version: &Version) -> Result<(), crate::Error> {
    let records = records_for(root, version);
    if let Some(first) = records.first() {
        return Err(ValidatedError {
            version: version.clone(),
            record: first
                .strip_prefix(root)
                .unwrap_or(first)
                .display()
                .to_string(),
        }
        .into());
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
        std::fs::write(dir.path().join("releases/holds.yaml"), "").unwrap();
        std::fs::write(dir.path().join("releases/freezes.yaml"), "").unwrap();
        std::fs::write(dir.path().join("releases/.0.5.0.yaml.rel-tmp-1-0"), "").unwrap();
        std::fs::write(dir.path().join("releases/notes.yaml"), "").unwrap();
        let idx = index(dir.path());
        assert_eq!(idx.lockfiles.len(), 1, "{idx:?}");
        // `0.4.01` is not a semantic version (leading zero): not a record of anything.
        assert_eq!(idx.records.len(), 1, "{idx:?}");
        assert!(idx.holds.is_some());
        assert!(idx.freezes.is_some());
        assert_eq!(
            idx.other,
            vec![
                dir.path().join("releases/0.4.01.staging.validation.yaml"),
                dir.path().join("releases/notes.yaml")
            ]
        );
        let e = ensure_mutable(dir.path(), &v).unwrap_err();
        assert!(
            e.to_string()
                .contains("release 0.4.0 is validated (releases/0.4.0.staging.validation.yaml)"),
            "{e}"
        );
        assert_eq!(e.exit(), crate::Exit::Failed);
    }
}
