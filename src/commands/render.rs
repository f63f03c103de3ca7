//! `rel render DIR | --env E [-o DIR]`: the overlay's manifests, exactly as `kubectl kustomize` prints them.

use std::path::{Path, PathBuf};

use crate::cli::RenderArgs;
use crate::commands::{Context, UsageError, print_stdout};
use crate::{Error, Exit};

pub(super) fn run(ctx: &Context, args: RenderArgs) -> Result<Exit, Error> {
    let dir = overlay_dir(ctx, args.dir.as_deref(), args.env.as_deref())?;
    let rendered = crate::ops::render::render(&dir, &ctx.display(&dir))?;
    match &args.output {
        None => print_stdout(&rendered.to_yaml()),
        Some(out) => {
            let out = if out.is_absolute() {
                out.clone()
            } else {
                ctx.cwd.join(out)
            };
            let written = crate::ops::render::write_objects(&rendered, &out)?;
            print_stdout(&format!(
                "wrote {written} objects to {}\n",
                ctx.display(&out)
            ));
        }
    }
    Ok(Exit::Ok)
}

/// The directory to render: `DIR` as given, or the overlay of `--env`.
pub(super) fn overlay_dir(
    ctx: &Context,
    dir: Option<&Path>,
    env: Option<&str>,
) -> Result<PathBuf, Error> {
    match (dir, env) {
        (Some(d), _) => Ok(if d.is_absolute() {
            d.to_path_buf()
        } else {
            ctx.cwd.join(d)
        }),
        (None, Some(env)) => {
            let config = ctx.project()?;
            let e = config.environment(env)?;
            Ok(config.overlay_dir(e))
        }
        (None, None) => Err(UsageError::NothingToRender.into()),
    }
}
