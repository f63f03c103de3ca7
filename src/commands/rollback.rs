//! `rel rollback --env E [--to VERSION|COMMIT] [--push] [--open-pr] [--dry-run] [--yes]`:
//! the on-call helper. It says what it will do, does it, and says how to re-converge.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::RollbackArgs;
use crate::commands::{Context, print_stdout};
use crate::config::ForgeKind;
use crate::forge::{self, Proposal};
use crate::git_repo::{Repo, short};
use crate::rollback::{Method, Plan, Request, plan};
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: RollbackArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let repo = Repo::open(&config.root)?;
    let push = args.push || args.open_pr;
    let remote_cfg = config.forge.as_ref().and_then(|f| f.remote.clone());

    // Refuse early what cannot work, before showing anything.
    if push && !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "rel rollback will not push without a confirmation, and there is no terminal to ask on",
            "pass --yes to push from a script or CI (or run it without --push and push by hand)",
        ));
    }
    let head_branch = repo.head_branch();
    if !args.open_pr && !args.dry_run && head_branch.is_none() {
        return Err(Error::usage(
            "HEAD is detached: rel commits the rollback on the current branch",
            "check out the branch Argo CD follows (e.g. `git switch main`), or use --open-pr",
        ));
    }
    let (remote, remote_branch) = match repo.upstream_of_head() {
        Some((r, b)) => (remote_cfg.clone().unwrap_or(r), b),
        None => (
            remote_cfg.clone().unwrap_or_else(|| "origin".into()),
            head_branch.clone().unwrap_or_else(|| "main".into()),
        ),
    };

    let request = Request {
        env: args.env.clone(),
        to: args.to.clone(),
        actor: repo.actor(),
    };
    let plan = plan(&repo, &config, &request)?;
    // The environment's Argo CD Application and Rollouts, named in the re-converge steps.
    let oncall = crate::oncall::for_env_rendered(&config, config.environment(&args.env)?);

    let forge_target = if args.open_pr {
        Some(forge::detect(
            repo.remote_url(&remote).as_deref(),
            config.forge.as_ref(),
        )?)
    } else {
        None
    };
    let token = match &forge_target {
        Some(t) if !args.dry_run => Some(forge::token_from_env(t.kind)?),
        _ => None,
    };

    let where_to = if args.open_pr {
        format!("a pull request from branch {}", plan.branch())
    } else if push {
        format!(
            "{} and push it to {remote}/{remote_branch}",
            head_branch.as_deref().unwrap_or("HEAD")
        )
    } else {
        format!("{} (not pushed)", head_branch.as_deref().unwrap_or("HEAD"))
    };
    let before = describe(&plan, &where_to);
    if args.dry_run {
        print_stdout(&format!(
            "{before}\n--- diff\n{}\n--- commit\n{}\ndry run: nothing was committed or pushed\n",
            kustomize::unified_diff(&plan.old_text, &plan.new_text, &plan.overlay_rel),
            plan.message
        ));
        return Ok(Exit::Ok);
    }
    eprint(&before);

    let changes = plan.changes();
    let paths: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    let dirty = repo.dirty_paths(&paths)?;
    if !dirty.is_empty() && !args.open_pr {
        return Err(Error::refused(
            format!(
                "{} has uncommitted changes; rel will not commit over them",
                dirty.join(", ")
            ),
            "commit or stash them first (`git stash`), then run the rollback again",
        ));
    }
    if push && !args.yes && !confirm(&format!("Push this rollback ({where_to})? [y/N] "))? {
        return Err(Error::refused(
            "not confirmed: nothing was committed or pushed",
            "run again and answer y, or pass --yes",
        ));
    }

    let commit = repo.commit_on(plan.base, &changes, &plan.message)?;
    let mut out = String::new();
    if args.open_pr {
        let branch = plan.branch();
        repo.create_branch(&branch, commit)?;
        let expected = repo.tracking_tip(&remote, &branch);
        if let Err(e) = repo.push_with_lease(&remote, commit, &branch, expected) {
            repo.delete_branch_if_at(&branch, commit);
            return Err(e.into());
        }
        out.push_str(&format!(
            "committed {} on branch {branch} and pushed it to {remote}\n",
            short(commit)
        ));
        if let (Some(target), Some(token)) = (&forge_target, &token) {
            let title = plan.message.lines().next().unwrap_or_default().to_owned();
            let body = format!(
                "{}\n```\n{}```\n\n{}",
                before,
                kustomize::unified_diff(&plan.old_text, &plan.new_text, &plan.overlay_rel),
                steps(&plan, oncall.as_ref(), &remote, &target.base, true)
            );
            let body: String = body.chars().take(target.kind.body_limit()).collect();
            let pr = forge::open_or_update(
                target,
                token,
                &Proposal {
                    head: &branch,
                    title: &title,
                    body: &body,
                },
            )?;
            out.push_str(&format!(
                "{} {} #{}: {}\n",
                if pr.created { "opened" } else { "updated" },
                if target.kind == ForgeKind::Gitlab {
                    "merge request"
                } else {
                    "pull request"
                },
                pr.number,
                pr.url
            ));
        }
        out.push_str(&steps(
            &plan,
            oncall.as_ref(),
            &remote,
            &remote_branch,
            false,
        ));
    } else {
        repo.advance_head(plan.base, commit, &changes, "rel rollback")?;
        out.push_str(&format!(
            "committed {} on {}: {}\n",
            short(commit),
            head_branch.as_deref().unwrap_or("HEAD"),
            plan.message.lines().next().unwrap_or_default()
        ));
        if push {
            let expected = repo.tracking_tip(&remote, &remote_branch);
            if let Err(e) = repo.push_with_lease(&remote, commit, &remote_branch, expected) {
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
            out.push_str(&format!(
                "pushed to {remote}/{remote_branch} (with a lease)\n"
            ));
        }
        out.push_str(&steps(
            &plan,
            oncall.as_ref(),
            &remote,
            &remote_branch,
            push,
        ));
    }
    print_stdout(&out);
    Ok(Exit::Ok)
}

