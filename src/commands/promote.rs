//! `rel promote --version V --env E [--from S] [--push] [--open-pr] [--dry-run]`.

use crate::cli::{ListFormat, PromoteArgs};
use crate::commands::{Context, print_stdout};
use crate::config::ForgeKind;
use crate::forge::{self, Proposal};
use crate::git_repo::{Repo, short};
use crate::promote::{BranchUpdate, Request, commit, plan};
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: PromoteArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let repo = Repo::open(&config.root)?;
    let request = Request {
        version: args.version.clone(),
        env: args.env.clone(),
        from: args.from.clone(),
        actor: repo.actor(),
        override_soak: args.reason.clone().filter(|_| args.override_soak),
    };
    let plan = plan(&repo, &config, &request)?;
    if config.trust.is_some() {
        refuse_untrusted(ctx, &config, &args)?;
    }
    let remote = config
        .forge
        .as_ref()
        .and_then(|f| f.remote.clone())
        .unwrap_or_else(|| "origin".to_owned());
    let push = args.push || args.open_pr;

    let mut out = String::new();
    let changed = plan.pin.changes.iter().filter(|c| c.changed()).count();
    out.push_str(&format!(
        "promote {} to {} (from {}): {changed} of {} components change\n",
        plan.version,
        plan.env,
        plan.from_env,
        plan.pin.changes.len()
    ));
    let w = plan
        .pin
        .changes
        .iter()
        .map(|c| c.component.len())
        .max()
        .unwrap_or(0);
    if let Some(s) = &plan.soak {
        match &plan.soak_override {
            Some(reason) => out.push_str(&format!(
                "  soak: {} {} NOT over (eligible {}, in {}): overridden, reason: {reason}\n",
                s.env,
                s.soak,
                s.eligible_at,
                s.remaining()
            )),
            None => out.push_str(&format!(
                "  soak: {} {} over (validated {}, eligible {})\n",
                s.env, s.soak, s.validated_at, s.eligible_at
            )),
        }
    }
    if args.override_soak && plan.soak_override.is_none() {
        out.push_str(&format!(
            "  note: --override-soak was not needed ({}); nothing is recorded as overridden\n",
            if plan.soak.is_some() {
                format!("the soak in {} is over", plan.from_env)
            } else {
                format!("{} has no soak window", plan.from_env)
            }
        ));
    }
    for c in &plan.pin.changes {
        let old = c.old_shown();
        if c.changed() {
            out.push_str(&format!(
                "  {:<w$}  {old} -> {}\n",
                c.component, c.new_digest
            ));
        } else {
            out.push_str(&format!(
                "  {:<w$}  {} (unchanged)\n",
                c.component, c.new_digest
            ));
        }
    }
    for u in &plan.pin.unmatched {
        out.push_str(&format!(
            "  note: {} pins {u}, which is not part of release {}; left as it is\n",
            plan.overlay_rel, plan.version
        ));
    }
    if plan.is_noop() {
        out.push_str(&format!(
            "{} already pins release {}: nothing to promote\n",
            plan.env, plan.version
        ));
        emit(&args, &out, &plan, None, false, None);
        return Ok(Exit::Ok);
    }

    // Everything that can fail before the commit is checked before the commit.
    let forge_target = if args.open_pr || args.dry_run {
        let t = forge::detect(repo.remote_url(&remote).as_deref(), config.forge.as_ref());
        if args.open_pr { Some(t?) } else { t.ok() }
    } else {
        None
    };
    let token = match (&forge_target, args.open_pr && !args.dry_run) {
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
        match crate::diff::promotion_markdown(&config, &plan, room) {
            Ok(md) => {
                body.push_str("\n\n");
                body.push_str(&md);
            }
            Err(e) => tracing::warn!("the rendered diff is left out of the pull request: {e}"),
        }
    }

    if args.dry_run {
        out.push_str("\n--- diff\n");
        out.push_str(&kustomize::unified_diff(
            &plan.pin.old_text,
            &plan.pin.new_text,
            &plan.overlay_rel,
        ));
        out.push_str(&format!(
            "\n--- commit on branch {} (from {})\n{}",
            plan.branch,
            short(plan.base),
            plan.message
        ));
        out.push_str(&format!(
            "\n--- pull request ({}: {} into {})\n{}\n\n{}",
            kind.name(),
            plan.branch,
            forge_target
                .as_ref()
                .map(|t| t.base.as_str())
                .unwrap_or("main"),
            plan.title(),
            body
        ));
        out.push_str("\ndry run: nothing was committed, pushed or opened\n");
        emit(&args, &out, &plan, None, false, None);
        return Ok(Exit::Ok);
    }

    let (oid, update) = commit(&repo, &plan)?;
    out.push_str(&format!(
        "{} {} on branch {} (your checkout is untouched)\n",
        match update {
            BranchUpdate::Created => "committed".to_owned(),
            BranchUpdate::Reused => "reusing".to_owned(),
            BranchUpdate::Replaced(old) =>
                format!("rebuilt on the current base (was {})", short(old)),
        },
        short(oid),
        plan.branch
    ));
    if push {
        let expected = repo.tracking_tip(&remote, &plan.branch);
        match repo.push_with_lease(&remote, oid, &plan.branch, expected) {
            Ok(_) => out.push_str(&format!(
                "pushed {} to {remote} (with a lease)\n",
                plan.branch
            )),
            Err(e) => {
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
    }
    let mut pr = None;
    if let (Some(target), Some(token)) = (&forge_target, &token) {
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
        out.push_str(&format!(
            "{} {} #{}: {}\n",
            if opened.created { "opened" } else { "updated" },
            if target.kind == ForgeKind::Gitlab {
                "merge request"
            } else {
                "pull request"
            },
            opened.number,
            opened.url
        ));
        pr = Some(opened);
    }
    if !push {
        out.push_str(&format!("next: push it and open the pull request with `rel promote --version {} --env {} --open-pr`\n", plan.version, plan.env));
    }
    emit(&args, &out, &plan, Some(oid), push, pr);
    Ok(Exit::Ok)
}

fn emit(
    args: &PromoteArgs,
    text: &str,
    plan: &crate::promote::Plan,
    commit: Option<git2::Oid>,
    pushed: bool,
    pr: Option<forge::PullRequest>,
) {
    match args.format {
        ListFormat::Table => print_stdout(text),
        ListFormat::Json => {
            let doc = serde_json::json!({
                "version": plan.version.to_string(),
                "env": plan.env,
                "from": plan.from_env,
                "branch": plan.branch,
                "base": plan.base.to_string(),
                "commit": commit.map(|c| c.to_string()),
                "dryRun": args.dry_run,
                "pushed": pushed,
                "pullRequest": pr,
                "previousVersion": plan.previous.as_ref().map(|p| p.version.to_string()),
                "changes": plan.pin.changes,
                "soak": plan.soak,
                "soakOverride": plan.soak_override,
            });
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
    }
}

/// With `[trust]` configured, promotion runs `verify` for the target environment first and
/// refuses a release that is unsigned or does not match, naming each failed check.
fn refuse_untrusted(
    ctx: &Context,
    config: &crate::config::Config,
    args: &PromoteArgs,
) -> Result<(), Error> {
    let ws = crate::ops::Workspace::new(config.clone(), ctx.cwd.clone());
    let report = crate::ops::verify::verify(
        &ws,
        &crate::ops::verify::VerifyOptions {
            version: args.version.clone(),
            env: Some(args.env.clone()),
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
    Err(Error::refused(
        format!(
            "release {} is not trusted for {} ([trust] in rel.toml):\n{}",
            args.version,
            args.env,
            failed.join("\n")
        ),
        format!(
            "sign the release with a trusted key (REL_SIGNING_KEY=... `rel build --push`, `rel lock`, `rel record`), then check it with `rel verify --version {} --env {}`",
            args.version, args.env
        ),
    ))
}
