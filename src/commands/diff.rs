//! `rel diff --env E --version V` (or `--from V1 --to V2`, `--rev GIT_REV`): what a pin or a
//! promotion changes in the rendered manifests. Exit 0 no change, 1 changes, 2 error.

use std::io::IsTerminal;

use crate::cli::{DiffArgs, DiffFormat};
use crate::commands::{Context, UsageError, print_stdout};
use crate::diff::DiffOptions;
use crate::{Error, Exit, env_vars};

pub(super) fn run(ctx: &Context, args: DiffArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let opts = DiffOptions {
        env: args.env,
        version: args.version.or(args.to),
        from: args.from,
        rev: args.rev,
    };
    let outcome = crate::diff::diff(&config, &opts)?;
    let text = match args.format {
        DiffFormat::Json => {
            let mut s = serde_json::to_string_pretty(&outcome).map_err(UsageError::DiffJson)?;
            s.push('\n');
            s
        }
        DiffFormat::Markdown => outcome.to_markdown(args.budget),
        DiffFormat::Text => outcome.to_text(false),
        DiffFormat::Auto => {
            outcome.to_text(std::io::stdout().is_terminal() && !env_vars::no_color())
        }
    };
    print_stdout(&text);
    Ok(if outcome.has_changes() {
        Exit::Failed
    } else {
        Exit::Ok
    })
}
