//! Freezes, `releases/freezes.yaml`: environments nothing may be promoted, pinned or deployed into
//! (an incident, a change freeze), each with a reason, who froze it, since when and until when.
//!
//! Like holds ([`crate::hold`]), a committed file: visible in every checkout, reviewed in pull
//! requests, read without walking history, and every change to it is a commit with trailers
//! (`rel freeze`, `rel unfreeze`), so `rel audit` says who froze what and why. A freeze whose
//! `until` has passed no longer freezes (it stays in the file, shown as expired, until
//! `rel unfreeze` removes it). Rollbacks are never refused by a freeze: on-call must be able to
//! take a bad version out.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

use crate::Error;
use crate::error::Exit;

/// A frozen environment, or a freezes file or change rel cannot make.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FreezeError {
    #[error("{described}; {action} refused")]
    #[diagnostic(
        code(rel::freeze::frozen),
        help(
            "{wait}if the freeze no longer applies, lift it with `rel unfreeze --env {env}` (a reviewed, audited commit); `rel rollback` is never frozen"
        )
    )]
    Frozen {
        /// [`Freeze::describe`].
        described: String,
        action: String,
        env: String,
        /// `wait until U, or, ` when the freeze has an end.
        wait: String,
    },

    #[error("{} is not a valid freezes file", path.display())]
    #[diagnostic(
        code(rel::freeze::invalid),
        help(
            "it is written by `rel freeze` and `rel unfreeze`; restore it from git (`git checkout -- releases/freezes.yaml`)"
        )
    )]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_saphyr::Error,
    },

    #[error("--reason is empty")]
    #[diagnostic(
        code(rel::freeze::no_reason),
        help("say why the environment is frozen: `--reason \"incident 42: database failover\"`")
    )]
    EmptyReason,

    #[error("{env} is not frozen{hint}")]
    #[diagnostic(code(rel::freeze::not_frozen), help("`rel status` shows the freezes"))]
    NotFrozen {
        env: String,
        /// Why, when the working tree disagrees with the last commit.
        hint: String,
    },

    #[error("{path} has uncommitted changes")]
    #[diagnostic(
        code(rel::freeze::dirty),
        help(
            "commit or discard them first (`git diff {path}`); rel computes the new file from the last commit"
        )
    )]
    Dirty { path: String },
}

impl FreezeError {
    /// A freeze and uncommitted changes are refusals (1); the rest are input errors (2).
    pub fn exit(&self) -> Exit {
        match self {
            FreezeError::Frozen { .. } | FreezeError::Dirty { .. } => Exit::Failed,
            FreezeError::Invalid { .. }
            | FreezeError::EmptyReason
            | FreezeError::NotFrozen { .. } => Exit::Error,
        }
    }
}

/// `releases/freezes.yaml`, relative to the project root.
pub(crate) const FILE: &str = "freezes.yaml";

pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(crate::releases::DIR).join(FILE)
}

/// One frozen environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Freeze {
    pub env: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// RFC 3339, UTC; `None`: until `rel unfreeze`.
    #[serde(default)]
    pub until: Option<String>,
    pub actor: String,
}

impl Freeze {
    /// Whether the freeze holds at `now` (an unreadable `until` counts as holding: fail closed).
    pub(crate) fn is_active(&self, now: OffsetDateTime) -> bool {
        match &self.until {
            None => true,
            Some(u) => crate::clock::parse_rfc3339(u).is_none_or(|u| now < u),
        }
    }

    /// "frozen since S by A: REASON (until U)" for messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} is frozen: {} (by {}, since {}, {})",
            self.env,
            self.reason,
            self.actor,
            self.since,
            match &self.until {
                Some(u) => format!("until {u}"),
                None => "until `rel unfreeze`".to_owned(),
            }
        )
    }

    /// The refusal of an action into a frozen environment.
    pub(crate) fn refusal(&self, action: &str) -> Error {
        FreezeError::Frozen {
            described: self.describe(),
            action: action.to_owned(),
            env: self.env.clone(),
            wait: match &self.until {
                Some(u) => format!("wait until {u}, or, "),
                None => String::new(),
            },
        }
        .into()
    }
}

/// The set of freezes, one per environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Freezes {
    #[serde(default)]
    pub freezes: Vec<Freeze>,
}

