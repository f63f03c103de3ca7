//! The metadata transformers: namespace, name prefix/suffix, labels, annotations, replicas.

use crate::build::builtin_field_specs;
use crate::fieldspec::{FieldSpec, Leaf, visit};
use crate::resource::{ResId, ResMap};
use crate::yaml::Value;

/// Which RoleBinding / ClusterRoleBinding subjects get the namespace (kustomize's
/// `setRoleBindingSubjects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subjects {
    /// Subjects named `default` (the default).
    #[default]
    DefaultOnly,
    /// Every subject of kind ServiceAccount.
    AllServiceAccounts,
    /// None.
    None,
}

/// `namespace:`, with kustomize's namespace field specs (built in plus `configurations`).
pub fn namespace(m: &mut ResMap, ns: &str, specs: &[FieldSpec]) {
    namespace_with(m, ns, specs, false, Subjects::DefaultOnly);
}

/// kustomize's NamespaceTransformer: `unset_only` sets only empty fields.
pub fn namespace_with(
    m: &mut ResMap,
    ns: &str,
    specs: &[FieldSpec],
    unset_only: bool,
    subjects_mode: Subjects,
) {
    for r in &mut m.list {
        let gvk = r.gvk();
        let before = r.cur_id();
        let set = &mut |v: &mut Value| {
            let empty = v.is_null() || v.as_str() == Some("");
            if !unset_only || empty {
                *v = Value::Str(ns.to_string());
            }
        };
        if !gvk.is_cluster_scoped() {
            visit(
                &mut r.value,
                &["metadata".into(), "namespace".into()],
                true,
                Leaf::Scalar,
                set,
            );
        }
        let is_role_binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        if is_role_binding {
            if let Some(Value::Seq(subjects)) = r.value.get_mut("subjects") {
                for s in subjects {
                    if let Value::Map(sm) = s {
                        let wanted = match subjects_mode {
                            Subjects::DefaultOnly => {
                                sm.get("name").and_then(Value::as_str) == Some("default")
                            }
                            Subjects::AllServiceAccounts => {
                                sm.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                            }
                            Subjects::None => false,
                        };
                        if wanted {
                            let slot = sm.get_mut("namespace");
                            match slot {
                                Some(v) => set(v),
                                None => sm.insert("namespace", Value::Str(ns.to_string())),
                            }
                        }
                    }
                }
            }
        }
        let api_version = gvk.api_version();
        for fs in specs {
            let path = fs.path.join("/");
            // kustomize's namespace filter handles these itself (removeUnneededMetaFieldSpecs,
            // removeRoleBindingSubjectFieldSpecs).
            if path == "metadata/namespace"
                || (path == "metadata/name" && api_version != "v1")
                || (is_role_binding && path == "subjects/namespace")
            {
                continue;
            }
            if fs.selects(&gvk) {
                visit(&mut r.value, &fs.path, fs.create, Leaf::Scalar, set);
            }
        }
        // kustomize's NamespaceTransformer stores every object's previous id, changed or not
        // (so name references to it are fixed afterwards).
        r.prev_ids.push(before);
    }
}

/// kustomize's `prefixFieldSpecsToSkip` (and the suffix one), checked on the original id:
/// CustomResourceDefinition and Namespace of any group, APIService of apiregistration.k8s.io.
fn skips_rename(gvk: &crate::resource::Gvk) -> bool {
    match gvk.kind.as_str() {
        "CustomResourceDefinition" | "Namespace" => true,
        "APIService" => gvk.group == "apiregistration.k8s.io",
        _ => false,
    }
}

/// `namePrefix:` / `nameSuffix:`.
pub fn name_affix(m: &mut ResMap, prefix: &str, suffix: &str) {
    for r in &mut m.list {
        if skips_rename(&r.org_id.gvk) {
            continue;
        }
        let name = r.name().to_string();
        let new = format!("{prefix}{name}{suffix}");
        if new != name {
            r.store_prev_id();
            r.set_name(new);
        }
        if !prefix.is_empty() {
            r.prefixes.push(prefix.to_string());
        }
        if !suffix.is_empty() {
            r.suffixes.push(suffix.to_string());
        }
    }
}

/// kustomize's PrefixTransformer then SuffixTransformer (a `PrefixSuffixTransformer` plugin):
/// the prefix, then the suffix, at each field spec; `metadata/name` also renames the object
/// (recorded for name references), other fields just get the text added.
pub fn affix_fields(m: &mut ResMap, prefix: &str, suffix: &str, specs: &[FieldSpec]) {
    for (affix, is_prefix) in [(prefix, true), (suffix, false)] {
        for r in &mut m.list {
            let gvk = r.org_id.gvk.clone();
            if skips_rename(&gvk) {
                continue;
            }
            for fs in specs.iter().filter(|fs| fs.selects(&gvk)) {
                if fs.path == ["metadata", "name"] && !affix.is_empty() {
                    r.store_prev_id();
                    if is_prefix {
                        r.prefixes.push(affix.to_string());
                    } else {
                        r.suffixes.push(affix.to_string());
                    }
                }
                visit(&mut r.value, &fs.path, fs.create, Leaf::Scalar, &mut |v| {
                    let text = v.scalar_text().unwrap_or_default();
                    *v = Value::Str(if is_prefix {
                        format!("{affix}{text}")
                    } else {
                        format!("{text}{affix}")
                    });
                });
            }
        }
    }
}

/// The field specs a label transformer uses (kustomize's `commonLabels` table with
/// selectors, else `metadata/labels` plus its `templateLabels` table with templates), then
/// `extra`.
pub fn label_specs(
    include_selectors: bool,
    include_templates: bool,
    extra: &[FieldSpec],
) -> Vec<FieldSpec> {
    let mut v = if include_selectors {
        builtin_field_specs("commonLabels")
    } else if include_templates {
        builtin_field_specs("templateLabels")
    } else {
        vec![FieldSpec::new("", "", "", "metadata/labels", true)]
    };
    v.extend(extra.iter().cloned());
    v
}

/// The field specs of `commonAnnotations` (kustomize's table).
pub fn annotation_specs() -> Vec<FieldSpec> {
    builtin_field_specs("commonAnnotations")
}

/// Adds `pairs` to the maps the field specs reach.
pub fn add_map_entries(m: &mut ResMap, pairs: &[(String, String)], specs: &[FieldSpec]) {
    if pairs.is_empty() {
        return;
    }
    for r in &mut m.list {
        let gvk = r.gvk();
        for fs in specs {
            if !fs.selects(&gvk) {
                continue;
            }
            visit(&mut r.value, &fs.path, fs.create, Leaf::Map, &mut |v| {
                if let Value::Map(target) = v {
                    for (k, val) in pairs {
                        target.insert(k.clone(), Value::Str(val.clone()));
                    }
                }
            });
        }
    }
}

/// One `replicas:` entry, at kustomize's replicas field specs (built in plus
/// `configurations`). Returns false when nothing matched.
pub fn replicas(m: &mut ResMap, name: &str, count: i128, specs: &[FieldSpec]) -> bool {
    let mut found = false;
    for r in &mut m.list {
        let gvk = r.gvk();
        let matches = r.name() == name || r.prev_ids.iter().any(|p: &ResId| p.name == name);
        if !matches {
            continue;
        }
        for fs in specs.iter().filter(|fs| fs.selects(&gvk)) {
            found = true;
            visit(&mut r.value, &fs.path, fs.create, Leaf::Scalar, &mut |v| {
                *v = Value::Int(count)
            });
        }
    }
    found
}
