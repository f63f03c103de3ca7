//! Accumulation: resources depth first, generators, components, then the transformers in
//! kustomize's fixed order (kustomize's `KustTarget`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::fieldspec::FieldSpec;
use crate::kustomization::{self, Kustomization, PatchSpec};
use crate::loader;
use crate::resource::{Behavior, ResMap, Resource};
use crate::transform::{generate, images, meta, patch_json, patch_sm, select};
use crate::yaml::{Map, Typing, Value, parse_documents_with};

/// Resources plus the transformer configuration that travels with them.
#[derive(Default)]
pub struct Accumulator {
    /// The resources.
    pub resources: ResMap,
    /// Current ids, for the duplicate check.
    ids: HashSet<(crate::resource::Gvk, String, String)>,
    /// Field specs added by `configurations` (merged up from bases).
    pub config: TransformerConfig,
    /// `vars` of this kustomization and its bases.
    pub vars: Vec<crate::transform::vars::Var>,
}

impl Accumulator {
    fn rebuild_ids(&mut self) {
        self.ids = self
            .resources
            .list
            .iter()
            .map(|r| r.cur_id().key())
            .collect();
    }

    fn append(&mut self, r: Resource, at: &Location) -> Result<()> {
        let id = r.cur_id();
        if !self.ids.insert(id.key()) {
            return Err(Error::DuplicateId {
                at: at.clone(),
                id: id.to_string(),
            });
        }
        self.resources.list.push(r);
        Ok(())
    }
}

/// Walks kustomizations, remembering the chain to detect cycles.
pub struct Builder {
    stack: Vec<PathBuf>,
    /// Warnings kubectl would print, in the order it prints them.
    pub warnings: Vec<crate::Warning>,
    /// The custom OpenAPI schema of the first kustomization that names one (`openapi.path`);
    /// like kustomize's global schema, it is set once per build.
    custom_schema: Option<crate::openapi::Schema>,
}

impl Builder {
    /// A builder.
    pub fn new() -> Self {
        Builder {
            stack: Vec::new(),
            warnings: Vec::new(),
            custom_schema: None,
        }
    }

    /// Builds the kustomization in `dir` into an accumulator (no hash, no name references).
    pub fn accumulate_dir(
        &mut self,
        dir: &Path,
        at: Option<&Location>,
    ) -> Result<(Kustomization, Accumulator)> {
        let real = std::fs::canonicalize(dir).map_err(|source| match at {
            Some(at) => Error::NotFound {
                at: at.clone(),
                entry: dir.display().to_string(),
            },
            None => Error::Read {
                at: Location::file(dir),
                source,
            },
        })?;
        if self.stack.contains(&real) {
            let mut chain: Vec<String> =
                self.stack.iter().map(|p| p.display().to_string()).collect();
            chain.push(real.display().to_string());
            return Err(Error::Cycle {
                at: at.cloned().unwrap_or_else(|| Location::file(&real)),
                chain: chain.join(" -> "),
            });
        }
        let k = kustomization::load(&real)?;
        self.note_deprecations(&k);
        self.load_openapi(&k)?;
        if k.is_component {
            if let Some(at) = at {
                return Err(Error::Invalid {
                    at: at.clone(),
                    message: format!(
                        "'{}' is a Component; list it under 'components', not 'resources'",
                        dir.display()
                    ),
                });
            }
        }
        self.stack.push(real);
        let mut acc = Accumulator::default();
        let r = self.run(&k, &mut acc);
        self.stack.pop();
        r?;
        Ok((k, acc))
    }

