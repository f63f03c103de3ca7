//! `rel release`: parse the flags, run [`ops::release`](crate::ops::release), show the steps and
//! the summary.

use std::io::IsTerminal;

use crate::cli::{GateOutput, ReleaseArgs};
use crate::commands::{Context, emit_report, print_stdout};
use crate::ops::release::{ReleaseEvent, ReleaseOptions, ReleaseOutcome};
use crate::report::Format;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: ReleaseArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let opts = ReleaseOptions {
        version: args.version,
        env: args.env,
        registry: args.registry.options(),
    };
    let mut show = crate::commands::build::ShowBuild::new();
    let outcome = crate::ops::release::release(&ws, &opts, |e| match e {
        ReleaseEvent::Step { n, total, what } => show.line(&format!("[{n}/{total}] {what}")),
        ReleaseEvent::Build(e) => show.event(e),
    })?;
    drop(show);
    let format = if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Plain
    };
    if emit_report(
        &outcome.coherence,
        &GateOutput {
            format,
            junit: None,
        },
    )? != Exit::Ok
    {
        return Ok(Exit::Failed);
    }
    print_stdout(&summary(ctx, &outcome));
    Ok(Exit::Ok)
}

fn summary(ctx: &Context, outcome: &ReleaseOutcome) -> String {
    let lockfile = outcome.locked.lockfile();
    let env = &outcome.env;
    let mut s = format!(
        "\nrelease {} is locked in {}\n",
        lockfile.version,
        ctx.display(outcome.locked.path())
    );
    for c in &outcome.build.output.components {
        s.push_str(&format!(
            "  {:<12} {}@{}  ({})\n",
            c.component,
            c.image,
            c.digest,
            c.published.as_deref().unwrap_or("")
        ));
    }
    if let Some(pinned) = &outcome.pinned {
        let overlay_shown = ctx.display(&pinned.plan.file);
        let changed = pinned.plan.changes.iter().filter(|c| c.changed()).count();
        if changed == 0 {
            s.push_str(&format!("{overlay_shown} already pinned these digests\n"));
        } else {
            s.push_str(&format!(
                "{overlay_shown}: {changed} pins changed (review with `git diff {overlay_shown}`)\n"
            ));
        }
        s.push_str(&format!(
            "rendered {} objects of {env} into {}\n",
            pinned.rendered_objects,
            ctx.display(&pinned.out_dir)
        ));
    }
    s.push_str(&format!(
        "\nnext: commit the lockfile and the overlay; Argo CD syncs {env}; then `rel gate smoke --env {env} --profile deep`, `rel record`, `rel promote --version {}`\n",
        lockfile.version
    ));
    s
}
