//! Semantic, per-object diffs of rendered Kubernetes manifests.
//!
//! [`diff`] takes two renders (for instance an overlay before and after pinning a release) and
//! returns, per object keyed by group/kind/namespace/name, whether it was added, removed or
//! changed, and for a changed object its changed fields, image fields first. What is noise is
//! normalised away first (see [`normalize`]); secret values are replaced by keyed fingerprints
//! (see [`mask`]) before anything is compared, so no result of this crate can carry one.
//! [`render`] turns a result into unified-style text or a size-bounded Markdown section.
//!
//! No CLI, no printing, no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub mod mask;
pub mod normalize;
pub mod render;

pub use mask::{Fingerprint, Masker};
pub use normalize::Node;
pub use render::{ImageMove, View};

/// What can go wrong.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DiffError {
    #[error("the {side} manifests hold {key} twice")]
    #[diagnostic(
        code(manifest_diff::duplicate_object),
        help(
            "every object must be unique by kind, namespace and name; fix the overlay that renders it twice"
        )
    )]
    DuplicateObject { side: Side, key: Box<ObjectKey> },

    #[error("an object of the {side} manifests has no {what}")]
    #[diagnostic(
        code(manifest_diff::no_identity),
        help(
            "every rendered object needs `kind` and `metadata.name`; check the overlay's resources"
        )
    )]
    NoIdentity { side: Side, what: &'static str },

    #[error("{origin}: invalid YAML: {message}")]
    #[diagnostic(
        code(manifest_diff::yaml),
        help("pass a multi-document YAML stream, such as the output of `kubectl kustomize DIR`")
    )]
    Yaml { origin: String, message: String },

    #[error("cannot draw a random key for the secret fingerprints: {reason}")]
    #[diagnostic(
        code(manifest_diff::random),
        help(
            "the operating system's random source is unavailable; pass a key with Masker::with_key"
        )
    )]
    Random { reason: String },
}

/// Which render an object came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Old,
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Old => "old",
            Side::New => "new",
        })
    }
}

/// An object's identity. A generated ConfigMap or Secret (name ending in kustomize's content
/// hash) is keyed by its name stem with `-<hash>`, so a changed generator shows as a change of
/// one object rather than a removal and an addition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectKey {
    /// API group (`""` for the core group).
    pub group: String,
    pub kind: String,
    /// `""` when unset (cluster-scoped or defaulted).
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// How an object changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One changed field of an object. `old`/`new` are `None` when the field is absent on that side.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldChange {
    /// `spec.template.spec.containers[api].env[LOG_LEVEL].value`
    pub path: String,
    pub old: Option<Node>,
    pub new: Option<Node>,
}

/// A container image that changes (or appears, or goes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChange {
    pub path: String,
    pub container: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl ImageChange {
    /// The image name without tag or digest (of the new image, else the old).
    pub fn name(&self) -> &str {
        image_name(self.new.as_deref().or(self.old.as_deref()).unwrap_or(""))
    }
}

/// The repository part of an image reference (no `:tag`, no `@digest`).
pub fn image_name(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// One object that differs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectDiff {
    pub key: ObjectKey,
    pub change: Change,
    /// Container images that change, in path order (every image, for added or removed objects).
    pub images: Vec<ImageChange>,
    /// The other changed fields (for a changed object), in path order.
    pub fields: Vec<FieldChange>,
    /// The whole normalised object, for an added or removed one (secrets masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Node>,
}

/// The difference between two renders.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ManifestDiff {
    /// Objects that differ, sorted by kind, namespace and name.
    pub objects: Vec<ObjectDiff>,
    /// How many objects are the same on both sides.
    pub unchanged: usize,
}

impl ManifestDiff {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn count(&self, change: Change) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// The characters of kustomize's content-hash suffix (hex digits with 0, 1, 3, a, e remapped).
const HASH_ALPHABET: &str = "2456789bcdfghkmt";

/// `foo` of `foo-<10 hash characters>`, the name kustomize gives a generated ConfigMap or Secret.
pub fn generated_stem(name: &str) -> Option<&str> {
    let (stem, hash) = name.rsplit_once('-')?;
    (!stem.is_empty() && hash.len() == 10 && hash.chars().all(|c| HASH_ALPHABET.contains(c)))
        .then_some(stem)
}

/// The objects of a multi-document YAML stream (e.g. saved `kubectl kustomize` output).
pub fn objects_from_yaml(text: &str, origin: &str) -> Result<Vec<kustomize::Object>, DiffError> {
    let docs = kustomize::yaml::parse_documents(text).map_err(|e| DiffError::Yaml {
        origin: origin.to_owned(),
        message: format!("line {}: {}", e.line, e.message),
    })?;
    Ok(docs
        .into_iter()
        .filter(|d| {
            !matches!(
                d.value,
                kustomize::Value::Null | kustomize::Value::EmptyNull
            )
        })
        .map(|d| {
            let v = d.value;
            let s = |path: &[&str]| v.path_str(path).unwrap_or("").to_owned();
            kustomize::Object {
                api_version: s(&["apiVersion"]),
                kind: s(&["kind"]),
                name: s(&["metadata", "name"]),
                namespace: s(&["metadata", "namespace"]),
                yaml: kustomize::yaml::to_yaml(&v),
                value: v,
            }
        })
        .collect())
}

struct Prepared<'a> {
    objects: BTreeMap<ObjectKey, &'a kustomize::Object>,
}

