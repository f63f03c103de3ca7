//! `rel audit`: rel's actions from the commit trailers.

use crate::audit::{Query, parse_since, read, to_table};
use crate::cli::{AuditArgs, ListFormat};
use crate::commands::{Context, print_stdout};
use crate::git_repo::Repo;
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: AuditArgs) -> Result<Exit, Error> {
    let start = match ctx.project() {
        Ok(c) => {
            // An environment rel.toml does not define has no history to show: say so (exit 2)
            // instead of an empty table that reads as "nothing happened".
            if let Some(env) = &args.env {
                c.environment(env)?;
            }
            c.root
        }
        Err(_) => ctx.cwd.clone(),
    };
    let repo = Repo::open(&start)?;
    let from = repo.resolve_commit(&args.rev)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let entries = read(
        &repo,
        from,
        &Query {
            env: args.env.clone(),
            since,
        },
    )?;
    match args.format {
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(&entries).unwrap_or_default();
            s.push('\n');
            print_stdout(&s);
        }
        ListFormat::Table => {
            if entries.is_empty() {
                eprintln_hint("no rel actions found (rel's commits carry Rel-Action trailers)");
            }
            print_stdout(&to_table(&entries));
        }
    }
    Ok(Exit::Ok)
}

fn eprintln_hint(text: &str) {
    crate::commands::progress::say(text);
}