/// What the rollback changes, in words and digests.
fn describe(plan: &Plan, where_to: &str) -> String {
    let from = plan
        .current
        .as_ref()
        .map(|v| format!("release {v}"))
        .unwrap_or_else(|| "pins that match no release".into());
    let to = plan
        .target
        .as_ref()
        .map(|v| format!("release {v}"))
        .unwrap_or_else(|| "pins that match no release".into());
    let how = match &plan.method {
        Method::Revert { commit, subject } => format!("git revert of {} (\"{subject}\")", short(*commit)),
        Method::RestoreVersion => "a forward commit pinning the release's digests (the last overlay change was not a pure promotion)".into(),
        Method::RestoreCommit { commit } => format!("a forward commit restoring the overlay as it was at {}", short(*commit)),
    };
    let mut s = format!(
        "rollback {}: {from} -> {to}\n  how: {how}\n  where: {where_to}\n  overlay: {}\n",
        plan.env, plan.overlay_rel
    );
    let w = plan.deltas.iter().map(|d| d.image.len()).max().unwrap_or(0);
    for d in &plan.deltas {
        s.push_str(&format!(
            "    {:<w$}  {} -> {}\n",
            d.image,
            shown(d.before.as_ref()),
            shown(d.after.as_ref())
        ));
    }
    match (&plan.current, &plan.holds_text) {
        (Some(v), Some(_)) => s.push_str(&format!(
            "  hold: {v} goes on hold in {} (promote refuses it until `rel hold clear {v}`)\n",
            plan.holds_rel
        )),
        _ => s.push_str("  hold: none (the current pins match no release)\n"),
    }
    s
}

/// The steps to re-converge after the rollback, naming the environment's Argo CD Application
/// and Rollouts (rel.toml's `argocd-app`; the rendered overlay) with the exact commands. rel runs
/// none of them: it changed git, Argo CD applies it.
fn steps(
    plan: &Plan,
    oncall: Option<&crate::oncall::OnCall>,
    remote: &str,
    branch: &str,
    pushed: bool,
) -> String {
    let dir = plan
        .overlay_rel
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or(&plan.overlay_rel);
    let mut s = String::from("\nre-converge:\n");
    let mut n = 1;
    if !pushed {
        s.push_str(&format!("  {n}. push it: `git push {remote} HEAD:{branch}` (or merge the pull request); Argo CD only sees what is on {branch}\n"));
        n += 1;
    }
    match oncall {
        Some(o) => {
            let app = &o.app;
            s.push_str(&format!(
                "  {n}. Argo CD ({app}) reconciles {dir} on its next poll (auto-sync); to go now: `argocd app sync {app} --prune`\n"
            ));
            s.push_str(&format!("  {}. watch it converge: `argocd app wait {app} --sync --health --timeout 600`; pods roll one by one (maxUnavailable 0)\n", n + 1));
            n += 2;
            for r in &o.rollouts {
                let t = match &r.namespace {
                    Some(ns) => format!("{} -n {ns}", r.name),
                    None => r.name.clone(),
                };
                let what = match r.strategy {
                    crate::oncall::RolloutStrategy::BlueGreen => format!(
                        "Rollout {}: blue/green, the restored version comes up as the preview and waits for a human: when deploy-gate passed, `kubectl argo rollouts promote {t}`",
                        r.name
                    ),
                    crate::oncall::RolloutStrategy::Canary => format!(
                        "Rollout {}: canary steps with deploy-gate in the background; to skip a pause, `kubectl argo rollouts promote {t}`",
                        r.name
                    ),
                };
                s.push_str(&format!(
                    "  {n}. {what}; watch: `kubectl argo rollouts get rollout {t} --watch`\n"
                ));
                n += 1;
            }
        }
        None => {
            s.push_str(&format!(
                "  {n}. {dir} runs on the local stage: restart it on the restored pins with `rel down --env {0}` then `rel up --env {0} --detach`\n",
                plan.env
            ));
            n += 1;
        }
    }
    s.push_str(&format!(
        "  {n}. check every pod runs the restored digests: `rel gate drift --env {} --live` (or `kubectl get pods -o jsonpath='{{..imageID}}'`)\n",
        plan.env
    ));
    s.push_str("  watch: pods in CrashLoopBackOff or ImagePullBackOff, readiness, error rates; if Argo CD auto-sync is off, the sync is yours to run\n");
    if let (Some(v), Some(_)) = (&plan.current, &plan.holds_text) {
        s.push_str(&format!("  {v} is on hold: fix it and cut a new version, or `rel hold clear {v}` when it is safe again\n"));
    }
    s
}

fn eprint(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn confirm(question: &str) -> Result<bool, Error> {
    eprint(question);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("read the answer", "stdin", e))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// A digest as people read it, or `(none)`.
fn shown(d: Option<&image_ref::Digest>) -> String {
    d.map_or_else(|| "(none)".to_owned(), ToString::to_string)
}