fn prepare<'a>(side: Side, objects: &'a [kustomize::Object]) -> Result<Prepared<'a>, DiffError> {
    // How many generated-looking objects share a stem: pair by stem only when it is unique.
    let mut stems: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for o in objects {
        if let Some(stem) = generated_stem(&o.name).filter(|_| is_generated_kind(&o.kind)) {
            *stems.entry((&o.kind, &o.namespace, stem)).or_default() += 1;
        }
    }
    let mut out = BTreeMap::new();
    for o in objects {
        if o.kind.is_empty() {
            return Err(DiffError::NoIdentity { side, what: "kind" });
        }
        if o.name.is_empty() {
            return Err(DiffError::NoIdentity {
                side,
                what: "metadata.name",
            });
        }
        let name = match generated_stem(&o.name).filter(|_| is_generated_kind(&o.kind)) {
            Some(stem) if stems.get(&(&o.kind[..], &o.namespace[..], stem)) == Some(&1) => {
                format!("{stem}-<hash>")
            }
            _ => o.name.clone(),
        };
        let key = ObjectKey {
            group: o
                .api_version
                .rsplit_once('/')
                .map(|(g, _)| g.to_owned())
                .unwrap_or_default(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name,
        };
        if out.insert(key.clone(), o).is_some() {
            return Err(DiffError::DuplicateObject {
                side,
                key: Box::new(key),
            });
        }
    }
    Ok(Prepared { objects: out })
}

fn is_generated_kind(kind: &str) -> bool {
    kind == "ConfigMap" || kind == "Secret"
}

/// Compare two renders. Objects whose rendered YAML is byte-identical are skipped without
/// normalising them (a promotion changes few objects of many).
pub fn diff(
    old: &[kustomize::Object],
    new: &[kustomize::Object],
    masker: &Masker,
) -> Result<ManifestDiff, DiffError> {
    let old = prepare(Side::Old, old)?;
    let new = prepare(Side::New, new)?;
    // Generated Secrets' names end in a hash of their content: mask them wherever they appear.
    let mut masking = normalize::Masking {
        masker,
        renames: HashMap::new(),
        values: std::collections::HashSet::new(),
    };
    for o in old.objects.values().chain(new.objects.values()) {
        if o.kind != "Secret" {
            continue;
        }
        normalize::secret_values(&o.value, &mut masking.values);
        if let Some(stem) = generated_stem(&o.name) {
            let fp = masker.fingerprint("metadata.name", stem, &o.name);
            masking
                .renames
                .insert(o.name.clone(), format!("{stem}-<hash:{fp}>"));
        }
    }
    let norm = |o: &kustomize::Object| normalize::object(&o.kind, &o.value, &masking);
    let mut result = ManifestDiff::default();
    for (key, o) in &old.objects {
        match new.objects.get(key) {
            Some(n) if n.yaml == o.yaml => result.unchanged += 1,
            Some(n) => {
                let (a, b) = (norm(o), norm(n));
                let mut changes = Vec::new();
                compare(&mut Vec::new(), Some(&a), Some(&b), &mut changes);
                if changes.is_empty() {
                    result.unchanged += 1;
                    continue;
                }
                let (images, fields) = split_images(changes);
                result.objects.push(ObjectDiff {
                    key: key.clone(),
                    change: Change::Changed,
                    images,
                    fields,
                    body: None,
                });
            }
            None => result.objects.push(whole(key, Change::Removed, norm(o))),
        }
    }
    for (key, n) in &new.objects {
        if !old.objects.contains_key(key) {
            result.objects.push(whole(key, Change::Added, norm(n)));
        }
    }
    result.objects.sort_by(|a, b| {
        let k = |o: &ObjectDiff| {
            (
                o.key.kind.clone(),
                o.key.namespace.clone(),
                o.key.name.clone(),
            )
        };
        k(a).cmp(&k(b)).then_with(|| a.key.group.cmp(&b.key.group))
    });
    Ok(result)
}

fn whole(key: &ObjectKey, change: Change, body: Node) -> ObjectDiff {
    let mut changes = Vec::new();
    let (a, b) = match change {
        Change::Added => (None, Some(&body)),
        _ => (Some(&body), None),
    };
    compare(&mut Vec::new(), a, b, &mut changes);
    // Only the images: the body is shown whole.
    let (images, _) = split_images(expand(changes));
    ObjectDiff {
        key: key.clone(),
        change,
        images,
        fields: Vec::new(),
        body: Some(body),
    }
}

