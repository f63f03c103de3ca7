//! `record`: write and commit the validation record of a release in an environment, from green
//! deep-gate evidence bound to the lockfile's bytes. Re-running after a kill at any step converges.

use std::path::PathBuf;

use crate::Error;
use crate::error::Exit;
use crate::git_repo::{FileChange, Repo, short};
use crate::ops::Workspace;
use crate::record::{ValidationRecord, check_evidence, now_rfc3339, sha256_hex};
use crate::trailers::{Action, Trailers, key};
use crate::version::Version;

/// Why `rel record` does not write a validation record.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error("there is no {lockfile} to record")]
    #[diagnostic(
        code(rel::record::no_lockfile),
        help("lock the release first: `rel lock --version {version}`")
    )]
    NoLockfile { lockfile: String, version: Version },

    #[error(
        "{record} already exists (recorded {recorded_at} by {actor}); a validation record never changes"
    )]
    #[diagnostic(
        code(rel::record::exists),
        help(
            "a record is evidence: to validate different bytes, cut a new version, lock it, run the deep gate and record that"
        )
    )]
    Exists {
        record: String,
        recorded_at: String,
        actor: String,
    },

    #[error("{record} was written by someone else just now; a validation record never changes")]
    #[diagnostic(
        code(rel::record::raced),
        help("look at it: it may already be the record you wanted")
    )]
    Raced { record: String },

    #[error("HEAD is detached: rel would not know which branch to commit the record on")]
    #[diagnostic(
        code(rel::record::detached_head),
        help("check out your branch (e.g. `git switch main`), or pass --no-commit")
    )]
    DetachedHead,
}

impl RecordError {
    /// A record that exists or was raced is a refusal (1); the rest are input errors (2).
    pub fn exit(&self) -> Exit {
        match self {
            RecordError::Exists { .. } | RecordError::Raced { .. } => Exit::Failed,
            RecordError::NoLockfile { .. } | RecordError::DetachedHead => Exit::Error,
        }
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub(crate) struct RecordOptions {
    pub version: Version,
    pub env: String,
    /// The deep smoke report (JSON), relative to the working directory or absolute.
    pub evidence: PathBuf,
    /// Write the record without committing it.
    pub no_commit: bool,
}

/// What `record` did.
#[derive(Debug)]
pub(crate) struct RecordOutcome {
    /// What happened, for people.
    pub message: String,
    pub record_path: PathBuf,
}

pub(crate) fn record(ws: &Workspace, args: &RecordOptions) -> Result<RecordOutcome, Error> {
    if let Some(key) = &ws.signer {
        crate::signing::ensure_minisign(key, "a validation record")?;
    }
    let config = &ws.config;
    config.environment(&args.env)?;
    let root = &config.root;
    let version = &args.version;
    let lock_path = crate::releases::lockfile_path(root, version);
    let lock_shown = ws.display(&lock_path);
    let lock_bytes = match std::fs::read(&lock_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RecordError::NoLockfile {
                lockfile: lock_shown,
                version: version.clone(),
            }
            .into());
        }
        Err(e) => return Err(Error::io("read the lockfile", &lock_path, e)),
    };
    crate::lockfile::Lockfile::load(&lock_path)?;

    let evidence_path = if args.evidence.is_absolute() {
        args.evidence.clone()
    } else {
        ws.cwd.join(&args.evidence)
    };
    let evidence_shown = ws.display(&evidence_path);
    let evidence = std::fs::read(&evidence_path)
        .map_err(|e| Error::io("read the evidence", &evidence_path, e))?;
    let report = check_evidence(
        &String::from_utf8_lossy(&evidence),
        &evidence_shown,
        version,
        &args.env,
        &sha256_hex(&lock_bytes),
    )?;

    let record_path = crate::releases::record_path(root, version, &args.env);
    let record_shown = ws.display(&record_path);
    let lockfile_sha256 = sha256_hex(&lock_bytes);
    let evidence_sha256 = sha256_hex(&evidence);
    let mut resume: Option<(ValidationRecord, String)> = None;
    if let Some(existing) = ValidationRecord::load(root, version, &args.env)? {
        if existing.lockfile_sha256 == lockfile_sha256
            && existing.evidence_sha256 == evidence_sha256
        {
            // The record is written; is it committed? A run killed between the write and the
            // commit left it only in the working tree: finish that run's commit now.
            let text = std::fs::read_to_string(&record_path)
                .map_err(|e| Error::io("read the validation record", &record_path, e))?;
            let committed = match (args.no_commit, Repo::discover(root)?) {
                (true, _) | (false, None) => true,
                (false, Some(repo)) => {
                    let rel = repo.rel_path(&record_path)?;
                    let head = repo.head_commit()?;
                    repo.read_file(head, &rel)?.as_deref() == Some(text.as_bytes())
                }
            };
            if committed {
                return Ok(RecordOutcome {
                    message: format!(
                        "{record_shown} already records this evidence; nothing to do\n"
                    ),
                    record_path,
                });
            }
            resume = Some((existing, text));
        } else {
            return Err(RecordError::Exists {
                record: record_shown,
                recorded_at: existing.recorded_at.to_string(),
                actor: existing.actor.clone(),
            }
            .into());
        }
    }

