//! `replacements:` — copy a field of one resource into fields of others (kustomize's
//! `filters/replacement`).

use crate::resource::{ResId, ResMap, Resource};
use crate::yaml::resolve::resolve_plain_v3;
use crate::yaml::{Map, Value};

/// Exact-match selector on ids (current or earlier) plus label/annotation selectors.
#[derive(Debug, Clone, Default)]
pub struct IdSelector {
    /// Group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Label selector (Kubernetes syntax).
    pub label_selector: String,
    /// Annotation selector.
    pub annotation_selector: String,
}

/// `options:` of a source or target.
#[derive(Debug, Clone, Default)]
pub struct FieldOptions {
    /// Split the value at this delimiter.
    pub delimiter: String,
    /// Which part (negative: prepend; past the end: append).
    pub index: i64,
    /// Create a missing target field.
    pub create: bool,
}

/// One target.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// What to select.
    pub select: IdSelector,
    /// What to skip.
    pub reject: Vec<IdSelector>,
    /// Dotted field paths.
    pub field_paths: Vec<String>,
    /// Options.
    pub options: FieldOptions,
}

/// One replacement.
#[derive(Debug, Clone, Default)]
pub struct Replacement {
    /// The source resource.
    pub source: IdSelector,
    /// The source field (default `metadata.name`).
    pub source_path: String,
    /// Source options.
    pub source_options: FieldOptions,
    /// The targets.
    pub targets: Vec<Target>,
}

fn ids(r: &Resource) -> Vec<ResId> {
    let mut v = vec![r.cur_id()];
    v.extend(r.prev_ids.iter().cloned());
    v
}

fn ns_eq(a: &str, b: &str) -> bool {
    fn n(s: &str) -> &str {
        if s.is_empty() { "default" } else { s }
    }
    n(a) == n(b)
}

impl IdSelector {
    fn selects(&self, r: &Resource) -> Result<bool, String> {
        let id_ok = ids(r).iter().any(|id| {
            (self.group.is_empty() || self.group == id.gvk.group)
                && (self.version.is_empty() || self.version == id.gvk.version)
                && (self.kind.is_empty() || self.kind == id.gvk.kind)
                && (self.name.is_empty() || self.name == id.name)
                && (self.namespace.is_empty() || ns_eq(&self.namespace, &id.namespace))
        });
        if !id_ok {
            return Ok(false);
        }
        if !self.label_selector.is_empty() || !self.annotation_selector.is_empty() {
            let sel = crate::kustomization::Selector {
                label_selector: self.label_selector.clone(),
                annotation_selector: self.annotation_selector.clone(),
                ..Default::default()
            };
            let t = super::select::Target::new(&sel)?;
            return Ok(t.selects_metadata(r));
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("group", &self.group),
            ("version", &self.version),
            ("kind", &self.kind),
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("labelSelector", &self.label_selector),
            ("annotationSelector", &self.annotation_selector),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={v}"));
            }
        }
        parts.join(", ")
    }
}

/// A parsed field path segment.
pub(crate) enum Seg {
    Key(String),
    Index(usize),
    Match(String, String),
    All,
}

/// kyaml's `PathSplitter`: splits at `delimiter`, a leading delimiter is dropped and a
/// backslash before a delimiter escapes it (`example\.com/user` is one segment).
fn path_splitter(path: &str, delimiter: char) -> Vec<String> {
    let mut ps: Vec<&str> = path.split(delimiter).collect();
    if ps.len() > 1 && ps[0].is_empty() {
        ps.remove(0);
    }
    let mut res: Vec<String> = vec![ps[0].to_string()];
    for p in &ps[1..] {
        let last = res.last_mut().expect("res starts non-empty");
        if let Some(stripped) = last.strip_suffix('\\') {
            *last = format!("{stripped}{delimiter}{p}");
        } else {
            res.push((*p).to_string());
        }
    }
    res
}

