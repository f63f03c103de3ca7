//! kustomize's legacy output order (`SortOrderTransformer`, legacy mode).

use std::cmp::Ordering;

use crate::resource::{ResId, Resource};

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn rank(kind: &str, first: &[String], last: &[String]) -> i64 {
    if let Some(i) = first.iter().position(|k| *k == kind) {
        return i as i64 - first.len() as i64;
    }
    if let Some(i) = last.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

/// The built-in legacy order: kinds that go first, kinds that go last.
pub fn default_order() -> (Vec<String>, Vec<String>) {
    (
        ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
        ORDER_LAST.iter().map(|s| s.to_string()).collect(),
    )
}

fn gvk_string(id: &ResId) -> String {
    let g = if id.gvk.group.is_empty() {
        "~G"
    } else {
        &id.gvk.group
    };
    let v = if id.gvk.version.is_empty() {
        "~V"
    } else {
        &id.gvk.version
    };
    let k = if id.gvk.kind.is_empty() {
        "~K"
    } else {
        &id.gvk.kind
    };
    format!("{g}_{v}_{k}")
}

fn id_string(id: &ResId) -> String {
    let g = if id.gvk.group.is_empty() {
        "[noGrp]"
    } else {
        &id.gvk.group
    };
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let name = if id.name.is_empty() { "~N" } else { &id.name };
    format!("{}.{}.{}|{}|{}", id.gvk.kind, id.gvk.version, g, ns, name)
}

/// Sorts resources in place into kustomize's legacy order.
pub fn legacy(list: &mut Vec<Resource>, first: &[String], last: &[String]) {
    // (rank, GVK sort string, id sort string, core-group Namespace, resource)
    let mut keyed: Vec<(i64, String, String, bool, Resource)> = list
        .drain(..)
        .map(|r| {
            let id = r.cur_id();
            let core_namespace = id.gvk.kind == "Namespace" && id.gvk.group.is_empty();
            (
                rank(&id.gvk.kind, first, last),
                gvk_string(&id),
                id_string(&id),
                core_namespace,
                r,
            )
        })
        .collect();
    keyed.sort_by(|a, b| match a.0.cmp(&b.0) {
        Ordering::Equal => {
            if a.1 != b.1 {
                let o = a.1.as_bytes().cmp(b.1.as_bytes());
                // kustomize's gvkLessThan: between two Namespace kinds where one is the core
                // group's, the order of the GVK strings is reversed (core `v1` first).
                let both_namespaces = a.4.kind() == "Namespace" && b.4.kind() == "Namespace";
                if both_namespaces && (a.3 || b.3) {
                    o.reverse()
                } else {
                    o
                }
            } else {
                a.2.as_bytes().cmp(b.2.as_bytes())
            }
        }
        o => o,
    });
    list.extend(keyed.into_iter().map(|k| k.4));
}
