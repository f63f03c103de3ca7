//! `rel render DIR | --env E [-o DIR]`: the overlay's manifests, exactly as `kubectl kustomize` prints them.

use std::path::{Path, PathBuf};

use crate::cli::RenderArgs;
use crate::commands::{Context, print_stdout};
use crate::{Error, Exit};

pub fn run(ctx: &Context, args: RenderArgs) -> Result<Exit, Error> {
    let dir = overlay_dir(ctx, args.dir.as_deref(), args.env.as_deref())?;
    let rendered = render(ctx, &dir)?;
    match &args.output {
        None => print_stdout(&rendered.to_yaml()),
        Some(out) => {
            let out = if out.is_absolute() {
                out.clone()
            } else {
                ctx.cwd.join(out)
            };
            let written = write_objects(&rendered, &out)?;
            print_stdout(&format!(
                "wrote {written} objects to {}\n",
                ctx.display(&out)
            ));
        }
    }
    Ok(Exit::Ok)
}

/// The directory to render: `DIR` as given, or the overlay of `--env`.
pub fn overlay_dir(ctx: &Context, dir: Option<&Path>, env: Option<&str>) -> Result<PathBuf, Error> {
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
        (None, None) => Err(Error::usage(
            "nothing to render",
            "pass a kustomization directory or --env ENV",
        )),
    }
}

/// Render with the native renderer; its errors name the file (and line) at fault.
pub fn render(ctx: &Context, dir: &Path) -> Result<kustomize::Rendered, Error> {
    kustomize::render(dir).map_err(|e| {
        Error::invalid(
            format!("cannot render {}: {e}", ctx.display(dir)),
            "rel renders exactly what `kubectl kustomize` would; fix the kustomization named above",
        )
    })
}

/// One file per object, named as `kubectl kustomize DIR -o OUT` names them.
pub fn write_objects(rendered: &kustomize::Rendered, out: &Path) -> Result<usize, Error> {
    let files = rendered.files();
    for (name, text) in &files {
        let path = out.join(name);
        crate::atomic_write::write(&path, text.as_bytes())
            .map_err(|e| Error::io("write a rendered object", &path, e))?;
    }
    Ok(files.len())
}
