//! `rel record --version V --env E --evidence FILE`: run [`ops::record`](crate::ops::record).

use crate::cli::RecordArgs;
use crate::commands::{Context, print_stdout};
use crate::ops::record::RecordOptions;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: RecordArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let (args_version, args_env) = (args.version.clone(), args.env.clone());
    let outcome = crate::ops::record::record(
        &ws,
        &RecordOptions {
            version: args.version,
            env: args.env,
            evidence: args.evidence,
            no_commit: args.no_commit,
        },
    )?;
    print_stdout(&outcome.message);
    // With a soak window, say when the version may move on.
    let env = ws.config.environment(&args_env)?;
    if let (Some(window), Some(next)) = (env.soak, &env.promotes_to)
        && let Some(record) =
            crate::record::ValidationRecord::load(ws.root(), &args_version, &env.name)?
    {
        let soak = crate::soak::Soak::of(
            &record,
            &ws.display(&outcome.record_path),
            window,
            crate::clock::now()?,
        )?;
        print_stdout(&format!(
            "soak {}: {} may be promoted to {next} from {}{}\n",
            soak.soak,
            soak.version,
            soak.eligible_at,
            if soak.eligible {
                String::new()
            } else {
                format!(" (in {})", soak.remaining())
            }
        ));
    }
    Ok(Exit::Ok)
}
