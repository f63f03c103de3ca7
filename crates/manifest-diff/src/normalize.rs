//! Objects as comparable trees: what is noise is normalised away before comparing.
//!
//! - Key order never matters (maps are sorted).
//! - Lists of named items (containers, env, ports, volumes, ...) are keyed by their merge key,
//!   so a reordered list is no change and a change is shown under the item's name.
//! - Resource quantities compare by value: `100m` = `0.1`, `1Gi` = `1024Mi`, `1` = `"1"`.
//! - `null`, `{}` and `[]` are the same as an absent field; server-managed fields are dropped.
//! - Secret values are replaced by keyed fingerprints here, before anything is compared, so no
//!   later step can show them.
//!
//! The tables (merge keys, quantity fields, dropped and secret fields) are data: `fields.txt`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use kustomize::Value;

use crate::mask::{Fingerprint, Masker};

/// A normalised value.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A resource quantity: shown as written, compared by `canon`.
    Quantity {
        text: String,
        canon: String,
    },
    /// A secret value: only its keyed fingerprint is kept.
    Secret(Fingerprint),
    Seq(Vec<Node>),
    /// A list of maps matched by `key` (each item is keyed by its value of that field).
    Keyed {
        key: String,
        items: BTreeMap<String, Node>,
    },
    Map(BTreeMap<String, Node>),
}

impl Node {
    /// Semantic equality: quantities by value, integers equal to floats of the same value.
    pub fn same(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Int(a), Node::Int(b)) => a == b,
            (Node::Float(a), Node::Float(b)) => a == b,
            (Node::Int(a), Node::Float(b)) | (Node::Float(b), Node::Int(a)) => *a as f64 == *b,
            (Node::Str(a), Node::Str(b)) => a == b,
            (Node::Quantity { canon: a, .. }, Node::Quantity { canon: b, .. }) => a == b,
            (Node::Secret(a), Node::Secret(b)) => a == b,
            (Node::Seq(a), Node::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Node::Keyed { key: ka, items: a }, Node::Keyed { key: kb, items: b }) => {
                ka == kb && maps_same(a, b)
            }
            (Node::Map(a), Node::Map(b)) => maps_same(a, b),
            _ => false,
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Node::Seq(_) | Node::Keyed { .. } | Node::Map(_))
    }

    fn is_empty(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Seq(s) => s.is_empty(),
            Node::Keyed { items, .. } => items.is_empty(),
            Node::Map(m) => m.is_empty(),
            _ => false,
        }
    }

    /// The JSON form used in `--format json` output: secrets as `"<secret:FINGERPRINT>"`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Node::Null => J::Null,
            Node::Bool(b) => J::Bool(*b),
            Node::Int(i) => i64::try_from(*i)
                .map(J::from)
                .unwrap_or_else(|_| J::String(i.to_string())),
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Node::Str(s) => J::String(s.clone()),
            Node::Quantity { text, .. } => J::String(text.clone()),
            Node::Secret(fp) => J::String(format!("<secret:{fp}>")),
            Node::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Node::Keyed { items, .. } => J::Array(items.values().map(Node::to_json).collect()),
            Node::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

fn maps_same(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.same(vb))
}

/// The tables of `fields.txt`.
struct Tables {
    merge: HashMap<String, Vec<String>>,
    quantity_map: Vec<String>,
    quantity: Vec<String>,
    drop: Vec<Vec<String>>,
    secret: Vec<(String, Vec<String>)>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Tables {
            merge: HashMap::new(),
            quantity_map: Vec::new(),
            quantity: Vec::new(),
            drop: Vec::new(),
            secret: Vec::new(),
        };
        for line in include_str!("fields.txt").lines() {
            let mut words = line.split_whitespace();
            let (Some(table), Some(field)) = (words.next(), words.next()) else {
                continue;
            };
            let path = || field.split('.').map(str::to_owned).collect::<Vec<_>>();
            match table {
                "merge" => {
                    t.merge
                        .insert(field.to_owned(), words.map(str::to_owned).collect());
                }
                "quantity-map" => t.quantity_map.push(field.to_owned()),
                "quantity" => t.quantity.push(field.to_owned()),
                "drop" => t.drop.push(path()),
                "secret" => {
                    if let Some(p) = words.next() {
                        t.secret
                            .push((field.to_owned(), p.split('.').map(str::to_owned).collect()));
                    }
                }
                _ => {}
            }
        }
        t
    })
}

