//! `rel freeze --env E --reason R [--until T]` and `rel unfreeze --env E`.

use crate::cli::{FreezeArgs, ListFormat, UnfreezeArgs};
use crate::commands::{Context, print_stdout};
use crate::ops::freeze::{Change, Done, FreezeOptions, FreezeOutcome, freeze};
use crate::{Error, Exit};

pub(super) fn freeze_run(ctx: &Context, args: FreezeArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let outcome = freeze(
        &ws,
        &FreezeOptions {
            env: args.env,
            change: Change::Freeze {
                reason: args.reason,
                until: args.until,
            },
            dry_run: args.dry_run,
            no_commit: args.no_commit,
        },
    )?;
    emit(&outcome, args.format);
    Ok(Exit::Ok)
}

pub(super) fn unfreeze_run(ctx: &Context, args: UnfreezeArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let outcome = freeze(
        &ws,
        &FreezeOptions {
            env: args.env,
            change: Change::Unfreeze,
            dry_run: args.dry_run,
            no_commit: args.no_commit,
        },
    )?;
    emit(&outcome, args.format);
    Ok(Exit::Ok)
}

fn emit(o: &FreezeOutcome, format: ListFormat) {
    if format == ListFormat::Json {
        print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(o).unwrap_or_default()
        ));
        return;
    }
    let f = &o.freeze;
    let what = match o.action {
        crate::trailers::Action::Unfreeze => format!(
            "unfroze {} (frozen by {} since {}: {})",
            o.env, f.actor, f.since, f.reason
        ),
        _ => format!(
            "froze {}: {} (by {}, since {}, {})",
            o.env,
            f.reason,
            f.actor,
            f.since,
            match &f.until {
                Some(u) => format!("until {u}"),
                None => "until `rel unfreeze`".to_owned(),
            }
        ),
    };
    let short = |c: &Option<String>| c.as_deref().map(|c| c[..12.min(c.len())].to_owned());
    let text = match o.done {
        Done::Committed => format!(
            "{what}\ncommitted {} on {} ({})\n",
            short(&o.commit).unwrap_or_default(),
            o.branch.as_deref().unwrap_or("HEAD"),
            o.file
        ),
        Done::Written => format!("{what}\nwrote {} (not committed: commit it)\n", o.file),
        Done::Unchanged => match o.action {
            crate::trailers::Action::Unfreeze => format!(
                "{} is not frozen: the unfreeze is already committed; nothing to change\n",
                o.env
            ),
            _ => format!("already so: {}; nothing to change\n", f.describe()),
        },
        Done::DryRun => format!(
            "{what}\n--- {}\n{}\n--- commit on {}\n{}\ndry run: nothing was written or committed\n",
            o.file,
            o.text.trim_end(),
            o.branch.as_deref().unwrap_or("HEAD"),
            o.message.trim_end()
        ),
    };
    print_stdout(&text);
}
