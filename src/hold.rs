//! Holds, `releases/holds.yaml`: versions that must not be promoted (a rollback took them out).
//!
//! Stored as a committed file rather than as trailers: it is visible in every checkout and in the
//! rollback's pull request, it is read without walking history, and it survives squash merges,
//! which rewrite commit messages. Every change to it is made by a commit with trailers, so the
//! audit log still says who held and who cleared a version, and when.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;
use crate::error::Exit;
use crate::version::Version;

/// A holds file rel cannot read, or a hold it cannot clear.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HoldError {
    #[error("{} is not a valid holds file", path.display())]
    #[diagnostic(
        code(rel::hold::invalid),
        help("it is written by `rel rollback` and `rel hold clear`; restore it from git")
    )]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_saphyr::Error,
    },

    #[error("release {version} is not on hold")]
    #[diagnostic(
        code(rel::hold::not_held),
        help("`rel hold list` shows the versions on hold")
    )]
    NotHeld { version: Version },

    #[error("{path} has uncommitted changes")]
    #[diagnostic(
        code(rel::hold::dirty),
        help("commit or discard them first (`git diff {path}`)")
    )]
    Dirty { path: String },
}

impl HoldError {
    /// Clearing over uncommitted changes is refused (1); the rest are input errors (2).
    pub fn exit(&self) -> Exit {
        match self {
            HoldError::Dirty { .. } => Exit::Failed,
            HoldError::Invalid { .. } | HoldError::NotHeld { .. } => Exit::Error,
        }
    }
}

/// `releases/holds.yaml`, relative to the project root.
pub(crate) const FILE: &str = "holds.yaml";

pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(crate::releases::DIR).join(FILE)
}

/// One held version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Hold {
    pub version: String,
    /// The environment it was rolled back in.
    pub env: String,
    pub reason: String,
    pub since: String,
    pub actor: String,
}

/// The set of holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Holds {
    #[serde(default)]
    pub holds: Vec<Hold>,
}

impl Holds {
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Holds, Error> {
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(Holds::default());
        }
        serde_saphyr::from_str(text).map_err(|source| {
            HoldError::Invalid {
                path: path.to_owned(),
                source,
            }
            .into()
        })
    }

    /// The holds of the project (none when the file does not exist).
    pub(crate) fn load(root: &Path) -> Result<Holds, Error> {
        let p = path(root);
        match std::fs::read_to_string(&p) {
            Ok(text) => Holds::parse(&p, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Holds::default()),
            Err(e) => Err(Error::io("read the holds file", &p, e)),
        }
    }

    pub(crate) fn get(&self, version: &Version) -> Option<&Hold> {
        let v = version.to_string();
        self.holds.iter().find(|h| h.version == v)
    }

    /// Add a hold (replacing an older hold of the same version).
    pub(crate) fn add(&mut self, hold: Hold) {
        self.holds.retain(|h| h.version != hold.version);
        self.holds.push(hold);
        self.holds.sort_by(|a, b| a.version.cmp(&b.version));
    }

    /// Remove the hold of `version`; whether there was one.
    pub(crate) fn clear(&mut self, version: &Version) -> bool {
        let v = version.to_string();
        let before = self.holds.len();
        self.holds.retain(|h| h.version != v);
        before != self.holds.len()
    }

    pub(crate) fn to_yaml(&self) -> String {
        let mut out = String::from(
            "# Versions rel will not promote: `rel rollback` holds the version it took out,\n# `rel hold clear <version>` releases it. Written by rel; every change is a commit with trailers.\n",
        );
        if self.holds.is_empty() {
            out.push_str("holds: []\n");
            return out;
        }
        out.push_str("holds:\n");
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        for h in &self.holds {
            out.push_str(&format!(
                "  - version: {}\n    env: {}\n    reason: {}\n    since: {}\n    actor: {}\n",
                q(&h.version),
                q(&h.env),
                q(&h.reason),
                q(&h.since),
                q(&h.actor)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_round_trip_and_clear() {
        let mut holds = Holds::default();
        assert_eq!(
            Holds::parse(Path::new("h"), &holds.to_yaml()).unwrap(),
            holds
        );
        holds.add(Hold {
            version: "0.4.0".into(),
            env: "prod".into(),
            reason: "rolled back: \"x\"".into(),
            since: "2026-01-01T00:00:00Z".into(),
            actor: "a@b".into(),
        });
        holds.add(Hold {
            version: "0.3.0".into(),
            env: "prod".into(),
            reason: "r".into(),
            since: "s".into(),
            actor: "a".into(),
        });
        let back = Holds::parse(Path::new("h"), &holds.to_yaml()).unwrap();
        assert_eq!(back, holds);
        assert_eq!(back.holds[0].version, "0.3.0");
        let v: Version = "0.4.0".parse().unwrap();
        assert!(back.get(&v).is_some());
        let mut b = back;
        assert!(b.clear(&v));
        assert!(!b.clear(&v));
        assert!(b.get(&v).is_none());
        assert_eq!(
            Holds::parse(Path::new("h"), "# only a comment\n").unwrap(),
            Holds::default()
        );
    }
}