/// The annotation `kubectl apply` keeps a full copy of the object in (secret data included).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Where a value sits, for the context-dependent rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    /// Every scalar below is a quantity (the values of `requests`, `limits`, ...).
    QuantityMap,
}

/// What is masked outside the secret fields themselves.
pub(crate) struct Masking<'a> {
    pub masker: &'a Masker,
    /// Generated Secrets' names (their suffix is a content hash) → the masked form.
    pub renames: HashMap<String, String>,
    /// Every value of every Secret (as written and base64-decoded): a string field elsewhere
    /// that equals or contains one came from a secret source (e.g. kustomize `replacements`) and
    /// is masked whole.
    pub values: HashSet<String>,
}

/// Shortest secret value looked for inside longer strings (shorter ones must match whole).
const MIN_EMBEDDED: usize = 6;

impl Masking<'_> {
    fn string(&self, s: &str) -> Node {
        if let Some(masked) = self.renames.get(s) {
            return Node::Str(masked.clone());
        }
        if !self.values.is_empty()
            && (self.values.contains(s)
                || self
                    .values
                    .iter()
                    .any(|v| v.len() >= MIN_EMBEDDED && s.contains(v.as_str())))
        {
            return Node::Secret(self.masker.fingerprint("from-secret", "", s));
        }
        Node::Str(s.to_owned())
    }
}

/// The values of a Secret's `data` (as written and decoded) and `stringData`.
pub(crate) fn secret_values(value: &Value, out: &mut HashSet<String>) {
    use base64::Engine as _;
    for (field, encoded) in [("data", true), ("stringData", false)] {
        let Some(Value::Map(m)) = value.get(field) else {
            continue;
        };
        for (_, v) in m.iter() {
            let Some(text) = v.scalar_text().filter(|t| !t.is_empty()) else {
                continue;
            };
            if encoded
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim())
                && let Ok(plain) = String::from_utf8(bytes)
                && !plain.is_empty()
            {
                out.insert(plain);
            }
            out.insert(text);
        }
    }
}

/// Normalise one object of kind `kind`.
pub(crate) fn object(kind: &str, value: &Value, masking: &Masking<'_>) -> Node {
    let t = tables();
    let masker = masking.masker;
    let mut node = convert(value, None, Ctx::Plain, masking);
    if let Node::Map(m) = &mut node {
        for path in &t.drop {
            remove_path(m, path);
        }
        if let Some(Node::Map(meta)) = m.get_mut("metadata")
            && let Some(Node::Map(ann)) = meta.get_mut("annotations")
        {
            ann.remove(LAST_APPLIED);
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    // Secret fields: mask from the raw value (so a value is fingerprinted as written).
    for (k, path) in &t.secret {
        if k != kind {
            continue;
        }
        let Some(raw) = raw_path(value, path) else {
            continue;
        };
        let field = path.join(".");
        let masked = match raw {
            Value::Map(entries) => Node::Map(
                entries
                    .iter()
                    .map(|(name, v)| {
                        (
                            name.clone(),
                            Node::Secret(masker.fingerprint(&field, name, &scalar_text(v))),
                        )
                    })
                    .collect(),
            ),
            Value::Null => Node::Null,
            other => Node::Secret(masker.fingerprint(&field, "", &scalar_text(other))),
        };
        if let Node::Map(m) = &mut node {
            set_path(m, path, masked);
        }
    }
    node
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other
            .scalar_text()
            .unwrap_or_else(|| kustomize::yaml::to_yaml(other)),
    }
}

fn raw_path<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn remove_path(m: &mut BTreeMap<String, Node>, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            m.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Node::Map(child)) = m.get_mut(first) {
                remove_path(child, rest);
                if child.is_empty() {
                    m.remove(first);
                }
            }
        }
    }
}

fn set_path(m: &mut BTreeMap<String, Node>, path: &[String], value: Node) {
    match path {
        [] => {}
        [last] => {
            if value.is_empty() {
                m.remove(last);
            } else {
                m.insert(last.clone(), value);
            }
        }
        [first, rest @ ..] => {
            let child = m
                .entry(first.clone())
                .or_insert_with(|| Node::Map(BTreeMap::new()));
            if let Node::Map(c) = child {
                set_path(c, rest, value);
            }
        }
    }
}

