//! Where the sources come from: the commit being built and the fixed timestamp of a reproducible build.

use std::path::Path;
use std::process::Command;

/// The commit a build is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceInfo {
    /// Full commit id, when the workspace is a git checkout.
    pub commit: Option<String>,
    /// Uncommitted changes to tracked files: the image is then not a pure function of `commit`.
    pub dirty: bool,
    /// Seconds since the epoch used for every timestamp in the image: `SOURCE_DATE_EPOCH` when set,
    /// else the commit time, else 0.
    pub epoch: i64,
}

/// Environment variable that fixes build timestamps (<https://reproducible-builds.org/specs/source-date-epoch/>).
pub(crate) const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = crate::env_vars::scrub_secrets(&mut Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Inspect the workspace at `dir`. `source_date_epoch` is the value of `SOURCE_DATE_EPOCH`, if set.
pub(crate) fn inspect(dir: &Path, source_date_epoch: Option<&str>) -> Result<SourceInfo, String> {
    let commit = git(dir, &["rev-parse", "--verify", "HEAD"]);
    let dirty = commit.is_some()
        && git(dir, &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
    let epoch = match source_date_epoch {
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            format!("{SOURCE_DATE_EPOCH}=`{v}` is not a number of seconds since 1970-01-01")
        })?,
        None => commit
            .as_ref()
            .and_then(|_| git(dir, &["log", "-1", "--format=%ct", "HEAD"]))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
    };
    Ok(SourceInfo {
        commit,
        dirty,
        epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_from_env_wins_and_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let info = inspect(dir.path(), Some("1700000000")).unwrap();
        assert_eq!(info.epoch, 1_700_000_000);
        assert_eq!(info.commit, None);
        assert!(
            inspect(dir.path(), Some("yesterday"))
                .unwrap_err()
                .contains("SOURCE_DATE_EPOCH=`yesterday`")
        );
        assert_eq!(inspect(dir.path(), None).unwrap().epoch, 0);
    }
}
