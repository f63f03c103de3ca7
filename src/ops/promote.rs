//! `rel promote` as an op: plan the promotion, check trust, then commit the pin on its branch,
//! push it with a lease and open or update the pull request, as the options ask. Everything that
//! can fail before the commit is checked before the commit; a refused push leaves the branch as
//! it was.

use git2::Oid;

use crate::Error;
use crate::config::ForgeKind;
use crate::forge::{self, Proposal, PullRequest};
use crate::git_repo::Repo;
use crate::ops::Workspace;
use crate::promote::{BranchUpdate, Plan, PromoteError, Request, commit, plan};
use crate::version::Version;

/// What to promote, where, and how far to go.
#[derive(Debug, Clone)]
pub(crate) struct PromoteOptions {
    pub version: Version,
    pub env: String,
    /// `--from`: the environment the release was validated in [default: the one that promotes to
    /// `env`].
    pub from: Option<String>,
    /// `--override-soak --reason R`: promote before the source's soak window is over, recording R.
    pub override_soak: Option<String>,
    /// Push the branch (with a lease).
    pub push: bool,
    /// Push and open (or update) the pull request.
    pub open_pr: bool,
    /// Plan, render the pull request, change nothing.
    pub dry_run: bool,
}

/// What a promotion did.
#[derive(Debug)]
pub(crate) struct PromoteOutcome {
    pub plan: Plan,
    pub done: Promoted,
}

/// How far the promotion went.
#[derive(Debug)]
pub(crate) enum Promoted {
    /// The environment already pins the release.
    Noop,
    /// `--dry-run`: the pull request it would open.
    DryRun { pr: PrText },
    /// Committed on the promotion branch; pushed and a pull request opened when asked.
    Committed {
        commit: Oid,
        update: BranchUpdate,
        /// The remote the branch goes to (rel.toml's `[forge] remote`, else `origin`).
        remote: String,
        pushed: bool,
        /// The pull request opened or updated, and its forge.
        pr: Option<(ForgeKind, PullRequest)>,
    },
}

/// A pull request's text, as a dry run shows it.
#[derive(Debug, Clone)]
pub(crate) struct PrText {
    pub kind: ForgeKind,
    /// The branch it would merge into.
    pub base: String,
    pub title: String,
    pub body: String,
}

/// Promote `opts.version` to `opts.env`.
pub(crate) fn promote(ws: &Workspace, opts: &PromoteOptions) -> Result<PromoteOutcome, Error> {
    let config = &ws.config;
    let repo = Repo::open(&config.root)?;
    let request = Request {
        version: opts.version.clone(),
        env: opts.env.clone(),
        from: opts.from.clone(),
        actor: repo.actor(),
        override_soak: opts.override_soak.clone(),
    };
    let plan = plan(&repo, config, &request)?;
    if config.trust.is_some() {
        refuse_untrusted(ws, opts)?;
    }
    if plan.is_noop() {
        return Ok(PromoteOutcome {
            plan,
            done: Promoted::Noop,
        });
    }
    let remote = config
        .forge
        .as_ref()
        .and_then(|f| f.remote.clone())
        .unwrap_or_else(|| "origin".to_owned());
    let push = opts.push || opts.open_pr;

    // Everything that can fail before the commit is checked before the commit.
    let forge_target = if opts.open_pr || opts.dry_run {
        let t = forge::detect(repo.remote_url(&remote).as_deref(), config.forge.as_ref());
        if opts.open_pr { Some(t?) } else { t.ok() }
    } else {
        None
    };
    let token = match (&forge_target, opts.open_pr && !opts.dry_run) {
        (Some(t), true) => Some(forge::token_from_env(t.kind)?),
        _ => None,
    };
    let kind = forge_target
        .as_ref()
        .map(|t| t.kind)
        .unwrap_or(ForgeKind::Github);
    let source_repo = if kind == ForgeKind::Github {
        config.repo.as_deref()
    } else {
        None
    };
    let mut body = plan.pr_body(kind.body_limit(), source_repo);
    // What the promotion changes in the cluster, object by object (secrets masked), in what room
    // the forge's body limit leaves; a diff that cannot be rendered never blocks a promotion.
    let room = kind.body_limit().saturating_sub(body.len() + 2);
    if room > 512 {
        match crate::diff::promotion_markdown(config, &plan, room) {
            Ok(md) => {
                body.push_str("\n\n");
                body.push_str(&md);
            }
            Err(e) => tracing::warn!("the rendered diff is left out of the pull request: {e}"),
        }
    }

    if opts.dry_run {
        let pr = PrText {
            kind,
            base: forge_target
                .as_ref()
                .map_or_else(|| "main".to_owned(), |t| t.base.clone()),
            title: plan.title(),
            body,
        };
        return Ok(PromoteOutcome {
            plan,
            done: Promoted::DryRun { pr },
        });
    }

    let (oid, update) = commit(&repo, &plan)?;
    if push {
        let expected = repo.tracking_tip(&remote, &plan.branch);
        if let Err(e) = repo.push_with_lease(&remote, oid, &plan.branch, expected) {
            // Leave nothing behind: the branch goes back to what it was.
            match update {
                BranchUpdate::Created => repo.delete_branch_if_at(&plan.branch, oid),
                BranchUpdate::Replaced(old) => {
                    let _ = repo.move_branch(&plan.branch, oid, old);
                }
                BranchUpdate::Reused => {}
            }
            return Err(e.into());
        }
    }
    let pr = match (&forge_target, &token) {
        (Some(target), Some(token)) => {
            let title = plan.title();
            let opened = forge::open_or_update(
                target,
                token,
                &Proposal {
                    head: &plan.branch,
                    title: &title,
                    body: &body,
                },
            )?;
            Some((target.kind, opened))
        }
        _ => None,
    };
    Ok(PromoteOutcome {
        plan,
        done: Promoted::Committed {
            commit: oid,
            update,
            remote,
            pushed: push,
            pr,
        },
    })
}

/// With `[trust]` configured, promotion runs `verify` for the target environment first and
/// refuses a release that is unsigned or does not match, naming each failed check.
fn refuse_untrusted(ws: &Workspace, opts: &PromoteOptions) -> Result<(), Error> {
    let report = crate::ops::verify::verify(
        ws,
        &crate::ops::verify::VerifyOptions {
            version: opts.version.clone(),
            env: Some(opts.env.clone()),
            insecure_registries: Vec::new(),
        },
    )?;
    if report.passed() {
        return Ok(());
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == crate::report::Status::Fail)
        .map(|c| format!("  {}: {}", c.name, c.detail))
        .collect();
    Err(PromoteError::Untrusted {
        version: opts.version.clone(),
        env: opts.env.clone(),
        failed: failed.join("\n"),
    }
    .into())
}