fn convert(v: &Value, field: Option<&str>, ctx: Ctx, masking: &Masking<'_>) -> Node {
    let t = tables();
    match v {
        Value::Map(m) => {
            let mut out = BTreeMap::new();
            for (k, child) in m.iter() {
                let child_ctx = if ctx == Ctx::QuantityMap || t.quantity_map.iter().any(|q| q == k)
                {
                    Ctx::QuantityMap
                } else {
                    Ctx::Plain
                };
                let n = convert(child, Some(k), child_ctx, masking);
                if !n.is_empty() {
                    out.insert(k.clone(), n);
                }
            }
            Node::Map(out)
        }
        Value::Seq(items) => {
            let nodes: Vec<Node> = items
                .iter()
                .map(|i| convert(i, None, Ctx::Plain, masking))
                .collect();
            keyed(field, &nodes).unwrap_or(Node::Seq(nodes))
        }
        scalar => {
            let is_quantity =
                ctx == Ctx::QuantityMap || field.is_some_and(|f| t.quantity.iter().any(|q| q == f));
            if is_quantity
                && let Some(text) = scalar.scalar_text()
                && let Some(canon) = quantity(&text)
            {
                return Node::Quantity { text, canon };
            }
            match scalar {
                Value::Null => Node::Null,
                Value::Bool(b) => Node::Bool(*b),
                Value::Int(i) => Node::Int(*i),
                Value::Float(f) => Node::Float(*f),
                Value::Str(s) => masking.string(s),
                _ => Node::Null,
            }
        }
    }
}

/// A list of maps as a [`Node::Keyed`], when a merge key identifies every item.
fn keyed(field: Option<&str>, nodes: &[Node]) -> Option<Node> {
    if nodes.is_empty() || !nodes.iter().all(|n| matches!(n, Node::Map(_))) {
        return None;
    }
    let fallback = ["name".to_owned()];
    let candidates: &[String] = field
        .and_then(|f| tables().merge.get(f))
        .map(Vec::as_slice)
        .unwrap_or(&fallback);
    'key: for key in candidates {
        let mut items = BTreeMap::new();
        for n in nodes {
            let Node::Map(m) = n else { continue 'key };
            let id = match m.get(key) {
                Some(Node::Str(s)) => s.clone(),
                Some(Node::Int(i)) => i.to_string(),
                _ => continue 'key,
            };
            if items.insert(id, n.clone()).is_some() {
                continue 'key;
            }
        }
        return Some(Node::Keyed {
            key: key.clone(),
            items,
        });
    }
    None
}

/// The canonical value of a Kubernetes resource quantity (`100m` → `0.1`, `1Gi` →
/// `1073741824`), or `None` when `s` is not one (or does not fit in 128 bits).
pub fn quantity(s: &str) -> Option<String> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (num, suffix) = body.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let mut mantissa: i128 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)? as u8))?;
    }
    let mut scale = frac_part.len() as i64;
    let (exp10, binary): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        e if e.starts_with(['e', 'E']) => (e[1..].parse::<i64>().ok()?, 0),
        _ => return None,
    };
    scale -= exp10;
    if scale < 0 {
        mantissa = mantissa.checked_mul(10i128.checked_pow(u32::try_from(-scale).ok()?)?)?;
        scale = 0;
    }
    if binary > 0 {
        mantissa = mantissa.checked_mul(1024i128.checked_pow(binary)?)?;
    }
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    let digits = mantissa.to_string();
    let scale = usize::try_from(scale).ok()?;
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{digits}", "0".repeat(scale - digits.len()))
    };
    Some(if neg && mantissa != 0 {
        format!("-{text}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_by_value() {
        assert_eq!(quantity("100m").unwrap(), quantity("0.1").unwrap());
        assert_eq!(quantity("1Gi").unwrap(), quantity("1024Mi").unwrap());
        assert_eq!(quantity("1Gi").unwrap(), "1073741824");
        assert_eq!(quantity("1").unwrap(), quantity("1000m").unwrap());
        assert_eq!(quantity("1k").unwrap(), quantity("1e3").unwrap());
        assert_eq!(quantity("1.5").unwrap(), "1.5");
        assert_eq!(quantity("250m").unwrap(), "0.25");
        assert_eq!(quantity("5n").unwrap(), "0.000000005");
        assert_ne!(quantity("1G").unwrap(), quantity("1Gi").unwrap());
        assert_ne!(quantity("100m").unwrap(), quantity("100").unwrap());
        assert_eq!(quantity("abc"), None);
        assert_eq!(quantity("1Xi"), None);
        assert_eq!(quantity(""), None);
        assert_eq!(quantity("1.2.3"), None);
    }
}
