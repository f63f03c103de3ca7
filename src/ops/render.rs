//! `render`: an overlay's manifests with the native renderer, as a stream or one file per object.

use std::path::Path;

use crate::Error;

/// Render the kustomization in `dir`; its errors name the file (and line) at fault, with the
/// renderer's own help.
pub fn render(dir: &Path, shown: &str) -> Result<kustomize::Rendered, Error> {
    kustomize::render(dir).map_err(|source| Error::Render {
        dir: if shown.is_empty() { ".".to_owned() } else { shown.to_owned() },
        help: source
            .help()
            .map(str::to_owned)
            .unwrap_or_else(|| "rel renders exactly what `kubectl kustomize` would; fix the kustomization named above".to_owned()),
        source,
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
