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

/// One file per object, named as `kubectl kustomize DIR -o OUT` names them. Every name is checked
/// before anything is written: a resource whose name or kind is not one plain path component
/// (`a/../../releases/x`, `..`, an empty name) is refused, naming the resource, and nothing is
/// written.
pub fn write_objects(rendered: &kustomize::Rendered, out: &Path) -> Result<usize, Error> {
    let files = rendered.files();
    for (name, _) in &files {
        check_file_name(name)?;
    }
    for (name, text) in &files {
        let path = out.join(name);
        crate::atomic_write::write(&path, text.as_bytes())
            .map_err(|e| Error::io("write a rendered object", &path, e))?;
    }
    Ok(files.len())
}

/// A rendered object's file name must be exactly one normal path component.
fn check_file_name(name: &str) -> Result<(), Error> {
    use std::path::Component;
    let mut components = Path::new(name).components();
    let single = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    );
    if single && !name.contains(['/', '\\', '\0']) && !name.starts_with('.') {
        return Ok(());
    }
    Err(Error::invalid(
        format!(
            "a rendered object would be written as `{}`, which is not a plain file name",
            name.escape_debug()
        ),
        "a resource's kind, namespace and metadata.name must not contain `/`, `\\` or NUL, or be `.`/`..`; fix the resource's name in the overlay (nothing was written)",
    ))
}
