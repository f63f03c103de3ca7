//! `vars:` (deprecated in kustomize, still honoured by kubectl): `$(NAME)` in the fields of
//! kustomize's `varReference` field specs is replaced with a field of the object the var
//! names (kustomize's `MergeVars`, `ResolveVars` and `filters/refvar`).

use std::path::PathBuf;

use crate::error::{Error, Location, Result};
use crate::fieldspec::{FieldSpec, Leaf, visit};
use crate::resource::{Gvk, ResId, ResMap};
use crate::transform::replacements::{Seg, lookup, parse_path};
use crate::yaml::Value;

/// One `vars:` entry.
#[derive(Debug, Clone, Default)]
pub struct Var {
    /// `name`: what `$(name)` refers to.
    pub name: String,
    /// `objref.kind`.
    pub kind: String,
    /// `objref.name`.
    pub obj_name: String,
    /// `objref.namespace`.
    pub namespace: String,
    /// `objref.apiVersion`.
    pub api_version: String,
    /// `objref.group`.
    pub group: String,
    /// `objref.version`.
    pub version: String,
    /// `fieldref.fieldPath` (default `metadata.name`).
    pub field_path: String,
    /// The kustomization that declares it.
    pub path: PathBuf,
    /// Its line there.
    pub line: usize,
}

impl Var {
    fn at(&self) -> Location {
        Location::at(&self.path, self.line)
    }
    /// kustomize's `Target.GVK()`: `apiVersion` wins over `group`/`version`.
    fn gvk(&self) -> Gvk {
        if self.api_version.is_empty() {
            return Gvk {
                group: self.group.clone(),
                version: self.version.clone(),
                kind: self.kind.clone(),
            };
        }
        Gvk::from_api_version(&self.api_version, &self.kind)
    }
    fn target(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.obj_name.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Adds `incoming` to the accumulated vars and marks the resource each one names (by any of
/// its ids: an overlay's var may name an object by its base name).
pub fn merge(m: &mut ResMap, vars: &mut Vec<Var>, incoming: &[Var]) -> Result<()> {
    for v in incoming {
        let target = v.target();
        let exact_ns = !target.namespace.is_empty() || target.gvk.is_cluster_scoped();
        let matches = |id: &ResId| {
            id.name == target.name
                && id.gvk == target.gvk
                && (!exact_ns || id.effective_namespace() == target.effective_namespace())
        };
        let found: Vec<usize> = (0..m.list.len())
            .filter(|&i| {
                let r = &m.list[i];
                matches(&r.cur_id()) || r.prev_ids.iter().any(matches)
            })
            .collect();
        if found.len() > 1 {
            return Err(Error::Transform {
                at: v.at(),
                message: format!(
                    "found {} resId matches for var {} (unable to disambiguate)",
                    found.len(),
                    v.name
                ),
            });
        }
        if let Some(&i) = found.first() {
            m.list[i].ref_var_names.push(v.name.clone());
        }
    }
    merge_set(vars, incoming.iter().cloned())
}

/// Adds vars, refusing a name seen before (kustomize's `VarSet.MergeSlice`).
pub fn merge_set(vars: &mut Vec<Var>, incoming: impl IntoIterator<Item = Var>) -> Result<()> {
    for v in incoming {
        if vars.iter().any(|x| x.name == v.name) {
            return Err(Error::Transform {
                at: v.at(),
                message: format!("var '{}' already encountered", v.name),
            });
        }
        vars.push(v);
    }
    Ok(())
}

/// kyaml's `GetFieldValue` path: `a.b[0].c` and `a.b.0.c` index sequences.
fn field_path(p: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for seg in parse_path(p) {
        match seg {
            Seg::Key(k) => match k.split_once('[') {
                Some((name, rest)) if rest.ends_with(']') => {
                    let inner = &rest[..rest.len() - 1];
                    if !name.is_empty() {
                        out.push(Seg::Key(name.to_string()));
                    }
                    match inner.parse::<usize>() {
                        Ok(i) => out.push(Seg::Index(i)),
                        Err(_) => out.push(Seg::Key(k)),
                    }
                }
                _ => out.push(Seg::Key(k)),
            },
            other => out.push(other),
        }
    }
    out
}

/// Replaces `$(VAR)` everywhere the var reference field specs point.
pub fn resolve(m: &mut ResMap, vars: &[Var], specs: &[FieldSpec]) -> Result<Vec<String>> {
    let mut values: Vec<(String, Value)> = Vec::new();
    for v in vars {
        let holder = m.list.iter().find(|r| r.ref_var_names.contains(&v.name));
        let Some(holder) = holder else {
            return Err(Error::Transform {
                at: v.at(),
                message: format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    v.name
                ),
            });
        };
        let Some(value) = lookup(&holder.value, &field_path(&v.field_path)) else {
            return Err(Error::Transform {
                at: v.at(),
                message: format!(
                    "field specified in var '{}' ({}) not found in corresponding resource",
                    v.name, v.field_path
                ),
            });
        };
        values.push((v.name.clone(), value.clone()));
    }
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut used = vec![false; values.len()];
    let mut error: Option<String> = None;
    for r in &mut m.list {
        let gvk = r.gvk();
        for fs in specs.iter().filter(|fs| fs.selects(&gvk)) {
            visit(&mut r.value, &fs.path, false, Leaf::Scalar, &mut |v| {
                let mut replace = |s: &mut Value| {
                    if let Value::Str(text) = s {
                        if let Some(new) = do_replacements(text, &values, &mut used) {
                            *s = new;
                        }
                    }
                };
                match v {
                    Value::Str(_) => replace(v),
                    Value::Map(map) => map.iter_mut().for_each(|(_, x)| replace(x)),
                    Value::Seq(items) => {
                        for item in items {
                            if !matches!(item, Value::Str(_)) {
                                error.get_or_insert_with(|| {
                                    "invalid value type expect a string".to_string()
                                });
                                continue;
                            }
                            replace(item);
                        }
                    }
                    _ => {}
                }
            });
        }
    }
    if let Some(message) = error {
        return Err(Error::Transform {
            at: vars[0].at(),
            message,
        });
    }
    Ok(values
        .iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|((n, _), _)| n.clone())
        .collect())
}

/// `$(NAME)` as text, when `v` is a value a var can carry.
fn primitive_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(_) | Value::Bool(_) | Value::Float(_) => v.scalar_text(),
        _ => None,
    }
}

