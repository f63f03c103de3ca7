//! `rel lock --version V`: parse the flags, run [`ops::lock`](crate::ops::lock), show the result.

use crate::cli::LockArgs;
use crate::commands::{Context, print_stdout};
use crate::ops::lock::{LockOptions, Locked};
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: LockArgs) -> Result<Exit, Error> {
    let ws = ctx.workspace()?;
    let opts = LockOptions {
        version: args.version,
        engine_version: args.engine_version,
        from: args.from,
        digests: args.digests,
        built_against: args.built_against,
        force: args.force,
    };
    match crate::ops::lock::lock(&ws, &opts)? {
        Locked::UpToDate { path, lockfile } => {
            print_stdout(&format!(
                "{} is up to date ({} components)\n",
                ctx.display(&path),
                lockfile.components.len()
            ));
        }
        Locked::Wrote { path, lockfile } => {
            let mut out = format!(
                "wrote {}: release {} with {} components\n",
                ctx.display(&path),
                lockfile.version,
                lockfile.components.len()
            );
            for (name, c) in &lockfile.components {
                out.push_str(&format!("  {name:<20} {}\n", c.digest));
            }
            print_stdout(&out);
        }
    }
    Ok(Exit::Ok)
}
