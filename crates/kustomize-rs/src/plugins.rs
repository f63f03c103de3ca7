//! kustomize's builtin plugins used as configuration objects in `generators:` and
//! `transformers:` (`apiVersion: builtin`, `kind: LabelTransformer`, ...). Each configuration
//! maps onto the kustomization field that configures the same plugin, or onto a transformer
//! with the configuration's own field specs.

use std::path::Path;

use crate::error::{Error, Location, Result};
use crate::fieldspec::FieldSpec;
use crate::yaml::{Document, Map, Value};

/// What one plugin configuration asks for.
pub enum Plugin {
    /// A kustomization fragment (generators, patches, replacements, replicas, images).
    Fields(Box<crate::kustomization::Kustomization>, Vec<FieldSpec>),
    /// Labels or annotations added at the configuration's field specs.
    MapEntries(Vec<(String, String)>, Vec<FieldSpec>),
    /// A namespace set at the configuration's field specs (`unsetOnly`, subjects mode).
    Namespace(
        String,
        Vec<FieldSpec>,
        bool,
        crate::transform::meta::Subjects,
    ),
    /// A prefix and suffix at the configuration's field specs.
    Affix(String, String, Vec<FieldSpec>),
}

fn unsupported(at: &Location, what: String) -> Error {
    Error::Unsupported {
        at: at.clone(),
        what,
    }
}

/// Reads one configuration object.
pub fn parse(cfg: &Value, file: &Path, dir: &Path, line: usize) -> Result<Plugin> {
    let at = Location::at(file, line);
    let api_version = cfg.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != "builtin" {
        return Err(unsupported(
            &at,
            format!(
                "generator/transformer plugin {kind} ({api_version}); only kustomize's builtin plugins are"
            ),
        ));
    }
    let Value::Map(m) = cfg else {
        return Err(Error::Invalid {
            at,
            message: "a plugin configuration must be a mapping".into(),
        });
    };
    let specs = || -> Vec<FieldSpec> {
        m.get("fieldSpecs")
            .and_then(Value::as_seq)
            .map(|s| s.iter().map(crate::build::field_spec_of).collect())
            .unwrap_or_default()
    };
    let pairs = |field: &str| -> Vec<(String, String)> {
        match m.get(field) {
            Some(Value::Map(p)) => p
                .iter()
                .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        }
    };
    let str_of = |field: &str| {
        m.get(field)
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    };
    let meta = |field: &str| {
        m.get("metadata")
            .and_then(|x| x.get(field))
            .and_then(Value::scalar_text)
            .unwrap_or_default()
    };
    let fragment = |field: &str, value: Value| -> Result<Plugin> {
        let mut doc = Map::new();
        doc.insert(field, value);
        let d = Document {
            value: Value::Map(doc),
            key_lines: vec![(field.to_string(), line)],
            item_lines: Vec::new(),
            line,
        };
        Ok(Plugin::Fields(
            Box::new(crate::kustomization::from_document(&d, file, dir)?),
            specs(),
        ))
    };
    let without = |drop: &[&str]| -> Map {
        let mut out = Map::new();
        for (k, v) in m.iter() {
            if !drop.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    };
    match kind {
        "ConfigMapGenerator" | "SecretGenerator" => {
            let mut g = without(&["apiVersion", "kind", "metadata"]);
            g.insert("name", Value::Str(meta("name")));
            let ns = meta("namespace");
            if !ns.is_empty() {
                g.insert("namespace", Value::Str(ns));
            }
            let field = if kind == "ConfigMapGenerator" {
                "configMapGenerator"
            } else {
                "secretGenerator"
            };
            fragment(field, Value::Seq(vec![Value::Map(g)]))
        }
        "PatchTransformer" => {
            let p = without(&["apiVersion", "kind", "metadata"]);
            fragment("patches", Value::Seq(vec![Value::Map(p)]))
        }
        "PatchStrategicMergeTransformer" => {
            let mut items: Vec<Value> = m
                .get("paths")
                .and_then(Value::as_seq)
                .cloned()
                .unwrap_or_default();
            if let Some(p) = m.get("patches") {
                items.push(p.clone());
            }
            fragment("patchesStrategicMerge", Value::Seq(items))
        }
        "PatchJson6902Transformer" => {
            let mut p = without(&["apiVersion", "kind", "metadata", "jsonOp"]);
            if let Some(op) = m.get("jsonOp") {
                p.insert("patch", op.clone());
            }
            fragment("patchesJson6902", Value::Seq(vec![Value::Map(p)]))
        }
        "ReplacementTransformer" => fragment(
            "replacements",
            m.get("replacements")
                .cloned()
                .unwrap_or(Value::Seq(Vec::new())),
        ),
        "ReplicaCountTransformer" => fragment(
            "replicas",
            Value::Seq(m.get("replica").cloned().into_iter().collect()),
        ),
        "ImageTagTransformer" => fragment(
            "images",
            Value::Seq(m.get("imageTag").cloned().into_iter().collect()),
        ),
        "LabelTransformer" => Ok(Plugin::MapEntries(pairs("labels"), specs())),
        "AnnotationsTransformer" => Ok(Plugin::MapEntries(pairs("annotations"), specs())),
        "NamespaceTransformer" => {
            use crate::transform::meta::Subjects;
            let unset_only =
                m.get("unsetOnly").and_then(Value::scalar_text).as_deref() == Some("true");
            let subjects = match str_of("setRoleBindingSubjects").as_str() {
                "" | "defaultOnly" => Subjects::DefaultOnly,
                "allServiceAccounts" => Subjects::AllServiceAccounts,
                "none" => Subjects::None,
                other => {
                    return Err(Error::Invalid {
                        at,
                        message: format!(
                            "invalid value {other:?} for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
                        ),
                    });
                }
            };
            Ok(Plugin::Namespace(
                meta("namespace"),
                specs(),
                unset_only,
                subjects,
            ))
        }
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            if m.get("fieldSpecs").is_none_or(Value::is_null) {
                return Err(Error::Invalid {
                    at,
                    message: format!("{kind}: fieldSpecs is not expected to be nil"),
                });
            }
            let (prefix, suffix) = match kind {
                "PrefixTransformer" => (str_of("prefix"), String::new()),
                "SuffixTransformer" => (String::new(), str_of("suffix")),
                _ => (str_of("prefix"), str_of("suffix")),
            };
            Ok(Plugin::Affix(prefix, suffix, specs()))
        }
        other => Err(unsupported(&at, format!("the builtin plugin {other}"))),
    }
}
