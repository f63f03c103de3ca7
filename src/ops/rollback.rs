//! `rel rollback` as an op: plan the rollback ([`crate::rollback::plan`]), then commit it on the
//! current branch (and push it with a lease), or on a branch of its own with a pull request, as
//! the options ask. A push that is refused leaves nothing behind.

use git2::Oid;

use crate::Error;
use crate::config::ForgeKind;
use crate::forge::{self, Proposal, PullRequest};
use crate::git_repo::Repo;
use crate::oncall::OnCall;
use crate::ops::Workspace;
use crate::rollback::{Plan, Request, RollbackError, describe, plan, steps};

/// Which environment to roll back, to what, and how far to go.
#[derive(Debug, Clone)]
pub(crate) struct RollbackOptions {
    pub env: String,
    /// `--to VERSION|COMMIT` [default: the previous validated version the environment ran].
    pub to: Option<String>,
    /// Push the commit (with a lease) to the branch Argo CD follows.
    pub push: bool,
    /// Commit on a branch of its own, push it and open (or update) a pull request.
    pub open_pr: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Push without asking.
    pub yes: bool,
}

/// What the rollback will do or did.
#[derive(Debug)]
pub(crate) struct RollbackOutcome {
    pub plan: Plan,
    /// Where the commit goes, in words.
    pub where_to: String,
    /// The environment's Argo CD Application and Rollouts, named in the re-converge steps.
    pub oncall: Option<OnCall>,
    pub remote: String,
    /// The branch Argo CD follows (the upstream of HEAD).
    pub remote_branch: String,
    /// `None`: a dry run.
    pub done: Option<RolledBack>,
}

/// The commit made, and where it went.
#[derive(Debug)]
pub(crate) struct RolledBack {
    pub commit: Oid,
    /// The branch committed on: the current one, or the pull request's.
    pub branch: String,
    pub pushed: bool,
    /// The pull request opened or updated (`--open-pr`), and its forge.
    pub pr: Option<(ForgeKind, PullRequest)>,
}

/// What the op asks its caller on the way.
pub(crate) enum RollbackEvent<'a> {
    /// The plan, before anything changes (not on a dry run): show it.
    Planned { plan: &'a Plan, where_to: &'a str },
}

/// Roll `opts.env` back. `confirm` is asked (with the question) before a push unless
/// `opts.yes`; `false` changes nothing.
pub(crate) fn rollback(
    ws: &Workspace,
    opts: &RollbackOptions,
    mut events: impl FnMut(RollbackEvent<'_>),
    mut confirm: impl FnMut(&str) -> Result<bool, Error>,
) -> Result<RollbackOutcome, Error> {
    let config = &ws.config;
    let repo = Repo::open(&config.root)?;
    let push = opts.push || opts.open_pr;
    let remote_cfg = config.forge.as_ref().and_then(|f| f.remote.clone());
    let head_branch = repo.head_branch();
    if !opts.open_pr && !opts.dry_run && head_branch.is_none() {
        return Err(RollbackError::DetachedHead.into());
    }
    let (remote, remote_branch) = match repo.upstream_of_head() {
        Some((r, b)) => (remote_cfg.clone().unwrap_or(r), b),
        None => (
            remote_cfg.clone().unwrap_or_else(|| "origin".into()),
            head_branch.clone().unwrap_or_else(|| "main".into()),
        ),
    };
    let request = Request {
        env: opts.env.clone(),
        to: opts.to.clone(),
        actor: repo.actor(),
    };
    let plan = plan(&repo, config, &request)?;
    let oncall = crate::oncall::for_env_rendered(config, config.environment(&opts.env)?);

    let forge_target = if opts.open_pr {
        Some(forge::detect(
            repo.remote_url(&remote).as_deref(),
            config.forge.as_ref(),
        )?)
    } else {
        None
    };
    let token = match &forge_target {
        Some(t) if !opts.dry_run => Some(forge::token_from_env(t.kind)?),
        _ => None,
    };
    let here = head_branch.as_deref().unwrap_or("HEAD");
    let where_to = if opts.open_pr {
        format!("a pull request from branch {}", plan.branch())
    } else if push {
        format!("{here} and push it to {remote}/{remote_branch}")
    } else {
        format!("{here} (not pushed)")
    };
    let mut outcome = RollbackOutcome {
        plan,
        where_to,
        oncall,
        remote,
        remote_branch,
        done: None,
    };
    if opts.dry_run {
        return Ok(outcome);
    }
    let RollbackOutcome {
        plan,
        where_to,
        oncall,
        remote,
        remote_branch,
        ..
    } = &outcome;
    events(RollbackEvent::Planned { plan, where_to });

    let changes = plan.changes();
    let paths: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    let dirty = repo.dirty_paths(&paths)?;
    if !dirty.is_empty() && !opts.open_pr {
        return Err(RollbackError::Dirty {
            paths: dirty.join(", "),
        }
        .into());
    }
    if push && !opts.yes && !confirm(&format!("Push this rollback ({where_to})? [y/N] "))? {
        return Err(RollbackError::NotConfirmed.into());
    }

    let commit = repo.commit_on(plan.base, &changes, &plan.message)?;
    let done = if opts.open_pr {
        let branch = plan.branch();
        repo.create_branch(&branch, commit)?;
        let expected = repo.tracking_tip(remote, &branch);
        if let Err(e) = repo.push_with_lease(remote, commit, &branch, expected) {
            repo.delete_branch_if_at(&branch, commit);
            return Err(e.into());
        }
        let pr = match (&forge_target, &token) {
            (Some(target), Some(token)) => {
                let title = plan.message.lines().next().unwrap_or_default().to_owned();
                let body = format!(
                    "{}\n```\n{}```\n\n{}",
                    describe(plan, where_to),
                    kustomize::unified_diff(&plan.old_text, &plan.new_text, &plan.overlay_rel),
                    steps(plan, oncall.as_ref(), remote, &target.base, true)
                );
                let body: String = body.chars().take(target.kind.body_limit()).collect();
                let opened = forge::open_or_update(
                    target,
                    token,
                    &Proposal {
                        head: &branch,
                        title: &title,
                        body: &body,
                    },
                )?;
                Some((target.kind, opened))
            }
            _ => None,
        };
        RolledBack {
            commit,
            branch,
            pushed: true,
            pr,
        }
    } else {
        repo.advance_head(plan.base, commit, &changes, "rel rollback")?;
        if push {
            let expected = repo.tracking_tip(remote, remote_branch);
            if let Err(e) = repo.push_with_lease(remote, commit, remote_branch, expected) {
                // Leave nothing behind: put the branch and the files back as they were.
                let undo = plan.undo_changes(&repo)?;
                repo.advance_head(
                    commit,
                    plan.base,
                    &undo,
                    "rel rollback: push refused, undone",
                )?;
                return Err(e.into());
            }
        }
        RolledBack {
            commit,
            branch: head_branch.unwrap_or_else(|| "HEAD".to_owned()),
            pushed: push,
            pr: None,
        }
    };
    outcome.done = Some(done);
    Ok(outcome)
}
