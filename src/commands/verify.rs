//! `rel verify --version V [--env E]`: run [`ops::verify`](crate::ops::verify), emit its report.

use crate::cli::VerifyArgs;
use crate::commands::{Context, emit_report};
use crate::ops::verify::VerifyOptions;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: VerifyArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let report = crate::ops::verify::verify(
        &ws,
        &VerifyOptions {
            version: args.version,
            env: args.env,
            insecure_registries: args.insecure_registries,
        },
    )?;
    emit_report(&report, &args.output)
}