/// One step of a field path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    /// An item of a keyed list: the list's field is the previous `Key`.
    Item(String),
    Index(usize),
}

struct RawChange {
    path: Vec<Seg>,
    old: Option<Node>,
    new: Option<Node>,
}

fn compare(path: &mut Vec<Seg>, old: Option<&Node>, new: Option<&Node>, out: &mut Vec<RawChange>) {
    match (old, new) {
        (Some(Node::Map(a)), Some(Node::Map(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                path.push(Seg::Key(k.clone()));
                compare(path, a.get(k), b.get(k), out);
                path.pop();
            }
        }
        (Some(Node::Keyed { key: ka, items: a }), Some(Node::Keyed { key: kb, items: b }))
            if ka == kb =>
        {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                path.push(Seg::Item(k.clone()));
                compare(path, a.get(k), b.get(k), out);
                path.pop();
            }
        }
        (Some(Node::Seq(a)), Some(Node::Seq(b)))
            if a.len() == b.len() && a.iter().chain(b).all(|n| !n.is_scalar()) =>
        {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(Seg::Index(i));
                compare(path, Some(x), Some(y), out);
                path.pop();
            }
        }
        (Some(a), Some(b)) if a.same(b) => {}
        (None, None) => {}
        (a, b) => out.push(RawChange {
            path: path.clone(),
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

/// Expand added/removed subtrees into their image fields (for the image list of whole objects).
fn expand(changes: Vec<RawChange>) -> Vec<RawChange> {
    let mut out = Vec::new();
    for c in changes {
        let mut path = c.path.clone();
        collect_images(&mut path, c.old.as_ref(), true, &mut out);
        collect_images(&mut path, c.new.as_ref(), false, &mut out);
    }
    out
}

fn collect_images(path: &mut Vec<Seg>, node: Option<&Node>, old: bool, out: &mut Vec<RawChange>) {
    let Some(node) = node else { return };
    match node {
        Node::Map(m) => {
            for (k, v) in m {
                path.push(Seg::Key(k.clone()));
                collect_images(path, Some(v), old, out);
                path.pop();
            }
        }
        Node::Keyed { items, .. } => {
            for (k, v) in items {
                path.push(Seg::Item(k.clone()));
                collect_images(path, Some(v), old, out);
                path.pop();
            }
        }
        Node::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_images(path, Some(v), old, out);
                path.pop();
            }
        }
        leaf => {
            if container_of(path).is_some() {
                out.push(RawChange {
                    path: path.clone(),
                    old: old.then(|| leaf.clone()),
                    new: (!old).then(|| leaf.clone()),
                });
            }
        }
    }
}

/// The container name when `path` is `...containers[NAME].image` (or init/ephemeral).
fn container_of(path: &[Seg]) -> Option<String> {
    match path {
        [.., Seg::Key(list), item, Seg::Key(image)]
            if image == "image"
                && matches!(
                    list.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) =>
        {
            match item {
                Seg::Item(name) => Some(name.clone()),
                Seg::Index(i) => Some(i.to_string()),
                Seg::Key(_) => None,
            }
        }
        _ => None,
    }
}

fn split_images(changes: Vec<RawChange>) -> (Vec<ImageChange>, Vec<FieldChange>) {
    let mut images = Vec::new();
    let mut fields = Vec::new();
    let text = |n: &Option<Node>| match n {
        Some(Node::Str(s)) => Some(s.clone()),
        Some(other) => Some(render::inline(other)),
        None => None,
    };
    for c in changes {
        let path = path_text(&c.path);
        match container_of(&c.path) {
            Some(container)
                if c.old.as_ref().is_none_or(Node::is_scalar)
                    && c.new.as_ref().is_none_or(Node::is_scalar) =>
            {
                images.push(ImageChange {
                    path,
                    container,
                    old: text(&c.old),
                    new: text(&c.new),
                });
            }
            _ => {
                // A container (or a whole pod template) added or removed: its images too.
                if c.old.is_none() != c.new.is_none() {
                    let inner = expand(vec![RawChange {
                        path: c.path.clone(),
                        old: c.old.clone(),
                        new: c.new.clone(),
                    }]);
                    images.extend(split_images(inner).0);
                }
                fields.push(FieldChange {
                    path,
                    old: c.old,
                    new: c.new,
                });
            }
        }
    }
    (images, fields)
}

fn path_text(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Key(k) => {
                s.push('[');
                s.push_str(&serde_json::Value::String(k.clone()).to_string());
                s.push(']');
            }
            Seg::Item(k) if !k.contains([']', '[']) => {
                s.push('[');
                s.push_str(k);
                s.push(']');
            }
            Seg::Item(k) => {
                s.push('[');
                s.push_str(&serde_json::Value::String(k.clone()).to_string());
                s.push(']');
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests;