    let repo = if args.no_commit {
        None
    } else {
        Repo::discover(root)?
    };
    let head = match &repo {
        Some(r) => {
            if r.head_branch().is_none() {
                return Err(RecordError::DetachedHead.into());
            }
            Some(r.head_commit()?)
        }
        None => None,
    };
    let actor = crate::git_repo::actor(repo.as_ref());
    let resumed = resume.is_some();
    let (record, text) = match resume {
        Some(found) => found,
        None => {
            let record = new_record(
                version,
                &args.env,
                &lockfile_sha256,
                &report,
                evidence_sha256,
                &actor,
            );
            let text = record.to_yaml();
            crate::atomic_write::create_new(&record_path, text.as_bytes(), None).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    RecordError::Raced {
                        record: record_shown.clone(),
                    }
                    .into()
                } else {
                    Error::io("write the validation record", &record_path, e)
                }
            })?;
            (record, text)
        }
    };
    let mut out = format!(
        "recorded {record_shown}: release {version} passed {} in {} ({} checks passed, {} warnings)\n  lockfile {lock_shown} sha256 {lockfile_sha256}\n",
        record.evidence_line().split(' ').next().unwrap_or_default(),
        args.env,
        record.summary.pass,
        record.summary.warn
    );

    // With a signing key, the lockfile and the record get detached signatures, committed with them.
    let mut signatures = Vec::new();
    if let Some(key) = &ws.signer {
        for (path, bytes) in [
            (&lock_path, lock_bytes.as_slice()),
            (&record_path, text.as_bytes()),
        ] {
            let sig = crate::signing::write_detached(key, path, bytes)?;
            let sig_text =
                std::fs::read(&sig).map_err(|e| Error::io("read the signature", &sig, e))?;
            signatures.push((sig, sig_text));
        }
    }
    if let (Some(repo), Some(head)) = (&repo, head) {
        let mut changes = vec![
            FileChange {
                path: repo.rel_path(&lock_path)?,
                contents: Some(lock_bytes),
            },
            FileChange {
                path: repo.rel_path(&record_path)?,
                contents: Some(text.into_bytes()),
            },
        ];
        for (sig, sig_text) in signatures {
            changes.push(FileChange {
                path: repo.rel_path(&sig)?,
                contents: Some(sig_text),
            });
        }
        let mut t = Trailers::new();
        t.push(key::ACTION, Action::Record)
            .push(key::VERSION, version)
            .push(key::ENV, &args.env)
            .push(key::LOCKFILE_SHA256, &lockfile_sha256)
            .push(key::EVIDENCE, record.evidence_line())
            .push(key::ACTOR, &actor);
        let message = t.message(
            &format!("rel: record {version} validated in {}", args.env),
            &format!(
                "The deep gate passed in {} for release {version}; {lock_shown} is now immutable.",
                args.env
            ),
        );
        let commit = repo.commit_on(head, &changes, &message)?;
        if let Err(e) = repo.advance_head(head, commit, &changes, "rel record") {
            if !resumed {
                let _ = std::fs::remove_file(&record_path);
            }
            return Err(e.into());
        }
        out.push_str(&format!(
            "committed {} on {}: {}\n",
            short(commit),
            repo.head_branch().unwrap_or_default(),
            message.lines().next().unwrap_or_default()
        ));
    } else {
        out.push_str(&format!(
            "not committed: commit {record_shown} and {lock_shown} so promotion can see them\n"
        ));
    }
    Ok(RecordOutcome {
        message: out,
        record_path,
    })
}

fn new_record(
    version: &crate::version::Version,
    env: &str,
    lockfile_sha256: &str,
    report: &crate::report::Report,
    evidence_sha256: String,
    actor: &str,
) -> ValidationRecord {
    ValidationRecord {
        version: version.to_string(),
        env: env.to_owned(),
        lockfile: format!("{}/{version}.yaml", crate::releases::DIR),
        lockfile_sha256: lockfile_sha256.to_owned(),
        gate: report.gate.clone(),
        profile: crate::record::PROFILE.to_owned(),
        target: report.target.clone(),
        summary: report.summary,
        evidence_sha256,
        recorded_at: now_rfc3339(),
        actor: actor.to_owned(),
    }
}