    /// `generators:` / `transformers:`: kustomize's builtin plugins as configuration objects
    /// (files, or inline YAML), run in order after the kustomization's own.
    fn run_plugins(
        &mut self,
        k: &Kustomization,
        entries: &[kustomization::Entry],
        acc: &mut Accumulator,
    ) -> Result<()> {
        use crate::plugins::Plugin;
        // kustomize loads the inline configurations first, then the files, each in order.
        let (inline, files): (Vec<&kustomization::Entry>, Vec<&kustomization::Entry>) =
            entries.iter().partition(|e| e.text.contains('\n'));
        for e in inline.into_iter().chain(files) {
            let at = k.at(e.line);
            let (file, text, line0) = if e.text.contains('\n') {
                (k.path.clone(), e.text.clone(), e.line)
            } else {
                if k.dir.join(&e.text).is_dir() {
                    return Err(Error::Unsupported {
                        at,
                        what: format!(
                            "a kustomization directory ('{}') as a plugin source",
                            e.text
                        ),
                    });
                }
                let (f, t) = loader::read_text(&k.dir, &e.text, &at)?;
                (f, t, 0)
            };
            let docs = parse_documents_with(&text, Typing::V2)
                .map_err(|err| Error::yaml(&file, line0, err))?;
            for d in docs.into_iter().filter(|d| !d.value.is_null()) {
                match crate::plugins::parse(&d.value, &file, &k.dir, line0 + d.line)? {
                    Plugin::Fields(mut fk, specs) => {
                        for g in &fk.config_maps {
                            self.generate(&fk, g, generate::GenKind::ConfigMap, acc)?;
                        }
                        for g in &fk.secrets {
                            self.generate(&fk, g, generate::GenKind::Secret, acc)?;
                        }
                        fk.config_maps.clear();
                        fk.secrets.clear();
                        if !fk.images.is_empty() {
                            let rules: Vec<images::ImageRule> = fk
                                .images
                                .iter()
                                .map(|(s, _)| images::ImageRule::new(s.clone()))
                                .collect();
                            images::transform(&mut acc.resources, &rules, &specs);
                            fk.images.clear();
                        }
                        self.transform(&fk, acc)?;
                    }
                    Plugin::MapEntries(pairs, specs) => {
                        meta::add_map_entries(&mut acc.resources, &pairs, &specs);
                    }
                    Plugin::Namespace(ns, specs, unset_only, subjects) => {
                        if !ns.is_empty() {
                            meta::namespace_with(
                                &mut acc.resources,
                                &ns,
                                &specs,
                                unset_only,
                                subjects,
                            );
                        }
                        acc.rebuild_ids();
                    }
                    Plugin::Affix(prefix, suffix, specs) => {
                        meta::affix_fields(&mut acc.resources, &prefix, &suffix, &specs);
                        acc.rebuild_ids();
                    }
                }
            }
        }
        Ok(())
    }