/// kustomize's `refvar.DoReplacements`: `$(NAME)` expands, `$$` escapes a `$`; a field that is
/// exactly `$(NAME)` takes the var's value with its type. `None` when nothing changed.
fn do_replacements(input: &str, values: &[(String, Value)], used: &mut [bool]) -> Option<Value> {
    if !input.contains('$') {
        return None;
    }
    let b = input.as_bytes();
    let mut buf = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            buf.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance;
            match rest.as_bytes()[0] {
                b'$' => {
                    buf.push('$');
                    advance = 1;
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        advance = end + 2;
                        let found = values
                            .iter()
                            .position(|(n, v)| n == name && primitive_text(v).is_some());
                        match found {
                            Some(i) => {
                                used[i] = true;
                                let value = &values[i].1;
                                if input.len() == name.len() + 3 {
                                    return Some(value.clone());
                                }
                                buf.push_str(&primitive_text(value).unwrap_or_default());
                            }
                            None => {
                                if input.len() == name.len() + 3 {
                                    return None;
                                }
                                buf.push_str("$(");
                                buf.push_str(name);
                                buf.push(')');
                            }
                        }
                    }
                    None => {
                        buf.push_str("$(");
                        advance = 1;
                    }
                },
                _ => {
                    // The operator and the next byte, as kustomize copies them.
                    let ch_len = rest.chars().next().map(char::len_utf8).unwrap_or(1);
                    buf.push('$');
                    buf.push_str(&rest[..ch_len]);
                    advance = ch_len;
                }
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    buf.push_str(&input[checkpoint.min(input.len())..]);
    if buf == input {
        None
    } else {
        Some(Value::Str(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Option<Value> {
        let values = vec![
            ("A".to_string(), Value::Str("x".into())),
            ("N".to_string(), Value::Int(8080)),
        ];
        let mut used = vec![false; 2];
        do_replacements(input, &values, &mut used)
    }

    #[test]
    fn expands_like_kustomize() {
        assert_eq!(run("$(A)"), Some(Value::Str("x".into())));
        assert_eq!(run("$(N)"), Some(Value::Int(8080)));
        assert_eq!(
            run("http://$(A):$(N)/"),
            Some(Value::Str("http://x:8080/".into()))
        );
        assert_eq!(run("$$(A)"), Some(Value::Str("$(A)".into())));
        assert_eq!(run("$(B) and $(A)"), Some(Value::Str("$(B) and x".into())));
        assert_eq!(run("$(B)"), None);
        assert_eq!(run("cost $5"), None);
        assert_eq!(run("open $(A"), None);
    }
}