/// kyaml's `SmarterPathSplitter`: `path_splitter`, with `[a.b=c]` kept whole.
pub(crate) fn smarter_path_splitter(path: &str, delimiter: char) -> Vec<String> {
    let split = path_splitter(path, delimiter);
    let mut result = Vec::new();
    let mut i = 0;
    while i < split.len() {
        let elem = &split[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut bracketed = vec![elem.clone()];
            while i < split.len() - 1 {
                i += 1;
                bracketed.push(split[i].clone());
                if split[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(&delimiter.to_string());
            if joined.contains('=') {
                result.push(joined);
            } else {
                result.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            result.push(elem.clone());
        }
        i += 1;
    }
    result
}

/// A replacement field path as segments (`a.b.[name=x.y].c`, `a.0`, `a.*`).
pub(crate) fn parse_path(p: &str) -> Vec<Seg> {
    smarter_path_splitter(p, '.')
        .into_iter()
        .map(|s| {
            if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                match inner.split_once('=') {
                    Some((k, v)) => Seg::Match(k.to_string(), v.to_string()),
                    None => Seg::Key(inner.to_string()),
                }
            } else if s == "*" {
                Seg::All
            } else if let Ok(i) = s.parse::<usize>() {
                Seg::Index(i)
            } else {
                Seg::Key(s)
            }
        })
        .collect()
}

pub(crate) fn lookup<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let Some((seg, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match (seg, v) {
        (Seg::Key(k), Value::Map(m)) => m.get(k)?,
        (Seg::Index(i), Value::Seq(s)) => s.get(*i)?,
        (Seg::Match(k, want), Value::Seq(s)) => s
            .iter()
            .find(|e| e.get(k).and_then(Value::scalar_text).as_deref() == Some(want.as_str()))?,
        (Seg::All, Value::Seq(s)) => s.first()?,
        _ => return None,
    };
    lookup(next, rest)
}

/// Visits every field the path reaches (creating it when asked). Returns how many were found.
fn visit_targets(
    v: &mut Value,
    path: &[Seg],
    create: bool,
    f: &mut dyn FnMut(&mut Value),
) -> usize {
    let Some((seg, rest)) = path.split_first() else {
        f(v);
        return 1;
    };
    match (seg, v) {
        (Seg::Key(k), Value::Map(m)) => {
            if m.get(k).is_none_or(|x| x.is_null() && !rest.is_empty()) {
                if !create {
                    return 0;
                }
                m.insert(
                    k.clone(),
                    if rest.is_empty() {
                        Value::Null
                    } else {
                        Value::Map(Map::new())
                    },
                );
            }
            match m.get_mut(k) {
                Some(child) => visit_targets(child, rest, create, f),
                None => 0,
            }
        }
        (Seg::Index(i), Value::Seq(s)) => match s.get_mut(*i) {
            Some(child) => visit_targets(child, rest, create, f),
            None => 0,
        },
        (Seg::Match(k, want), Value::Seq(s)) => {
            let mut n = 0;
            for e in s.iter_mut() {
                if e.get(k).and_then(Value::scalar_text).as_deref() == Some(want.as_str()) {
                    n += visit_targets(e, rest, create, f);
                }
            }
            n
        }
        (Seg::All, Value::Seq(s)) => s
            .iter_mut()
            .map(|e| visit_targets(e, rest, create, f))
            .sum(),
        (Seg::All, Value::Map(m)) => m
            .iter_mut()
            .map(|(_, e)| visit_targets(e, rest, create, f))
            .sum(),
        _ => 0,
    }
}

/// Sets a target field the way kyaml does: a scalar keeps its type and takes the new text; any
/// other node is replaced by a copy of the source.
fn set_field(target: &mut Value, value: &Value, opts: &FieldOptions) -> Result<(), String> {
    let mut value = value.clone();
    if !opts.delimiter.is_empty() {
        let Some(tv) = target.scalar_text() else {
            return Err("delimiter option can only be used with scalar nodes".into());
        };
        let v = value.scalar_text().unwrap_or_default();
        let mut parts: Vec<String> = tv
            .split(opts.delimiter.as_str())
            .map(str::to_string)
            .collect();
        if opts.index < 0 {
            parts.insert(0, v);
        } else if opts.index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[opts.index as usize] = v;
        }
        value = Value::Str(parts.join(&opts.delimiter));
    }
    let text = value.scalar_text();
    match (&*target, text) {
        (Value::Str(_), Some(t)) if !matches!(value, Value::Map(_) | Value::Seq(_)) => {
            *target = Value::Str(t)
        }
        (Value::Int(_) | Value::Float(_) | Value::Bool(_), Some(t))
            if !matches!(value, Value::Map(_) | Value::Seq(_)) =>
        {
            let typed = resolve_plain_v3(&t);
            *target = match (&*target, typed) {
                (Value::Int(_), v @ Value::Int(_)) => v,
                (Value::Float(_), v @ (Value::Float(_) | Value::Int(_))) => v,
                (Value::Bool(_), v @ Value::Bool(_)) => v,
                _ => Value::Str(t),
            };
        }
        _ => *target = value,
    }
    Ok(())
}

/// Applies one replacement to the resources.
pub fn apply(m: &mut ResMap, r: &Replacement) -> Result<(), String> {
    let mut found: Option<usize> = None;
    for (i, res) in m.list.iter().enumerate() {
        if r.source.selects(res)? {
            if found.is_some() {
                return Err(format!(
                    "multiple matches for replacement source selector {}",
                    r.source.describe()
                ));
            }
            found = Some(i);
        }
    }
    let Some(si) = found else {
        return Err(format!(
            "nothing selected by replacement source selector {}",
            r.source.describe()
        ));
    };
    let src_path = if r.source_path.is_empty() {
        "metadata.name"
    } else {
        &r.source_path
    };
    let mut value = lookup(&m.list[si].value, &parse_path(src_path))
        .cloned()
        .ok_or_else(|| {
            format!(
                "fieldPath `{src_path}` is missing for replacement source {}",
                m.list[si].cur_id()
            )
        })?;
    if !r.source_options.delimiter.is_empty() {
        let text = value.scalar_text().unwrap_or_default();
        let parts: Vec<&str> = text.split(r.source_options.delimiter.as_str()).collect();
        let i = r.source_options.index;
        if i < 0 || i as usize >= parts.len() {
            return Err(format!(
                "options.index {i} is out of bounds for value {text}"
            ));
        }
        value = Value::Str(parts[i as usize].to_string());
    }
    for t in &r.targets {
        for res in m.list.iter_mut() {
            if !t.select.selects(res)? {
                continue;
            }
            let mut rejected = false;
            for rej in &t.reject {
                if rej.selects(res)? {
                    rejected = true;
                    break;
                }
            }
            if rejected {
                continue;
            }
            for fp in &t.field_paths {
                let path = parse_path(fp);
                let mut err = None;
                let n = visit_targets(&mut res.value, &path, t.options.create, &mut |field| {
                    if let Err(e) = set_field(field, &value, &t.options) {
                        err = Some(e);
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
                if n == 0 {
                    return Err(format!(
                        "unable to find field \"{fp}\" in replacement target"
                    ));
                }
            }
        }
    }
    Ok(())
}