    fn schemas(&self) -> crate::openapi::Schemas<'_> {
        crate::openapi::Schemas {
            custom: self.custom_schema.as_ref(),
        }
    }

    /// kustomize's `openapi.SetSchema`: the first `openapi.path` met wins.
    fn load_openapi(&mut self, k: &Kustomization) -> Result<()> {
        let Some((rel, line)) = &k.openapi_path else {
            return Ok(());
        };
        if self.custom_schema.is_some() {
            return Ok(());
        }
        let (path, text) = loader::read_text(&k.dir, rel, &k.at(*line))?;
        let docs = parse_documents_with(&text, Typing::V3).map_err(|e| Error::yaml(&path, 0, e))?;
        let doc = docs
            .into_iter()
            .next()
            .map(|d| d.value)
            .unwrap_or(Value::Null);
        self.custom_schema = Some(crate::openapi::Schema::from_document(&doc));
        Ok(())
    }

    fn note_deprecations(&mut self, k: &Kustomization) {
        for (field, line) in &k.deprecated {
            self.warnings.push(crate::Warning {
                at: k.at(*line),
                field: (*field).to_string(),
                message: kustomization::deprecation_message(field),
            });
        }
    }

    fn run(&mut self, k: &Kustomization, acc: &mut Accumulator) -> Result<()> {
        // 1. resources, depth first
        for e in &k.resources {
            let at = k.at(e.line);
            if e.text.contains("://")
                || e.text.starts_with("github.com/")
                || e.text.starts_with("git@")
            {
                return Err(Error::Unsupported {
                    at,
                    what: format!("remote resource '{}'", e.text),
                });
            }
            let joined = k.dir.join(&e.text);
            if joined.is_dir() {
                if Path::new(&e.text).is_absolute() {
                    return Err(Error::AbsoluteRoot { at, dir: joined });
                }
                let (_, sub) = self.accumulate_dir(&joined, Some(&at))?;
                acc.config.merge(sub.config);
                crate::transform::vars::merge_set(&mut acc.vars, sub.vars)?;
                for r in sub.resources.list {
                    acc.append(r, &at)?;
                }
            } else {
                let (path, text) = loader::read_text(&k.dir, &e.text, &at)?;
                for r in parse_resources(&text, &path)? {
                    acc.append(r, &at)?;
                }
            }
        }
        // 2. configurations
        for e in &k.configurations {
            let at = k.at(e.line);
            let (path, text) = loader::read_text(&k.dir, &e.text, &at)?;
            load_configuration(&text, &path, acc)?;
        }
        if !k.crds.is_empty() {
            return Err(Error::Unsupported {
                at: k.at(k.crds[0].line),
                what: "the `crds` field".into(),
            });
        }
        // 3. generators
        for g in &k.config_maps {
            self.generate(k, g, generate::GenKind::ConfigMap, acc)?;
        }
        for g in &k.secrets {
            self.generate(k, g, generate::GenKind::Secret, acc)?;
        }
        self.run_plugins(k, &k.generators, acc)?;
        // 4. components, on this accumulator
        for e in &k.components {
            let at = k.at(e.line);
            let dir = k.dir.join(&e.text);
            if !dir.is_dir() {
                return Err(Error::NotFound {
                    at,
                    entry: e.text.clone(),
                });
            }
            if Path::new(&e.text).is_absolute() {
                return Err(Error::AbsoluteRoot { at, dir });
            }
            let real = std::fs::canonicalize(&dir).map_err(|source| Error::Read {
                at: at.clone(),
                source,
            })?;
            if self.stack.contains(&real) {
                return Err(Error::Cycle {
                    at,
                    chain: format!("{} includes itself", real.display()),
                });
            }
            let ck = kustomization::load(&real)?;
            self.note_deprecations(&ck);
            self.load_openapi(&ck)?;
            if !ck.is_component {
                return Err(Error::Invalid {
                    at,
                    message: format!("'{}' is not a Component (kind: Component)", e.text),
                });
            }
            self.stack.push(real);
            let r = self.run(&ck, acc);
            self.stack.pop();
            r?;
        }
        // 5. transformers
        self.transform(k, acc)?;
        self.run_plugins(k, &k.transformers, acc)?;
        // 6. vars, attached to the objects they name (resolved once, after name references)
        crate::transform::vars::merge(&mut acc.resources, &mut acc.vars, &k.vars)
    }

    fn generate(
        &mut self,
        k: &Kustomization,
        g: &crate::kustomization::GeneratorSpec,
        kind: generate::GenKind,
        acc: &mut Accumulator,
    ) -> Result<()> {
        let at = k.at(g.line);
        let (r, behavior) = generate::generate(k, g, kind)?;
        let id = r.cur_id();
        match behavior {
            Behavior::Create => acc.append(r, &at),
            Behavior::Merge | Behavior::Replace => {
                let found = acc.resources.find_by_any_id(&id);
                if found.len() != 1 {
                    return Err(Error::Transform {
                        at,
                        message: format!(
                            "id {id} does not exist; cannot merge or replace (found {} matches)",
                            found.len()
                        ),
                    });
                }
                let old = &mut acc.resources.list[found[0]];
                let name = old.name().to_string();
                let ns = old.namespace().to_string();
                let keep_hash = old.needs_hash && r.needs_hash;
                if behavior == Behavior::Merge {
                    let new = r.value;
                    let om = old.map_mut();
                    for field in ["data", "binaryData"] {
                        if let Some(Value::Map(nd)) = new.get(field) {
                            let od = om.entry_map(field);
                            for (k, v) in nd.iter() {
                                od.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    for field in ["labels", "annotations"] {
                        if let Some(Value::Map(nd)) = new.path(&["metadata", field]) {
                            let od = om.entry_map("metadata").entry_map(field);
                            for (k, v) in nd.iter() {
                                od.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    if let Some(v) = new.get("immutable") {
                        om.insert("immutable", v.clone());
                    }
                } else {
                    // kustomize's CopyMergeMetaDataFieldsFrom: the replacement keeps the old
                    // object's labels and annotations under its own.
                    let kept: Vec<(&str, Map)> = ["labels", "annotations"]
                        .into_iter()
                        .filter_map(|f| match old.value.path(&["metadata", f]) {
                            Some(Value::Map(m)) if !m.is_empty() => Some((f, m.clone())),
                            _ => None,
                        })
                        .collect();
                    old.value = r.value;
                    for (field, mut merged) in kept {
                        if let Some(Value::Map(new)) = old.value.path(&["metadata", field]) {
                            for (k, v) in new.iter() {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        old.map_mut()
                            .entry_map("metadata")
                            .insert(field, Value::Map(merged));
                    }
                    let meta = old.map_mut().entry_map("metadata");
                    meta.insert("name", Value::Str(name));
                    if !ns.is_empty() {
                        meta.insert("namespace", Value::Str(ns));
                    }
                }
                old.needs_hash = keep_hash;
                Ok(())
            }
        }
    }

    fn transform(&mut self, k: &Kustomization, acc: &mut Accumulator) -> Result<()> {
        for p in &k.patches_sm {
            self.patch(k, p, acc, true)?;
        }
        for p in &k.patches {
            self.patch(k, p, acc, false)?;
        }
        if let Some(ns) = &k.namespace {
            if !ns.is_empty() {
                let mut specs = builtin_field_specs("namespace");
                specs.extend(acc.config.namespace.iter().cloned());
                meta::namespace(&mut acc.resources, ns, &specs);
            }
        }
        if let Some(prefix) = k.name_prefix.as_deref().filter(|p| !p.is_empty()) {
            meta::name_affix(&mut acc.resources, prefix, "");
            // `configurations` may name more fields that take the prefix.
            meta::affix_fields(&mut acc.resources, prefix, "", &acc.config.name_prefix);
        }
        if let Some(suffix) = k.name_suffix.as_deref().filter(|p| !p.is_empty()) {
            meta::name_affix(&mut acc.resources, "", suffix);
            meta::affix_fields(&mut acc.resources, "", suffix, &acc.config.name_suffix);
        }
        for l in &k.labels {
            let mut extra = l.fields.clone();
            if l.include_selectors {
                extra.extend(acc.config.common_labels.iter().cloned());
            } else if l.include_templates {
                extra.extend(acc.config.template_labels.iter().cloned());
            }
            let specs = meta::label_specs(l.include_selectors, l.include_templates, &extra);
            meta::add_map_entries(&mut acc.resources, &l.pairs, &specs);
        }
        if !k.common_labels.is_empty() {
            let specs = meta::label_specs(true, true, &acc.config.common_labels);
            meta::add_map_entries(&mut acc.resources, &k.common_labels, &specs);
        }
        if !k.common_annotations.is_empty() {
            let mut specs = meta::annotation_specs();
            specs.extend(acc.config.common_annotations.iter().cloned());
            meta::add_map_entries(&mut acc.resources, &k.common_annotations, &specs);
        }
        for p in &k.patches_json {
            self.patch(k, p, acc, false)?;
        }
        let replica_specs = if k.replicas.is_empty() {
            Vec::new()
        } else {
            let mut specs = builtin_field_specs("replicas");
            specs.extend(acc.config.replicas.iter().cloned());
            specs
        };
        for (name, count, line) in &k.replicas {
            if !meta::replicas(&mut acc.resources, name, *count, &replica_specs) {
                return Err(Error::Transform {
                    at: k.at(*line),
                    message: format!(
                        "replicas: no Deployment, ReplicationController, ReplicaSet or StatefulSet named '{name}'"
                    ),
                });
            }
        }
        if !k.images.is_empty() {
            let rules: Vec<images::ImageRule> = k
                .images
                .iter()
                .map(|(s, _)| images::ImageRule::new(s.clone()))
                .collect();
            images::transform(&mut acc.resources, &rules, &acc.config.images);
        }
        for (r, line) in &k.replacements {
            crate::transform::replacements::apply(&mut acc.resources, r).map_err(|message| {
                Error::Transform {
                    at: k.at(*line),
                    message,
                }
            })?;
        }
        acc.rebuild_ids();
        Ok(())
    }

    fn patch(
        &mut self,
        k: &Kustomization,
        p: &PatchSpec,
        acc: &mut Accumulator,
        legacy_sm: bool,
    ) -> Result<()> {
        let at = k.at(p.line);
        let (text, source) = match (&p.path, &p.patch) {
            (Some(path), _) => {
                let (real, text) = loader::read_text(&k.dir, path, &at)?;
                (text, Location::file(real))
            }
            (None, Some(inline)) => (inline.clone(), at.clone()),
            (None, None) => {
                return Err(Error::Invalid {
                    at,
                    message: "empty patch".into(),
                });
            }
        };
        let yaml_err =
            |e: crate::yaml::SyntaxError| Error::yaml(&source.path, source.line.unwrap_or(0), e);
        let docs = parse_documents_with(&text, Typing::V3).map_err(yaml_err)?;
        let docs: Vec<Value> = docs
            .into_iter()
            .map(|d| d.value)
            .filter(|v| !v.is_null())
            .collect();
        let is_json = !legacy_sm && docs.len() == 1 && matches!(docs[0], Value::Seq(_));
        if is_json {
            let v2 = parse_documents_with(&text, Typing::V2).map_err(yaml_err)?;
            let ops = patch_json::parse_ops(&v2[0].value).map_err(|message| Error::Transform {
                at: at.clone(),
                message,
            })?;
            let Some(target) = &p.target else {
                return Err(Error::Transform {
                    at,
                    message: "must specify a target for JSON 6902 patch".into(),
                });
            };
            let t = select::Target::new(target).map_err(|message| Error::Transform {
                at: at.clone(),
                message,
            })?;
            for r in acc.resources.list.iter_mut() {
                if !t.selects(r) {
                    continue;
                }
                // kustomize's PatchTransformer stores the previous id of every target.
                r.store_prev_id();
                patch_json::apply(&mut r.value, &ops).map_err(|e| Error::Transform {
                    at: at.clone(),
                    message: format!("patch failed on {}: {e}", r.cur_id()),
                })?;
                if !matches!(r.value, Value::Map(_)) {
                    return Err(Error::Transform {
                        at: at.clone(),
                        message: "a JSON 6902 patch turned a resource into something other than a mapping".into(),
                    });
                }
            }
            acc.rebuild_ids();
            return Ok(());
        }
        for doc in docs {
            if !matches!(doc, Value::Map(_)) {
                return Err(Error::Transform {
                    at,
                    message: "a strategic-merge patch must be a mapping".into(),
                });
            }
            let mut delete = Vec::new();
            match &p.target {
                None => {
                    let pr = Resource::new(doc.clone());
                    let id = pr.cur_id();
                    let found = acc.resources.find_by_any_id(&id);
                    if found.is_empty() {
                        return Err(Error::Transform {
                            at: at.clone(),
                            message: format!("no resource matches strategic merge patch \"{id}\""),
                        });
                    }
                    if found.len() > 1 {
                        return Err(Error::Transform {
                            at: at.clone(),
                            message: format!(
                                "multiple resources match strategic merge patch \"{id}\""
                            ),
                        });
                    }
                    let r = &mut acc.resources.list[found[0]];
                    let gvk = r.gvk();
                    let mut patch = doc;
                    // The patch names the object by an id it may have had; keep the current one.
                    if let Some(m) = patch.get_mut("metadata").and_then(Value::as_map_mut) {
                        m.insert("name", Value::Str(r.name().to_string()));
                        if !r.namespace().is_empty() {
                            m.insert("namespace", Value::Str(r.namespace().to_string()));
                        }
                    }
                    if let patch_sm::Patched::Deleted =
                        patch_sm::apply(&mut r.value, &patch, &gvk, self.schemas())
                    {
                        delete.push(found[0]);
                    }
                }
                Some(target) => {
                    let t = select::Target::new(target).map_err(|message| Error::Transform {
                        at: at.clone(),
                        message,
                    })?;
                    for (i, r) in acc.resources.list.iter_mut().enumerate() {
                        if !t.selects(r) {
                            continue;
                        }
                        let gvk = r.gvk();
                        let mut patch = doc.clone();
                        if let Some(pm) = patch.as_map_mut() {
                            if !p.allow_kind_change {
                                if pm.contains_key("kind") {
                                    pm.insert("kind", Value::Str(gvk.kind.clone()));
                                }
                                if pm.contains_key("apiVersion") {
                                    pm.insert("apiVersion", Value::Str(gvk.api_version()));
                                }
                            }
                            if let Some(Value::Map(meta)) = pm.get_mut("metadata") {
                                if !p.allow_name_change && meta.contains_key("name") {
                                    meta.insert("name", Value::Str(r.name().to_string()));
                                }
                                if meta.contains_key("namespace") {
                                    meta.insert("namespace", Value::Str(r.namespace().to_string()));
                                }
                            }
                        }
                        if let patch_sm::Patched::Deleted =
                            patch_sm::apply(&mut r.value, &patch, &gvk, self.schemas())
                        {
                            delete.push(i);
                        }
                    }
                }
            }
            for i in delete.into_iter().rev() {
                acc.resources.list.remove(i);
            }
            acc.rebuild_ids();
        }
        Ok(())
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses a resource file: every non-empty document, `List` kinds expanded.
pub fn parse_resources(text: &str, path: &Path) -> Result<Vec<Resource>> {
    let docs = parse_documents_with(text, Typing::V3).map_err(|e| Error::yaml(path, 0, e))?;
    let mut out = Vec::new();
    for d in docs {
        match d.value {
            Value::Null | Value::EmptyNull => {}
            Value::Map(m) => {
                let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
                if kind.ends_with("List") && m.get("items").is_some() {
                    if let Some(Value::Seq(items)) = m.get("items") {
                        for item in items {
                            out.push(check_resource(item.clone(), path, d.line)?);
                        }
                    }
                    continue;
                }
                out.push(check_resource(Value::Map(m), path, d.line)?);
            }
            _ => {
                return Err(Error::Invalid {
                    at: Location::at(path, d.line),
                    message: "a resource document must be a mapping".into(),
                });
            }
        }
    }
    Ok(out)
}

fn check_resource(v: Value, path: &Path, line: usize) -> Result<Resource> {
    let at = Location::at(path, line);
    if v.path_str(&["kind"]).is_none_or(str::is_empty) {
        return Err(Error::Invalid {
            at,
            message: "missing kind in resource".into(),
        });
    }
    if v.path_str(&["metadata", "name"]).is_none_or(str::is_empty) {
        return Err(Error::Invalid {
            at,
            message: "missing metadata.name in resource".into(),
        });
    }
    Ok(Resource::new(v))
}

/// Field specs a kustomization adds through `configurations:`.
#[derive(Default, Clone)]
pub struct TransformerConfig {
    /// `images:` field specs.
    pub images: Vec<FieldSpec>,
    /// `commonLabels:` field specs (also used by `labels` with `includeSelectors`).
    pub common_labels: Vec<FieldSpec>,
    /// `commonAnnotations:` field specs.
    pub common_annotations: Vec<FieldSpec>,
    /// `nameReference:` rules: (referred group, version, kind) and where it is referred to.
    pub name_references: Vec<(crate::resource::Gvk, FieldSpec)>,
    /// `namespace:` field specs (where the namespace transformer also writes).
    pub namespace: Vec<FieldSpec>,
    /// `varReference:` field specs (where `$(VAR)` is expanded).
    pub var_reference: Vec<FieldSpec>,
    /// `replicas:` field specs (where `replicas:` entries write the count).
    pub replicas: Vec<FieldSpec>,
    /// `templateLabels:` field specs (`labels` with `includeTemplates`).
    pub template_labels: Vec<FieldSpec>,
    /// `namePrefix:` field specs besides kustomize's `metadata/name`.
    pub name_prefix: Vec<FieldSpec>,
    /// `nameSuffix:` field specs besides kustomize's `metadata/name`.
    pub name_suffix: Vec<FieldSpec>,
}

/// kustomize's built-in transformer configuration, kept as data (`builtin/fieldspecs.yaml`).
const BUILTIN_FIELDSPECS: &str = include_str!("builtin/fieldspecs.yaml");

/// The built-in `nameReference` rules: (referred group/version/kind, where it is referred to).
pub fn builtin_name_references() -> &'static [(crate::resource::Gvk, FieldSpec)] {
    static RULES: std::sync::OnceLock<Vec<(crate::resource::Gvk, FieldSpec)>> =
        std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let docs = parse_documents_with(BUILTIN_FIELDSPECS, Typing::Raw)
            .expect("builtin/fieldspecs.yaml is valid YAML");
        let mut out = Vec::new();
        for item in docs
            .iter()
            .filter_map(|d| d.value.get("nameReference"))
            .filter_map(Value::as_seq)
            .flatten()
        {
            let get = |f: &str| item.get(f).and_then(Value::scalar_text).unwrap_or_default();
            let target = crate::resource::Gvk {
                group: get("group"),
                version: get("version"),
                kind: get("kind"),
            };
            for fs in item
                .get("fieldSpecs")
                .and_then(Value::as_seq)
                .into_iter()
                .flatten()
            {
                out.push((target.clone(), field_spec_of(fs)));
            }
        }
        out
    })
}

/// The built-in field specs of one section of `builtin/fieldspecs.yaml` (e.g. `varReference`).
pub fn builtin_field_specs(section: &str) -> Vec<FieldSpec> {
    static SECTIONS: std::sync::OnceLock<Vec<(String, Vec<FieldSpec>)>> =
        std::sync::OnceLock::new();
    let sections = SECTIONS.get_or_init(|| {
        let docs = parse_documents_with(BUILTIN_FIELDSPECS, Typing::Raw)
            .expect("builtin/fieldspecs.yaml is valid YAML");
        let mut out: Vec<(String, Vec<FieldSpec>)> = Vec::new();
        for d in &docs {
            let Some(m) = d.value.as_map() else { continue };
            for (key, v) in m.iter() {
                let specs = v
                    .as_seq()
                    .into_iter()
                    .flatten()
                    .map(field_spec_of)
                    .collect();
                out.push((key.clone(), specs));
            }
        }
        out
    });
    sections
        .iter()
        .filter(|(k, _)| k == section)
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

impl TransformerConfig {
    fn merge(&mut self, other: TransformerConfig) {
        fn add<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
            for x in from {
                if !into.contains(&x) {
                    into.push(x);
                }
            }
        }
        add(&mut self.images, other.images);
        add(&mut self.common_labels, other.common_labels);
        add(&mut self.common_annotations, other.common_annotations);
        add(&mut self.name_references, other.name_references);
        add(&mut self.namespace, other.namespace);
        add(&mut self.var_reference, other.var_reference);
        add(&mut self.replicas, other.replicas);
        add(&mut self.template_labels, other.template_labels);
        add(&mut self.name_prefix, other.name_prefix);
        add(&mut self.name_suffix, other.name_suffix);
    }
}

pub(crate) fn field_spec_of(item: &Value) -> FieldSpec {
    // Raw (configurations) or YAML 1.1-typed (plugin configurations) scalars alike.
    let get = |f: &str| item.get(f).and_then(Value::scalar_text).unwrap_or_default();
    FieldSpec::new(
        &get("group"),
        &get("version"),
        &get("kind"),
        &get("path"),
        get("create") == "true",
    )
}

fn load_configuration(text: &str, path: &Path, acc: &mut Accumulator) -> Result<()> {
    let docs = parse_documents_with(text, Typing::Raw).map_err(|e| Error::yaml(path, 0, e))?;
    let mut config = TransformerConfig::default();
    for d in docs {
        let Value::Map(m) = d.value else { continue };
        for (key, v) in m.iter() {
            let line = d
                .key_lines
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, l)| *l)
                .unwrap_or(0);
            let at = Location::at(path, line);
            let Value::Seq(items) = v else {
                if matches!(v, Value::Null) {
                    continue;
                }
                return Err(Error::Invalid {
                    at,
                    message: format!("`{key}` must be a list of field specs"),
                });
            };
            match key.as_str() {
                "images" => {
                    for item in items {
                        let fs = field_spec_of(item);
                        let p = fs.path.join("/");
                        let builtin = builtin_field_specs("images");
                        if builtin.iter().any(|b| {
                            b.path == fs.path
                                && b.kind == fs.kind
                                && b.group == fs.group
                                && b.version == fs.version
                        }) {
                            return Err(Error::Invalid {
                                at,
                                message: format!("conflicting fieldspecs: '{p}' is built in"),
                            });
                        }
                        config.images.push(fs);
                    }
                }
                "commonLabels" => config.common_labels.extend(items.iter().map(field_spec_of)),
                "namespace" => config.namespace.extend(items.iter().map(field_spec_of)),
                "replicas" => config.replicas.extend(items.iter().map(field_spec_of)),
                "namePrefix" => config.name_prefix.extend(
                    items
                        .iter()
                        .map(field_spec_of)
                        .filter(|fs| fs.path != ["metadata", "name"]),
                ),
                "nameSuffix" => config.name_suffix.extend(
                    items
                        .iter()
                        .map(field_spec_of)
                        .filter(|fs| fs.path != ["metadata", "name"]),
                ),
                "templateLabels" => config
                    .template_labels
                    .extend(items.iter().map(field_spec_of)),
                "varReference" => config.var_reference.extend(items.iter().map(field_spec_of)),
                "commonAnnotations" => config
                    .common_annotations
                    .extend(items.iter().map(field_spec_of)),
                "nameReference" => {
                    for item in items {
                        let get = |f: &str| {
                            item.get(f)
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string()
                        };
                        let target = crate::resource::Gvk {
                            group: get("group"),
                            version: get("version"),
                            kind: get("kind"),
                        };
                        if let Some(Value::Seq(specs)) = item.get("fieldSpecs") {
                            for fs in specs {
                                config
                                    .name_references
                                    .push((target.clone(), field_spec_of(fs)));
                            }
                        }
                    }
                }
                other => {
                    return Err(Error::Unsupported {
                        at,
                        what: format!("`{other}` in configurations"),
                    });
                }
            }
        }
    }
    acc.config.merge(config);
    Ok(())
}
