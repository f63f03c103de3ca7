//! `render`: an overlay's manifests with the native renderer, as a stream or one file per object.

use std::path::Path;

use crate::Error;

/// Render the kustomization in `dir`; its errors name the file (and line) at fault, with the
/// renderer's own help.
pub(crate) fn render(dir: &Path, shown: &str) -> Result<kustomize::Rendered, Error> {
    let rendered = kustomize::render(dir).map_err(|source| Error::Render {
        dir: if shown.is_empty() {
            ".".to_owned()
        } else {
            shown.to_owned()
        },
        source,
    })?;
    // kubectl's deprecation warnings, once per field, on stderr (through the log: ops do not
    // print).
    for w in rendered.warnings_once_per_field() {
        tracing::warn!("{}", w.message);
    }
    Ok(rendered)
}

/// One file per object, named as `kubectl kustomize DIR -o OUT` names them. Every name is checked
/// before anything is written (`Rendered::output_files`): a resource whose name, kind or namespace
/// is not one plain path component (`a/../../releases/x`, `..`, an empty name) is refused, naming
/// the resource, and nothing is written.
pub(crate) fn write_objects(rendered: &kustomize::Rendered, out: &Path) -> Result<usize, Error> {
    let files = rendered.output_files().map_err(|source| Error::Render {
        dir: out.display().to_string(),
        source,
    })?;
    for (name, text) in &files {
        let path = out.join(name);
        crate::atomic_write::write(&path, text.as_bytes())
            .map_err(|e| Error::io("write a rendered object", &path, e))?;
    }
    Ok(files.len())
}
