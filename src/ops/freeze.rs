//! `rel freeze` and `rel unfreeze` as ops: change `releases/freezes.yaml` and commit it with
//! trailers on the current branch (as `rel hold clear` does), so the freeze is reviewed and
//! audited like every other rel change.
//!
//! The new file is computed from the committed one (HEAD), never from an edited working tree; a
//! working tree with other uncommitted changes to the file is refused. A rerun after a kill
//! converges: the commit is made before the working tree is written, so a rerun finds the freeze
//! already committed, restores a working-tree file left stale by the kill, and commits nothing.

use git2::Oid;

use crate::Error;
use crate::freeze::{Freeze, FreezeError, Freezes};
use crate::git_repo::{FileChange, Repo};
use crate::ops::Workspace;
use crate::trailers::{Action, Trailers, key};

/// What to change.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Freeze `env` (replacing its freeze, if any).
    Freeze {
        reason: String,
        /// As given to `--until` (a time, a date or a duration from now).
        until: Option<String>,
    },
    /// Lift the freeze of `env`.
    Unfreeze,
}

#[derive(Debug, Clone)]
pub(crate) struct FreezeOptions {
    pub env: String,
    pub change: Change,
    /// Compute and describe; change nothing.
    pub dry_run: bool,
    /// Write the file, commit nothing.
    pub no_commit: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Done {
    /// Committed on the current branch.
    Committed,
    /// Written to the working tree only (`--no-commit`, or not a git repository).
    Written,
    /// `--dry-run`: nothing changed.
    DryRun,
    /// The committed file already says so: nothing to do.
    Unchanged,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FreezeOutcome {
    pub env: String,
    pub action: Action,
    /// The freeze set (freeze) or lifted (unfreeze).
    pub freeze: Freeze,
    pub done: Done,
    /// The file, relative to the project root.
    pub file: String,
    #[serde(skip)]
    pub text: String,
    /// The commit made (or, on a dry run, the message it would carry).
    pub commit: Option<String>,
    pub branch: Option<String>,
    #[serde(skip)]
    pub message: String,
}

pub(crate) fn freeze(ws: &Workspace, opts: &FreezeOptions) -> Result<FreezeOutcome, Error> {
    let config = &ws.config;
    let env = config.environment(&opts.env)?.name.clone();
    let now = crate::clock::now()?;
    let path = crate::freeze::path(&config.root);
    let file = format!("{}/{}", crate::releases::DIR, crate::freeze::FILE);
    let repo = if opts.no_commit {
        None
    } else {
        Repo::discover(&config.root)?
    };

    // The state the change applies to: HEAD's file when committing, else the working tree's.
    let (committed, head, rel) = match &repo {
        Some(repo) => {
            let rel = repo.rel_path(&path)?;
            let head = repo.head_commit()?;
            let text = repo.read_file(head, &rel)?;
            let freezes = match &text {
                Some(bytes) => Freezes::parse(&path, &String::from_utf8_lossy(bytes))?,
                None => Freezes::default(),
            };
            (freezes, Some(head), Some(rel))
        }
        None => (Freezes::load(&config.root)?, None, None),
    };
    let actor = crate::git_repo::actor(repo.as_ref());
    let mut next = committed.clone();
    let mut t = Trailers::new();
    let (action, freeze, unchanged, subject, body) = match &opts.change {
        Change::Freeze { reason, until } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(FreezeError::EmptyReason.into());
            }
            let until = until
                .as_deref()
                .map(|u| crate::clock::parse_until(u, now).map(crate::clock::format))
                .transpose()?;
            let f = Freeze {
                env: env.clone(),
                reason: reason.to_owned(),
                since: crate::clock::format(now),
                until: until.clone(),
                actor: actor.clone(),
            };
            let unchanged = committed
                .active(&env, now)
                .is_some_and(|old| old.reason == f.reason && old.until == f.until);
            // A rerun keeps the original `since`.
            let f = if unchanged {
                committed.get(&env).cloned().unwrap_or(f)
            } else {
                f
            };
            next.add(f.clone());
            t.push(key::ACTION, Action::Freeze)
                .push(key::ENV, &env)
                .push(key::REASON, &f.reason);
            if let Some(u) = &f.until {
                t.push(key::UNTIL, u);
            }
            let body = format!(
                "rel refuses to promote, pin or deploy into {env} {}.\nReason: {}",
                match &f.until {
                    Some(u) => format!("until {u}"),
                    None => "until `rel unfreeze`".to_owned(),
                },
                f.reason
            );
            (
                Action::Freeze,
                f,
                unchanged,
                format!("rel: freeze {env}"),
                body,
            )
        }
        Change::Unfreeze => {
            let Some(old) = next.remove(&env) else {
                let in_tree = Freezes::load(&config.root)?.get(&env).cloned();
                if let (Some(repo), Some(head), Some(rel), Some(f)) = (&repo, head, &rel, &in_tree)
                    && !opts.dry_run
                    && stale_after_kill(repo, head, rel, &path)?
                {
                    // A kill left the working tree behind the committed unfreeze: restore it.
                    let changes = vec![FileChange {
                        path: rel.clone(),
                        contents: repo.read_file(head, rel)?,
                    }];
                    repo.advance_head(
                        head,
                        head,
                        &changes,
                        "rel unfreeze: restore the working tree",
                    )?;
                    return Ok(FreezeOutcome {
                        env: env.clone(),
                        action: Action::Unfreeze,
                        freeze: f.clone(),
                        done: Done::Unchanged,
                        file,
                        text: String::new(),
                        commit: Some(head.to_string()),
                        branch: repo.head_branch(),
                        message: String::new(),
                    });
                }
                let hint = match (&repo, in_tree) {
                    (Some(_), Some(_)) => format!(
                        " (the working tree's {file} freezes it, uncommitted: discard it with `git checkout -- {file}` or commit it)"
                    ),
                    _ => String::new(),
                };
                return Err(FreezeError::NotFrozen {
                    env: env.clone(),
                    hint,
                }
                .into());
            };
            t.push(key::ACTION, Action::Unfreeze).push(key::ENV, &env);
            let body = format!(
                "Lifts the freeze of {env} set by {} since {}: {}",
                old.actor, old.since, old.reason
            );
            (
                Action::Unfreeze,
                old,
                false,
                format!("rel: unfreeze {env}"),
                body,
            )
        }
    };
    if let Some(clock) = crate::clock::injected() {
        t.push(key::CLOCK, clock);
    }
    t.push(key::ACTOR, &actor);
    let message = t.message(&subject, &body);
    let text = next.to_yaml();
    let mut outcome = FreezeOutcome {
        env,
        action,
        freeze,
        done: Done::DryRun,
        file,
        text: text.clone(),
        commit: None,
        branch: repo.as_ref().and_then(Repo::head_branch),
        message,
    };
    if opts.dry_run {
        if unchanged {
            outcome.done = Done::Unchanged;
        }
        return Ok(outcome);
    }

