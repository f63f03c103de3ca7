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
pub mod pin;
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

impl Object {
    /// Every `image` of an item under a `containers` or `initContainers` key, at any depth, in
    /// document order (what a drift gate compares against the lockfile).
    pub fn container_images(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Map(m) => {
                    for (k, child) in m.iter() {
                        if k == "containers" || k == "initContainers" {
                            if let Value::Seq(items) = child {
                                for item in items {
                                    if let Some(img) = item.get("image").and_then(Value::as_str) {
                                        out.push(img.to_string());
                                    }
                                }
                            }
                        }
                        walk(child, out);
                    }
                }
                Value::Seq(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.value, &mut out);
        out
    }
}

/// The result of rendering a kustomization.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The objects, in kubectl's output order.
    pub objects: Vec<Object>,
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
    pub fn files(&self) -> Vec<(String, &str)> {
        let scoped = |o: &Object| {
            resource::Gvk::from_api_version(&o.api_version, &o.kind).is_cluster_scoped()
        };
        let ns_of = |o: &Object| {
            if o.namespace.is_empty() {
                "default".to_string()
            } else {
                o.namespace.clone()
            }
        };
        let namespaces: std::collections::HashSet<String> = self
            .objects
            .iter()
            .filter(|o| !scoped(o))
            .map(ns_of)
            .collect();
        self.objects
            .iter()
            .map(|o| {
                let gvk = resource::Gvk::from_api_version(&o.api_version, &o.kind);
                let mut parts: Vec<&str> = Vec::new();
                for p in [gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()] {
                    if !p.is_empty() {
                        parts.push(p);
                    }
                }
                let mut name = format!("{}_{}.yaml", parts.join("_"), o.name).to_lowercase();
                if !scoped(o) && namespaces.len() > 1 {
                    name = format!("{}_{name}", ns_of(o).to_lowercase());
                }
                (name, o.yaml.as_str())
            })
            .collect()
    }
}

/// Renders the kustomization in `dir` as `kubectl kustomize dir` does.
pub fn render(dir: &Path) -> Result<Rendered> {
    let mut builder = build::Builder::new();
    let (k, acc) = builder.accumulate_dir(dir, None)?;
    let mut resources = acc.resources;
    let acc_config = acc.config;
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
            if matches!(meta.get("annotations"), Some(Value::Map(a)) if a.is_empty()) {
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
    Ok(Rendered { objects })
}