impl Freezes {
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Freezes, Error> {
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(Freezes::default());
        }
        serde_saphyr::from_str(text).map_err(|source| {
            FreezeError::Invalid {
                path: path.to_owned(),
                source,
            }
            .into()
        })
    }

    /// The freezes of the project's working tree (none when the file does not exist).
    pub(crate) fn load(root: &Path) -> Result<Freezes, Error> {
        let p = path(root);
        match std::fs::read_to_string(&p) {
            Ok(text) => Freezes::parse(&p, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Freezes::default()),
            Err(e) => Err(Error::io("read the freezes file", &p, e)),
        }
    }

    /// The freeze entry of `env`, active or expired.
    pub(crate) fn get(&self, env: &str) -> Option<&Freeze> {
        self.freezes.iter().find(|f| f.env == env)
    }

    /// The freeze of `env` that holds at `now`.
    pub(crate) fn active(&self, env: &str, now: OffsetDateTime) -> Option<&Freeze> {
        self.get(env).filter(|f| f.is_active(now))
    }

    /// Add a freeze (replacing the environment's older one).
    pub(crate) fn add(&mut self, freeze: Freeze) {
        self.freezes.retain(|f| f.env != freeze.env);
        self.freezes.push(freeze);
        self.freezes.sort_by(|a, b| a.env.cmp(&b.env));
    }

    /// Remove the freeze of `env`; the one removed.
    pub(crate) fn remove(&mut self, env: &str) -> Option<Freeze> {
        let at = self.freezes.iter().position(|f| f.env == env)?;
        Some(self.freezes.remove(at))
    }

    pub(crate) fn to_yaml(&self) -> String {
        let mut out = String::from(
            "# Frozen environments: rel refuses to promote, pin or deploy into them (rollbacks stay allowed).\n# `rel freeze --env E --reason R [--until T]` adds one, `rel unfreeze --env E` lifts it.\n# Written by rel; every change is a commit with trailers.\n",
        );
        if self.freezes.is_empty() {
            out.push_str("freezes: []\n");
            return out;
        }
        out.push_str("freezes:\n");
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        for f in &self.freezes {
            out.push_str(&format!(
                "  - env: {}\n    reason: {}\n    since: {}\n",
                q(&f.env),
                q(&f.reason),
                q(&f.since)
            ));
            if let Some(u) = &f.until {
                out.push_str(&format!("    until: {}\n", q(u)));
            }
            out.push_str(&format!("    actor: {}\n", q(&f.actor)));
        }
        out
    }
}

/// Refuse `action` into `env` when a freeze holds there now (the working tree's freezes file).
pub(crate) fn ensure_not_frozen(root: &Path, env: &str, action: &str) -> Result<(), Error> {
    let freezes = Freezes::load(root)?;
    let Some(f) = freezes.get(env) else {
        return Ok(());
    };
    if f.is_active(crate::clock::now()?) {
        return Err(f.refusal(action));
    }
    Ok(())
}

/// Like [`ensure_not_frozen`], for the freezes file as committed in `commit` (what a promotion
/// branch is built on): an uncommitted edit of the working tree's file does not lift a freeze.
pub(crate) fn ensure_not_frozen_at(
    repo: &crate::git_repo::Repo,
    commit: git2::Oid,
    root: &Path,
    env: &str,
    action: &str,
) -> Result<(), Error> {
    let file = path(root);
    let rel = repo.rel_path(&file)?;
    let Some(bytes) = repo.read_file(commit, &rel)? else {
        return Ok(());
    };
    let freezes = Freezes::parse(&file, &String::from_utf8_lossy(&bytes))?;
    match freezes.get(env) {
        Some(f) if f.is_active(crate::clock::now()?) => Err(f.refusal(action)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezes_round_trip_expire_and_refuse_with_the_reason() {
        let mut fz = Freezes::default();
        assert_eq!(Freezes::parse(Path::new("f"), &fz.to_yaml()).unwrap(), fz);
        fz.add(Freeze {
            env: "prod".into(),
            reason: "incident #42: \"db\" failover".into(),
            since: "2026-12-01T10:00:00Z".into(),
            until: Some("2026-12-02T10:00:00Z".into()),
            actor: "alice@example.com".into(),
        });
        fz.add(Freeze {
            env: "staging".into(),
            reason: "r".into(),
            since: "2026-12-01T10:00:00Z".into(),
            until: None,
            actor: "bob".into(),
        });
        let back = Freezes::parse(Path::new("f"), &fz.to_yaml()).unwrap();
        assert_eq!(back, fz);
        let at = |s| crate::clock::parse_rfc3339(s).unwrap();
        assert!(back.active("prod", at("2026-12-02T09:59:59Z")).is_some());
        assert!(back.active("prod", at("2026-12-02T10:00:00Z")).is_none());
        assert!(back.get("prod").is_some());
        assert!(back.active("staging", at("2999-01-01T00:00:00Z")).is_some());
        let e = back.get("prod").unwrap().refusal("promote 0.4.0 to prod");
        assert_eq!(e.exit(), crate::Exit::Failed);
        assert_eq!(
            e.to_string(),
            "prod is frozen: incident #42: \"db\" failover (by alice@example.com, since 2026-12-01T10:00:00Z, until 2026-12-02T10:00:00Z); promote 0.4.0 to prod refused"
        );
        let mut b = back;
        assert_eq!(b.remove("prod").unwrap().actor, "alice@example.com");
        assert!(b.remove("prod").is_none());
        assert!(
            Freezes::parse(Path::new("f"), "freezes: [{env: prod}]\n")
                .unwrap_err()
                .to_string()
                .contains("not a valid freezes file")
        );
    }
}
