//! Field specs: which field of which kinds a transformer touches (kustomize's `FieldSpec`).

use crate::resource::Gvk;
use crate::yaml::{Map, Value};

/// A path into objects of some group/version/kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSpec {
    /// Group ("" matches any).
    pub group: String,
    /// Version ("" matches any).
    pub version: String,
    /// Kind ("" matches any).
    pub kind: String,
    /// Path segments; a segment ending in `[]` names a sequence.
    pub path: Vec<String>,
    /// Create the field when it is missing.
    pub create: bool,
}

impl FieldSpec {
    /// A field spec from `group`, `version`, `kind`, `path` and `create`.
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> Self {
        FieldSpec {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            path: split_path(path),
            create,
        }
    }
    /// Whether objects of `gvk` are selected.
    pub fn selects(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }
}

/// Splits `a/b\/c/d` into segments, honouring `\/` escapes.
pub fn split_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '/' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// What to create at the end of the path when it is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// A mapping (labels, annotations).
    Map,
    /// A scalar (namespace, name): the callback gets `Null` and sets it.
    Scalar,
}

/// Calls `f` on every value the path reaches in `v`, creating missing fields when `create`.
pub fn visit(
    v: &mut Value,
    path: &[String],
    create: bool,
    leaf: Leaf,
    f: &mut dyn FnMut(&mut Value),
) {
    let Some((seg, rest)) = path.split_first() else {
        f(v);
        return;
    };
    if let Value::Seq(items) = v {
        for item in items {
            visit(item, path, create, leaf, f);
        }
        return;
    }
    let (name, is_seq) = match seg.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (seg.as_str(), false),
    };
    let Value::Map(m) = v else { return };
    let present = matches!(m.get(name), Some(x) if !x.is_null());
    if !present {
        if !create || is_seq {
            return;
        }
        let fresh = if rest.is_empty() {
            match leaf {
                Leaf::Map => Value::Map(Map::new()),
                Leaf::Scalar => Value::Null,
            }
        } else {
            Value::Map(Map::new())
        };
        m.insert(name, fresh);
    }
    if let Some(child) = m.get_mut(name) {
        if is_seq {
            if let Value::Seq(items) = child {
                for item in items {
                    visit(item, rest, create, leaf, f);
                }
            }
        } else {
            visit(child, rest, create, leaf, f);
        }
    }
}
