//! Render kustomize overlays natively, byte-identical to `kubectl kustomize` (kustomize v5.5),
//! and edit `images:` pins byte-exact.
//!
//! No CLI, no network, no printing: [`render`] reads a kustomization directory and returns the
//! rendered objects and the YAML stream kubectl would print; [`pin`] edits a kustomization's
//! image pins as text.

mod build;
pub mod error;
mod fieldspec;
pub mod kustomization;
mod loader;
pub mod openapi;
pub mod pin;
mod plugins;
mod resource;
mod transform;
pub mod yaml;

use std::path::Path;

pub use error::{Error, Location, Result};
pub use pin::{Pin, PinError, PinOutcome, pin, unified_diff};
pub use yaml::Value;

/// One rendered object.
#[derive(Debug, Clone)]
pub struct Object {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` ("" when unset).
    pub namespace: String,
    /// The object.
    pub value: Value,
    /// The object as kubectl prints it (one document, no `---`).
    pub yaml: String,
}

/// Something kubectl warns about on standard error while rendering (a deprecated field, vars
/// that were never used). The renderer never prints: the caller shows these, once per `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where: the kustomization and the field's line.
    pub at: Location,
    /// The kustomization field it is about (`commonLabels`, `vars`, ...).
    pub field: String,
    /// kubectl's text for it (e.g. `# Warning: 'commonLabels' is deprecated. ...`).
    pub message: String,
}

/// The result of rendering a kustomization.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The objects, in kubectl's output order.
    pub objects: Vec<Object>,
    /// Warnings, in the order kubectl prints them (one per kustomization that uses a
    /// deprecated field: the same field may repeat across bases).
    pub warnings: Vec<Warning>,
}

impl Rendered {
    /// The warnings with one entry per field (the first occurrence), as a CLI shows them.
    pub fn warnings_once_per_field(&self) -> Vec<&Warning> {
        let mut seen = std::collections::HashSet::new();
        self.warnings
            .iter()
            .filter(|w| seen.insert(w.field.as_str()))
            .collect()
    }
}

impl Rendered {
    /// The YAML stream, byte-identical to `kubectl kustomize DIR`'s standard output.
    pub fn to_yaml(&self) -> String {
        let mut s = String::with_capacity(self.objects.iter().map(|o| o.yaml.len() + 4).sum());
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                s.push_str("---\n");
            }
            s.push_str(&o.yaml);
        }
        s
    }
}

impl Rendered {
    /// The files `kubectl kustomize DIR -o OUT` writes into `OUT`, as (file name, content):
    /// `<group>_<version>_<kind>_<name>.yaml` in lower case, prefixed with `<namespace>_` when
    /// the namespaced objects span more than one namespace (an unset namespace counts as
    /// `default`); cluster-scoped objects are never prefixed.
    ///
    /// Every name is checked by [`output_file_name`]: an object whose kind, name or namespace
    /// is not a single safe path component (empty, `.`, `..`, containing `/`, `\` or NUL) is an
    /// [`Error::UnsafeFileName`], so joining a returned name onto `OUT` never leaves `OUT`.
    pub fn output_files(&self) -> Result<Vec<(String, &str)>> {
        let multi_ns = self.spans_namespaces();
        self.objects
            .iter()
            .map(|o| Ok((output_file_name(o, multi_ns)?, o.yaml.as_str())))
            .collect()
    }

    /// Whether the namespaced objects span more than one namespace (then `kubectl kustomize -o`
    /// prefixes their file names with the namespace).
    pub fn spans_namespaces(&self) -> bool {
        let namespaces: std::collections::HashSet<&str> = self
            .objects
            .iter()
            .filter(|o| !is_cluster_scoped(o))
            .map(namespace_or_default)
            .collect();
        namespaces.len() > 1
    }
}

fn is_cluster_scoped(o: &Object) -> bool {
    resource::Gvk::from_api_version(&o.api_version, &o.kind).is_cluster_scoped()
}

fn namespace_or_default(o: &Object) -> &str {
    if o.namespace.is_empty() {
        "default"
    } else {
        &o.namespace
    }
}

/// Why `part` is not one safe path component, if it is not.
fn unsafe_component(part: &str) -> Option<&'static str> {
    if part.is_empty() {
        Some("it is empty")
    } else if part == "." || part == ".." {
        Some("it is a relative directory reference")
    } else if part.contains('/') || part.contains('\\') {
        Some("it contains a path separator")
    } else if part.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

