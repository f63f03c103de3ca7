//! `rel status`: what each environment's overlay pins, and which release that is.

use crate::cli::{ListFormat, StatusArgs};
use crate::commands::{Context, print_stdout};
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: StatusArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let statuses = crate::status::status(&config)?;
    match args.format {
        ListFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&statuses).unwrap_or_default()
        )),
        ListFormat::Table => print_stdout(&crate::status::to_table(&statuses)),
    }
    Ok(Exit::Ok)
}
