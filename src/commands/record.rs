//! `rel record --version V --env E --evidence FILE`: run [`ops::record`](crate::ops::record).

use crate::cli::RecordArgs;
use crate::commands::{Context, print_stdout};
use crate::ops::record::RecordOptions;
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: RecordArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
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
    Ok(Exit::Ok)
}
