//! Name references: after renames (prefix, suffix, hash), fields that refer to a renamed object
//! by name follow it (kustomize's `nameReference` config and `filters/nameref`).

use std::collections::HashMap;

use crate::error::{Error, Location, Result};
use crate::fieldspec::{FieldSpec, Leaf, visit};
use crate::resource::{Gvk, ResMap, Resource};
use crate::yaml::Value;

/// One name-reference rule: objects of `target` kind are referred to from `path` in `referrer`.
struct Rule {
    target_kind: String,
    target_group: String,
    target_version: String,
    referrer_kind: String,
    referrer_group: String,
    referrer_version: String,
    path: Vec<String>,
}

/// kustomize's built-in name references (`nameReference` of `builtin/fieldspecs.yaml`) plus
/// those of `configurations`, as rules.
fn rules(extra: &[(Gvk, FieldSpec)]) -> Vec<Rule> {
    crate::build::builtin_name_references()
        .iter()
        .chain(extra)
        .map(|(target, fs)| Rule {
            target_kind: target.kind.clone(),
            target_group: target.group.clone(),
            target_version: target.version.clone(),
            referrer_kind: fs.kind.clone(),
            referrer_group: fs.group.clone(),
            referrer_version: fs.version.clone(),
            path: fs.path.clone(),
        })
        .collect()
}

