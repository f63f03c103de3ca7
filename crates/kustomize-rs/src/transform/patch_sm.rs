//! Strategic-merge patches the way kustomize (kyaml `merge2`) applies them.
//!
//! Lists the built-in Kubernetes schema marks as associative merge by their key, with the
//! elements named in the patch first (in patch order) and the rest after; every other list is
//! replaced. Custom resources have no schema, so all their lists are replaced.

use crate::openapi::{At, Property, Schemas};
use crate::resource::Gvk;
use crate::yaml::{Map, Value};

/// Outcome of patching one object.
pub enum Patched {
    /// The object stays (possibly changed).
    Kept,
    /// `$patch: delete` at the top: drop the object.
    Deleted,
}

/// Applies `patch` to `target` (both whole objects), with list merge strategies from the
/// OpenAPI schema (`schemas`).
pub fn apply(target: &mut Value, patch: &Value, gvk: &Gvk, schemas: Schemas<'_>) -> Patched {
    if let Some(d) = patch.get("$patch").and_then(Value::as_str) {
        match d {
            "delete" => return Patched::Deleted,
            "replace" => {
                *target = clean(patch);
                return Patched::Kept;
            }
            _ => {}
        }
    }
    let root = schemas.root(gvk);
    merge_value(target, patch, root);
    drop_empty_nulls(target, root);
    Patched::Kept
}

/// kyaml's merge walks every map of the patched object (through maps and the elements of
/// associative lists) and sets each field again: a field whose value is a null written as
/// nothing (`key:`) is cleared, a spelled-out `null` stays. An emptied map stays as `{}`.
fn drop_empty_nulls(v: &mut Value, at: Option<At<'_>>) {
    let Value::Map(m) = v else { return };
    m.retain(|_, x| !matches!(x, Value::EmptyNull));
    for (k, x) in m.iter_mut() {
        let (prop, next) = match at {
            Some(a) => a.field(k),
            None => (None, None),
        };
        match x {
            Value::Map(_) => drop_empty_nulls(x, next),
            Value::Seq(items) if prop.is_some_and(Property::merges) => {
                for item in items {
                    drop_empty_nulls(item, next);
                }
            }
            _ => {}
        }
    }
}

/// How a list field merges: by key fields, as a set of scalars, or not at all (replace).
enum ListKind<'s> {
    Keyed(&'s [String]),
    Primitive,
    Replace,
}

fn list_kind(p: Option<&Property>) -> ListKind<'_> {
    match p {
        Some(p) if p.merges() && !p.keys.is_empty() => ListKind::Keyed(&p.keys),
        Some(p) if p.merges() => ListKind::Primitive,
        _ => ListKind::Replace,
    }
}

/// A patch value used as new content (merged into nothing): null fields (which mean "clear")
/// are dropped, `$patch` keys are not kept, and list elements marked `$patch: delete` vanish.
pub fn clean(v: &Value) -> Value {
    match v {
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, x) in m.iter() {
                if k == "$patch" || x.is_null() {
                    continue;
                }
                out.insert(k.clone(), clean(x));
            }
            Value::Map(out)
        }
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .filter(|x| !matches!(x.get("$patch").and_then(Value::as_str), Some("delete")))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_value(target: &mut Value, patch: &Value, at: Option<At<'_>>) {
    match (target, patch) {
        (Value::Map(t), Value::Map(p)) => merge_map(t, p, at),
        (t, p) => *t = clean(p),
    }
}

