//! The metadata transformers: namespace, name prefix/suffix, labels, annotations, replicas.

use crate::fieldspec::{FieldSpec, Leaf, visit};
use crate::resource::{ResId, ResMap};
use crate::yaml::Value;

/// `namespace:`, with kustomize's namespace field specs (built in plus `configurations`).
pub fn namespace(m: &mut ResMap, ns: &str, specs: &[FieldSpec]) {
    for r in &mut m.list {
        let gvk = r.gvk();
        let before = r.cur_id();
        let set = &mut |v: &mut Value| *v = Value::Str(ns.to_string());
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
                        if sm.get("name").and_then(Value::as_str) == Some("default") {
                            sm.insert("namespace", Value::Str(ns.to_string()));
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

fn skips_rename(kind: &str) -> bool {
    matches!(
        kind,
        "CustomResourceDefinition" | "APIService" | "Namespace"
    )
}

/// `namePrefix:` / `nameSuffix:`.
pub fn name_affix(m: &mut ResMap, prefix: &str, suffix: &str) {
    for r in &mut m.list {
        if skips_rename(r.kind()) {
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

/// The pod-template label field specs (kustomize's `metadataLabels`, less `metadata/labels`).
fn template_label_specs() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new(
            "",
            "v1",
            "ReplicationController",
            "spec/template/metadata/labels",
            true,
        ),
        FieldSpec::new("", "", "Deployment", "spec/template/metadata/labels", true),
        FieldSpec::new("", "", "ReplicaSet", "spec/template/metadata/labels", true),
        FieldSpec::new("", "", "DaemonSet", "spec/template/metadata/labels", true),
        FieldSpec::new(
            "apps",
            "",
            "StatefulSet",
            "spec/template/metadata/labels",
            true,
        ),
        FieldSpec::new("batch", "", "Job", "spec/template/metadata/labels", true),
        FieldSpec::new(
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/metadata/labels",
            true,
        ),
        FieldSpec::new(
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/spec/template/metadata/labels",
            true,
        ),
    ]
}

/// The selector field specs of `commonLabels` (kustomize's `commonLabels` list).
fn selector_specs() -> Vec<FieldSpec> {
    let mut v = vec![
        FieldSpec::new("", "v1", "Service", "spec/selector", true),
        FieldSpec::new("", "v1", "ReplicationController", "spec/selector", true),
        FieldSpec::new("", "", "Deployment", "spec/selector/matchLabels", true),
    ];
    let affinity = [
        "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
        "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
    ];
    for p in affinity {
        v.push(FieldSpec::new("apps", "", "Deployment", p, false));
    }
    v.push(FieldSpec::new(
        "",
        "",
        "ReplicaSet",
        "spec/selector/matchLabels",
        true,
    ));
    v.push(FieldSpec::new(
        "",
        "",
        "DaemonSet",
        "spec/selector/matchLabels",
        true,
    ));
    v.push(FieldSpec::new(
        "apps",
        "",
        "StatefulSet",
        "spec/selector/matchLabels",
        true,
    ));
    v.push(FieldSpec::new(
        "apps",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates[]/metadata/labels",
        true,
    ));
    for p in affinity {
        v.push(FieldSpec::new("apps", "", "StatefulSet", p, false));
    }
    v.push(FieldSpec::new(
        "batch",
        "",
        "Job",
        "spec/selector/matchLabels",
        false,
    ));
    v.push(FieldSpec::new(
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/selector/matchLabels",
        false,
    ));
    v.push(FieldSpec::new(
        "policy",
        "",
        "PodDisruptionBudget",
        "spec/selector/matchLabels",
        false,
    ));
    v.push(FieldSpec::new(
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/podSelector/matchLabels",
        false,
    ));
    v.push(FieldSpec::new(
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/ingress/from/podSelector/matchLabels",
        false,
    ));
    v.push(FieldSpec::new(
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/egress/to/podSelector/matchLabels",
        false,
    ));
    v
}

/// The field specs a label transformer uses.
pub fn label_specs(
    include_selectors: bool,
    include_templates: bool,
    extra: &[FieldSpec],
) -> Vec<FieldSpec> {
    let mut v = vec![FieldSpec::new("", "", "", "metadata/labels", true)];
    if include_selectors {
        v.extend(selector_specs());
        v.extend(template_label_specs());
    } else if include_templates {
        v.extend(template_label_specs());
    }
    v.extend(extra.iter().cloned());
    v
}

/// The field specs of `commonAnnotations`.
pub fn annotation_specs() -> Vec<FieldSpec> {
    let mut v = vec![FieldSpec::new("", "", "", "metadata/annotations", true)];
    for s in template_label_specs() {
        let path: Vec<String> = s
            .path
            .iter()
            .map(|p| {
                if p == "labels" {
                    "annotations".to_string()
                } else {
                    p.clone()
                }
            })
            .collect();
        v.push(FieldSpec { path, ..s });
    }
    v
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