struct Candidate {
    gvk: Gvk,
    name: String,
    namespace: String,
    org_namespace: String,
    cluster_scoped: bool,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

/// Rewrites every name reference to follow renamed objects.
pub fn fix(m: &mut ResMap, extra: &[(Gvk, FieldSpec)], at: &Location) -> Result<()> {
    let rules = rules(extra);
    // Index candidates by each name they once had (or their current one if never renamed).
    let mut by_old_name: HashMap<(String, String), Vec<usize>> = HashMap::new();
    let mut cands: Vec<Candidate> = Vec::with_capacity(m.list.len());
    let target_kinds: std::collections::HashSet<&str> =
        rules.iter().map(|r| r.target_kind.as_str()).collect();
    for (i, r) in m.list.iter().enumerate() {
        let gvk = r.gvk();
        cands.push(Candidate {
            cluster_scoped: gvk.is_cluster_scoped(),
            gvk,
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            org_namespace: r.org_id.namespace.clone(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        });
        // kustomize's PrevIds: only ids the object had before a rename; an object that was
        // never renamed is never a referral (its referrers are left alone).
        for id in &r.prev_ids {
            if target_kinds.contains(id.gvk.kind.as_str()) {
                by_old_name
                    .entry((id.gvk.kind.clone(), id.name.clone()))
                    .or_default()
                    .push(i);
            }
        }
    }
    for list in by_old_name.values_mut() {
        list.dedup();
    }
    // Rules whose target kind has no renamed object cannot change anything.
    let renamed_kinds: std::collections::HashSet<&str> =
        by_old_name.keys().map(|(k, _)| k.as_str()).collect();
    let rules: Vec<&Rule> = rules
        .iter()
        .filter(|r| renamed_kinds.contains(r.target_kind.as_str()))
        .collect();
    let mut error: Option<String> = None;
    for ri in 0..m.list.len() {
        let gvk = m.list[ri].gvk();
        let applicable: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| {
                (r.referrer_kind.is_empty() || r.referrer_kind == gvk.kind)
                    && (r.referrer_group.is_empty() || r.referrer_group == gvk.group)
                    && (r.referrer_version.is_empty() || r.referrer_version == gvk.version)
            })
            .collect();
        if applicable.is_empty() {
            continue;
        }
        let referrer = ReferrerCtx {
            namespace: m.list[ri].namespace().to_string(),
            cluster_scoped: gvk.is_cluster_scoped(),
            prefixes: m.list[ri].prefixes.clone(),
            suffixes: m.list[ri].suffixes.clone(),
            role_ref_kind: m.list[ri]
                .value
                .path_str(&["roleRef", "kind"])
                .map(str::to_string),
        };
        let res: &mut Resource = &mut m.list[ri];
        for rule in applicable {
            let is_role_ref = rule.path.last().map(String::as_str) == Some("name")
                && rule.path.first().map(String::as_str) == Some("roleRef");
            let select = |old: &str,
                          ns_filter: Option<&str>|
             -> std::result::Result<Option<(String, String)>, String> {
                let Some(list) = by_old_name.get(&(rule.target_kind.to_string(), old.to_string()))
                else {
                    return Ok(None);
                };
                let mut found: Vec<&Candidate> = list.iter().map(|&i| &cands[i]).collect();
                if let Some(ns) = ns_filter {
                    // A map with a namespace field: candidates from that original namespace,
                    // else from that current namespace.
                    let by_org: Vec<&Candidate> = found
                        .iter()
                        .copied()
                        .filter(|c| ns_eq(&c.org_namespace, ns))
                        .collect();
                    found = if by_org.is_empty() {
                        found
                            .into_iter()
                            .filter(|c| ns_eq(&c.namespace, ns))
                            .collect()
                    } else {
                        by_org
                    };
                }
                let mut found: Vec<&Candidate> = found
                    .into_iter()
                    .filter(|c| rule.target_group.is_empty() || c.gvk.group == rule.target_group)
                    .filter(|c| {
                        rule.target_version.is_empty() || c.gvk.version == rule.target_version
                    })
                    .filter(|c| {
                        !is_role_ref
                            || referrer
                                .role_ref_kind
                                .as_deref()
                                .is_none_or(|k| k == c.gvk.kind)
                    })
                    .filter(|c| {
                        referrer.cluster_scoped
                            || c.cluster_scoped
                            || c.gvk.kind == "ServiceAccount"
                            || ns_eq(&referrer.namespace, &c.namespace)
                    })
                    .collect();
                if found.len() == 1 {
                    return Ok(Some((found[0].name.clone(), found[0].namespace.clone())));
                }
                if found.len() > 1 {
                    found.retain(|c| {
                        affixes_match(&c.prefixes, &referrer.prefixes)
                            && affixes_match(&c.suffixes, &referrer.suffixes)
                    });
                }
                match found.len() {
                    0 => Ok(None),
                    1 => Ok(Some((found[0].name.clone(), found[0].namespace.clone()))),
                    _ if found.iter().all(|c| c.name == found[0].name) => {
                        Ok(Some((found[0].name.clone(), found[0].namespace.clone())))
                    }
                    _ => Err(format!(
                        "found multiple possible referrals for {} '{old}': {}",
                        rule.target_kind,
                        found
                            .iter()
                            .map(|c| format!("{}/{}", c.namespace, c.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            };
            visit(
                &mut res.value,
                &rule.path,
                false,
                Leaf::Scalar,
                &mut |v: &mut Value| match v {
                    Value::Str(_) => fix_scalar(v, &select, &mut error),
                    Value::Seq(items) => {
                        for item in items {
                            match item {
                                Value::Map(_) => {
                                    fix_mapping(item, &rule.target_kind, &select, &mut error)
                                }
                                _ => fix_scalar(item, &select, &mut error),
                            }
                        }
                    }
                    Value::Map(_) => fix_mapping(v, &rule.target_kind, &select, &mut error),
                    _ => {}
                },
            );
        }
    }
    match error {
        Some(message) => Err(Error::Transform {
            at: at.clone(),
            message,
        }),
        None => Ok(()),
    }
}

fn fix_scalar(s: &mut Value, select: &SelectFn<'_>, error: &mut Option<String>) {
    if let Value::Str(old) = s {
        match select(old, None) {
            Ok(Some((new, _))) => *old = new,
            Ok(None) => {}
            Err(e) => *error = error.take().or(Some(e)),
        }
    }
}

type SelectFn<'a> =
    dyn Fn(&str, Option<&str>) -> std::result::Result<Option<(String, String)>, String> + 'a;

fn fix_mapping(
    v: &mut Value,
    target_kind: &str,
    select: &SelectFn<'_>,
    error: &mut Option<String>,
) {
    let _ = target_kind;
    let Value::Map(m) = v else { return };
    let Some(old) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let ns = m
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    match select(&old, ns.as_deref()) {
        Ok(Some((new, new_ns))) => {
            if new == old && new_ns.is_empty() {
                return;
            }
            m.insert("name", Value::Str(new));
            if !new_ns.is_empty() {
                m.insert("namespace", Value::Str(new_ns));
            }
        }
        Ok(None) => {}
        Err(e) => *error = error.take().or(Some(e)),
    }
}

struct ReferrerCtx {
    namespace: String,
    cluster_scoped: bool,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    role_ref_kind: Option<String>,
}

fn ns_eq(a: &str, b: &str) -> bool {
    let n = |s: &str| {
        if s.is_empty() {
            "default".to_string()
        } else {
            s.to_string()
        }
    };
    n(a) == n(b)
}

/// kustomize's `SameEndingSubSlice` with "either empty" allowed.
fn affixes_match(a: &[String], b: &[String]) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long[long.len() - short.len()..] == *short
}