    let (Some(repo), Some(head), Some(rel)) = (repo, head, rel) else {
        if unchanged && std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            outcome.done = Done::Unchanged;
            return Ok(outcome);
        }
        crate::atomic_write::write(&path, text.as_bytes())
            .map_err(|e| Error::io("write the freezes file", &path, e))?;
        outcome.done = Done::Written;
        return Ok(outcome);
    };
    let changes = vec![FileChange {
        path: rel.clone(),
        contents: Some(text.clone().into_bytes()),
    }];
    let dirty = !repo.dirty_paths(std::slice::from_ref(&rel))?.is_empty();
    if dirty && !stale_after_kill(&repo, head, &rel, &path)? {
        return Err(FreezeError::Dirty { path: rel }.into());
    }
    if unchanged {
        if dirty {
            // A kill left the working tree behind the commit: bring it up to date.
            repo.advance_head(head, head, &changes, "rel freeze: restore the working tree")?;
        }
        outcome.done = Done::Unchanged;
        outcome.commit = Some(head.to_string());
        return Ok(outcome);
    }
    let commit = repo.commit_on(head, &changes, &outcome.message)?;
    repo.advance_head(head, commit, &changes, &format!("rel {}", action))?;
    outcome.done = Done::Committed;
    outcome.commit = Some(commit.to_string());
    Ok(outcome)
}

/// Whether the working tree's file is exactly what HEAD's parent held and HEAD is a rel
/// freeze or unfreeze: the state a kill between the commit and the working-tree write leaves.
fn stale_after_kill(
    repo: &Repo,
    head: Oid,
    rel: &str,
    path: &std::path::Path,
) -> Result<bool, Error> {
    let action = Trailers::parse(&repo.commit_info(head)?.message).action();
    if !matches!(action, Some(Action::Freeze | Action::Unfreeze)) {
        return Ok(false);
    }
    let Some(parent) = repo.first_parent(head) else {
        return Ok(false);
    };
    let before = repo.read_file(parent, rel)?;
    let now = std::fs::read(path).ok();
    Ok(before == now)
}