fn merge_map(t: &mut Map, p: &Map, at: Option<At<'_>>) {
    for (k, pv) in p.iter() {
        // Only `$patch` is a directive to kyaml; `$setElementOrder/…`, `$retainKeys` and the
        // like are copied as ordinary fields, as kustomize does.
        if k == "$patch" {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        if let Some(d) = pv.get("$patch").and_then(Value::as_str) {
            match d {
                "delete" => {
                    t.remove(k);
                    continue;
                }
                "replace" => {
                    t.insert(k.clone(), clean(pv));
                    continue;
                }
                _ => {}
            }
        }
        let (prop, next) = match at {
            Some(a) => a.field(k),
            None => (None, None),
        };
        match t.get_mut(k) {
            None | Some(Value::Null | Value::EmptyNull) => t.insert(k.clone(), clean(pv)),
            Some(tv) => match (tv, pv) {
                (Value::Map(tm), Value::Map(pm)) => merge_map(tm, pm, next),
                (Value::Seq(ts), Value::Seq(ps)) => {
                    let merged = merge_list(std::mem::take(ts), ps, list_kind(prop), next);
                    *ts = merged;
                }
                (tv, pv) => *tv = clean(pv),
            },
        }
    }
}

fn merge_list(
    target: Vec<Value>,
    patch: &[Value],
    kind: ListKind<'_>,
    at: Option<At<'_>>,
) -> Vec<Value> {
    // `- $patch: replace` as an element replaces the whole list.
    let replace_all = patch.iter().any(|e| {
        e.as_map().is_some_and(|m| {
            m.len() == 1 && m.get("$patch").and_then(Value::as_str) == Some("replace")
        })
    });
    let items: Vec<&Value> = patch
        .iter()
        .filter(|e| {
            !e.as_map()
                .is_some_and(|m| m.len() == 1 && m.contains_key("$patch"))
        })
        .collect();
    let key = match kind {
        ListKind::Keyed(k) if !replace_all => k,
        ListKind::Primitive if !replace_all => {
            // A set of scalars (finalizers): the patch's values first, then the target's others.
            let mut out: Vec<Value> = Vec::with_capacity(target.len() + items.len());
            for v in items.into_iter().map(clean).chain(target) {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            return out;
        }
        _ => return items.into_iter().map(clean).collect(),
    };
    // Elements match when every key field is equal (a missing field reads as empty); an
    // element with none of the key fields matches nothing.
    let key_of = |v: &Value| -> Option<Vec<String>> {
        let vals: Vec<Option<String>> = key
            .iter()
            .map(|k| v.get(k).and_then(Value::scalar_text))
            .collect();
        if vals.iter().all(Option::is_none) {
            return None;
        }
        Some(vals.into_iter().map(Option::unwrap_or_default).collect())
    };
    // With two merge keys (ports: containerPort + protocol), kyaml keeps the target's order
    // (merging in place, new elements first) as soon as any element gives both keys; with one
    // effective key it puts the patch's elements first. Observed against kubectl.
    let full_tuple = |v: &Value| key_of(v).is_some_and(|k| k.iter().all(|x| !x.is_empty()));
    let in_place =
        key.len() > 1 && (target.iter().any(full_tuple) || items.iter().any(|e| full_tuple(e)));
    let mut target: Vec<Option<Value>> = target.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(target.len() + items.len());
    for e in items {
        let ek = key_of(e);
        let pos = ek.as_ref().and_then(|k| {
            target
                .iter()
                .position(|t| t.as_ref().is_some_and(|t| key_of(t).as_ref() == Some(k)))
        });
        // kyaml quirk with two merge keys: a patch element that names the same primary key as
        // a target element, where only one of the two gives the secondary key, is lost; the
        // target element stays as it was.
        if pos.is_none() && key.len() > 1 {
            if let Some(pk) = ek.as_ref() {
                let half_match = target.iter().flatten().filter_map(&key_of).any(|tk| {
                    tk[0] == pk[0]
                        && tk[1..]
                            .iter()
                            .zip(&pk[1..])
                            .any(|(a, b)| a.is_empty() != b.is_empty())
                });
                if half_match {
                    continue;
                }
            }
        }
        let directive = e.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                target[i] = None;
            }
            (None, Some("delete")) => {}
            (Some(i), Some("replace")) => {
                if in_place {
                    target[i] = Some(clean(e));
                } else {
                    target[i] = None;
                    out.push(clean(e));
                }
            }
            (Some(i), _) => {
                if in_place {
                    if let Some(t) = target[i].as_mut() {
                        merge_value(t, e, at);
                    }
                } else {
                    let mut t = target[i].take().expect("position found above");
                    merge_value(&mut t, e, at);
                    out.push(t);
                }
            }
            (None, _) => out.push(clean(e)),
        }
    }
    out.extend(target.into_iter().flatten());
    out
}
