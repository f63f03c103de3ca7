//! Resources, their ids, and the ordered, indexed collection transformers work on.

use std::fmt;

use crate::yaml::{Map, Value};

/// Group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Gvk {
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Parses `apiVersion` and `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }
    /// `apiVersion` text.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// Whether objects of this type live outside namespaces: kustomize's precomputed table of
    /// the built-in cluster-scoped types (`builtin/cluster_scoped.txt`), by apiVersion and
    /// kind; unknown types (CRDs, newer versions such as `flowcontrol.apiserver.k8s.io/v1`) are
    /// namespaced.
    pub fn is_cluster_scoped(&self) -> bool {
        type Table = std::collections::HashMap<String, Vec<(String, String)>>;
        static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| {
            let mut t = Table::new();
            for l in include_str!("builtin/cluster_scoped.txt").lines() {
                if l.starts_with('#') {
                    continue;
                }
                if let Some((av, kind)) = l.split_once(' ') {
                    let g = Gvk::from_api_version(av, kind.trim());
                    t.entry(g.kind).or_default().push((g.group, g.version));
                }
            }
            t
        });
        table.get(&self.kind).is_some_and(|v| {
            v.iter()
                .any(|(g, ver)| *g == self.group && *ver == self.version)
        })
    }
}

/// A resource id: GVK, name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResId {
    /// GVK.
    pub gvk: Gvk,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace ("" when unset).
    pub namespace: String,
}

impl ResId {
    /// The namespace with "" read as "default" for namespaced kinds (kustomize's
    /// `EffectiveNamespace`).
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }
    /// Key for hashing where "" and "default" namespaces are the same.
    pub fn key(&self) -> (Gvk, String, String) {
        let ns = if self.namespace == "default" {
            String::new()
        } else {
            self.namespace.clone()
        };
        (self.gvk.clone(), self.name.clone(), ns)
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = if self.gvk.group.is_empty() {
            "[noGrp]"
        } else {
            &self.gvk.group
        };
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        write!(
            f,
            "{}.{}.{}/{}.{}",
            self.gvk.kind, self.gvk.version, g, self.name, ns
        )
    }
}

/// How a generated object combines with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// A new object.
    Create,
    /// Merge into an existing object.
    Merge,
    /// Replace an existing object.
    Replace,
}

/// A resource and kustomize's bookkeeping about it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The object.
    pub value: Value,
    /// Ids it had before renames (kustomize's previousNames annotations).
    pub prev_ids: Vec<ResId>,
    /// Its id when it was loaded or generated.
    pub org_id: ResId,
    /// Name prefixes applied, outermost last.
    pub prefixes: Vec<String>,
    /// Name suffixes applied, outermost last.
    pub suffixes: Vec<String>,
    /// A generated object whose name gets the content hash at the end.
    pub needs_hash: bool,
    /// Generated at all.
    pub generated: bool,
    /// Names of the `vars` whose object reference matched this resource (kustomize's
    /// `refVarNames`).
    pub ref_var_names: Vec<String>,
}

impl Resource {
    /// Wraps a parsed object.
    pub fn new(value: Value) -> Self {
        let mut r = Resource {
            value,
            prev_ids: Vec::new(),
            org_id: ResId::default(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            generated: false,
            ref_var_names: Vec::new(),
        };
        r.org_id = r.cur_id();
        r
    }
    /// The object's fields, mutably.
    pub fn map_mut(&mut self) -> &mut Map {
        self.value.as_map_mut().expect("resources are mappings")
    }
    /// GVK.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(
            self.value.path_str(&["apiVersion"]).unwrap_or(""),
            self.value.path_str(&["kind"]).unwrap_or(""),
        )
    }
    /// Kind.
    pub fn kind(&self) -> &str {
        self.value.path_str(&["kind"]).unwrap_or("")
    }
    /// metadata.name.
    pub fn name(&self) -> &str {
        self.value.path_str(&["metadata", "name"]).unwrap_or("")
    }
    /// metadata.namespace.
    pub fn namespace(&self) -> &str {
        self.value
            .path_str(&["metadata", "namespace"])
            .unwrap_or("")
    }
    /// The current id.
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_string(),
            namespace: self.namespace().to_string(),
        }
    }
    /// Whether `id` is the current id or an earlier one.
    pub fn has_any_id(&self, id: &ResId) -> bool {
        let k = id.key();
        self.cur_id().key() == k || self.prev_ids.iter().any(|p| p.key() == k)
    }
    /// Records the current id before a change of name or namespace.
    pub fn store_prev_id(&mut self) {
        let id = self.cur_id();
        self.prev_ids.push(id);
    }
    /// Sets metadata.name.
    pub fn set_name(&mut self, name: String) {
        self.map_mut()
            .entry_map("metadata")
            .insert("name", Value::Str(name));
    }
    /// metadata.labels as pairs.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.meta_pairs("labels")
    }
    /// metadata.annotations as pairs.
    pub fn annotations(&self) -> Vec<(String, String)> {
        self.meta_pairs("annotations")
    }
    fn meta_pairs(&self, field: &str) -> Vec<(String, String)> {
        match self.value.path(&["metadata", field]) {
            Some(Value::Map(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.scalar_text()?)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Resources in order, with an index by current id.
#[derive(Debug, Default, Clone)]
pub struct ResMap {
    /// The resources, in accumulation order.
    pub list: Vec<Resource>,
}

impl ResMap {
    /// Positions of resources whose current or earlier id is `id`.
    pub fn find_by_any_id(&self, id: &ResId) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].has_any_id(id))
            .collect()
    }
}
