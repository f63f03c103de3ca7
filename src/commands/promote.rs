//! `rel promote --version V --env E [--from S] [--push] [--open-pr] [--dry-run]`: flags →
//! [`crate::ops::promote`] → the plan and what was done, as text or JSON.

use crate::cli::{ListFormat, PromoteArgs};
use crate::commands::{Context, print_stdout};
use crate::config::ForgeKind;
use crate::forge;
use crate::git_repo::short;
use crate::ops::promote::{PromoteOptions, PromoteOutcome, Promoted};
use crate::promote::BranchUpdate;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: PromoteArgs) -> Result<Exit, Error> {
    let ws = crate::ops::Workspace::new(ctx.project()?, ctx.cwd.clone());
    let opts = PromoteOptions {
        version: args.version.clone(),
        env: args.env.clone(),
        from: args.from.clone(),
        override_soak: args.reason.clone().filter(|_| args.override_soak),
        push: args.push,
        open_pr: args.open_pr,
        dry_run: args.dry_run,
    };
    let outcome = crate::ops::promote::promote(&ws, &opts)?;
    let text = render(&args, &outcome);
    let PromoteOutcome { plan, done } = outcome;
    match done {
        Promoted::Noop | Promoted::DryRun { .. } => emit(&args, &text, &plan, None, false, None),
        Promoted::Committed {
            commit, pushed, pr, ..
        } => emit(
            &args,
            &text,
            &plan,
            Some(commit),
            pushed,
            pr.map(|(_, pr)| pr),
        ),
    }
    Ok(Exit::Ok)
}

/// The plan and what was done, as people read it.
fn render(args: &PromoteArgs, outcome: &PromoteOutcome) -> String {
    let plan = &outcome.plan;
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
    match &outcome.done {
        Promoted::Noop => out.push_str(&format!(
            "{} already pins release {}: nothing to promote\n",
            plan.env, plan.version
        )),
        Promoted::DryRun { pr } => {
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
                pr.kind.name(),
                plan.branch,
                pr.base,
                pr.title,
                pr.body
            ));
            out.push_str("\ndry run: nothing was committed, pushed or opened\n");
        }
        Promoted::Committed {
            commit,
            update,
            remote,
            pushed,
            pr,
        } => {
            out.push_str(&format!(
                "{} {} on branch {} (your checkout is untouched)\n",
                match update {
                    BranchUpdate::Created => "committed".to_owned(),
                    BranchUpdate::Reused => "reusing".to_owned(),
                    BranchUpdate::Replaced(old) =>
                        format!("rebuilt on the current base (was {})", short(*old)),
                },
                short(*commit),
                plan.branch
            ));
            if *pushed {
                out.push_str(&format!(
                    "pushed {} to {remote} (with a lease)\n",
                    plan.branch
                ));
            }
            if let Some((kind, opened)) = pr {
                out.push_str(&format!(
                    "{} {} #{}: {}\n",
                    if opened.created { "opened" } else { "updated" },
                    if *kind == ForgeKind::Gitlab {
                        "merge request"
                    } else {
                        "pull request"
                    },
                    opened.number,
                    opened.url
                ));
            }
            if !*pushed {
                out.push_str(&format!("next: push it and open the pull request with `rel promote --version {} --env {} --open-pr`\n", plan.version, plan.env));
            }
        }
    }
    out
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
