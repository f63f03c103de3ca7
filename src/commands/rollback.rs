//! `rel rollback --env E [--to VERSION|COMMIT] [--push] [--open-pr] [--dry-run] [--yes]`:
//! the on-call helper. It says what it will do ([`crate::ops::rollback`] does it), and says how to
//! re-converge.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::RollbackArgs;
use crate::commands::{Context, print_stdout};
use crate::config::ForgeKind;
use crate::git_repo::short;
use crate::ops::rollback::{RollbackEvent, RollbackOptions};
use crate::rollback::{RollbackError, describe, steps};
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: RollbackArgs) -> Result<Exit, Error> {
    let push = args.push || args.open_pr;
    // Refuse early what cannot work, before showing anything.
    if push && !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(RollbackError::NoTerminal.into());
    }
    let ws = crate::ops::Workspace::new(ctx.project()?, ctx.cwd.clone());
    let opts = RollbackOptions {
        env: args.env.clone(),
        to: args.to.clone(),
        push: args.push,
        open_pr: args.open_pr,
        dry_run: args.dry_run,
        yes: args.yes,
    };
    let outcome = crate::ops::rollback::rollback(
        &ws,
        &opts,
        |event| match event {
            RollbackEvent::Planned { plan, where_to } => eprint(&describe(plan, where_to)),
        },
        confirm,
    )?;
    let plan = &outcome.plan;
    let Some(done) = &outcome.done else {
        print_stdout(&format!(
            "{}\n--- diff\n{}\n--- commit\n{}\ndry run: nothing was committed or pushed\n",
            describe(plan, &outcome.where_to),
            kustomize::unified_diff(&plan.old_text, &plan.new_text, &plan.overlay_rel),
            plan.message
        ));
        return Ok(Exit::Ok);
    };
    let (remote, remote_branch) = (&outcome.remote, &outcome.remote_branch);
    let mut out = String::new();
    if args.open_pr {
        out.push_str(&format!(
            "committed {} on branch {} and pushed it to {remote}\n",
            short(done.commit),
            done.branch
        ));
        if let Some((kind, pr)) = &done.pr {
            out.push_str(&format!(
                "{} {} #{}: {}\n",
                if pr.created { "opened" } else { "updated" },
                if *kind == ForgeKind::Gitlab {
                    "merge request"
                } else {
                    "pull request"
                },
                pr.number,
                pr.url
            ));
        }
        out.push_str(&steps(
            plan,
            outcome.oncall.as_ref(),
            remote,
            remote_branch,
            false,
        ));
    } else {
        out.push_str(&format!(
            "committed {} on {}: {}\n",
            short(done.commit),
            done.branch,
            plan.message.lines().next().unwrap_or_default()
        ));
        if done.pushed {
            out.push_str(&format!(
                "pushed to {remote}/{remote_branch} (with a lease)\n"
            ));
        }
        out.push_str(&steps(
            plan,
            outcome.oncall.as_ref(),
            remote,
            remote_branch,
            done.pushed,
        ));
    }
    print_stdout(&out);
    Ok(Exit::Ok)
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