/// The file name `kubectl kustomize -o DIR` gives `obj` (`multi_ns`: whether the rendered
/// objects span more than one namespace, see [`Rendered::spans_namespaces`]), or
/// [`Error::UnsafeFileName`] when its kind, name, namespace or apiVersion parts would not make
/// a single safe path component.
pub fn output_file_name(obj: &Object, multi_ns: bool) -> Result<String> {
    let unsafe_err = |field: &str, value: &str, reason: &str| Error::UnsafeFileName {
        kind: obj.kind.clone(),
        name: obj.name.clone(),
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let gvk = resource::Gvk::from_api_version(&obj.api_version, &obj.kind);
    for (field, value) in [
        ("kind", obj.kind.as_str()),
        ("metadata.name", obj.name.as_str()),
    ] {
        if let Some(reason) = unsafe_component(value) {
            return Err(unsafe_err(field, value, reason));
        }
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in [gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()] {
        if !p.is_empty() {
            if let Some(reason) = unsafe_component(p) {
                return Err(unsafe_err("apiVersion", &obj.api_version, reason));
            }
            parts.push(p);
        }
    }
    let mut name = format!("{}_{}.yaml", parts.join("_"), obj.name).to_lowercase();
    if !is_cluster_scoped(obj) && multi_ns {
        let ns = namespace_or_default(obj);
        if let Some(reason) = unsafe_component(ns) {
            return Err(unsafe_err("metadata.namespace", ns, reason));
        }
        name = format!("{}_{name}", ns.to_lowercase());
    }
    if let Some(reason) = unsafe_component(&name) {
        return Err(unsafe_err("metadata.name", &obj.name, reason));
    }
    Ok(name)
}

/// Renders the kustomization in `dir` as `kubectl kustomize dir` does.
pub fn render(dir: &Path) -> Result<Rendered> {
    let mut builder = build::Builder::new();
    let (k, acc) = builder.accumulate_dir(dir, None)?;
    let mut resources = acc.resources;
    let acc_config = acc.config;
    let acc_vars = acc.vars;
    // Hash suffixes on generated objects.
    for r in &mut resources.list {
        if r.needs_hash {
            let h = transform::generate::hash(r);
            let name = format!("{}-{h}", r.name());
            r.store_prev_id();
            r.set_name(name);
        }
    }
    transform::nameref::fix(
        &mut resources,
        &acc_config.name_references,
        &Location::file(&k.path),
    )?;
    let mut var_specs = build::builtin_field_specs("varReference");
    for fs in &acc_config.var_reference {
        if !var_specs.contains(fs) {
            var_specs.push(fs.clone());
        }
    }
    let unused = transform::vars::resolve(&mut resources, &acc_vars, &var_specs)?;
    let mut warnings = std::mem::take(&mut builder.warnings);
    if !unused.is_empty() {
        warnings.push(Warning {
            at: Location::file(&k.path),
            field: "vars:unused".into(),
            message: format!(
                "well-defined vars that were never replaced: {}",
                unused.join(",")
            ),
        });
    }
    // Drop local-config objects and empty annotations.
    resources.list.retain(|r| {
        r.value
            .path(&[
                "metadata",
                "annotations",
                "config.kubernetes.io/local-config",
            ])
            .and_then(Value::scalar_text)
            .as_deref()
            != Some("true")
    });
    for r in &mut resources.list {
        if let Some(Value::Map(meta)) = r.value.get_mut("metadata") {
            // kustomize rewrites annotations after removing its internal ones: an empty or
            // null map is dropped (labels are left alone).
            if matches!(meta.get("annotations"), Some(Value::Map(a)) if a.is_empty())
                || meta.get("annotations").is_some_and(Value::is_null)
            {
                meta.remove("annotations");
            }
        }
    }
    if !k.fifo {
        let (first, last) = k
            .legacy_order
            .clone()
            .unwrap_or_else(transform::sort::default_order);
        transform::sort::legacy(&mut resources.list, &first, &last);
    }
    let objects = resources
        .list
        .into_iter()
        .map(|r| {
            let yaml = yaml::to_yaml(&r.value);
            Object {
                api_version: r.value.path_str(&["apiVersion"]).unwrap_or("").to_string(),
                kind: r.kind().to_string(),
                name: r.name().to_string(),
                namespace: r.namespace().to_string(),
                value: r.value,
                yaml,
            }
        })
        .collect();
    Ok(Rendered { objects, warnings })
}
