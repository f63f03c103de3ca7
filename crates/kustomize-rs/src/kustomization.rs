//! The `kustomization.yaml` file: read, checked for unknown fields, and parsed into types.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::yaml::{Map, Typing, Value, parse_documents_with};

/// The file names kustomize accepts, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// A string entry and the line it is on.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The text.
    pub text: String,
    /// 1-based line in the kustomization (0 if unknown).
    pub line: usize,
}

/// One `labels:` entry.
#[derive(Debug, Clone, Default)]
pub struct LabelSpec {
    /// The labels.
    pub pairs: Vec<(String, String)>,
    /// Also selectors (and templates).
    pub include_selectors: bool,
    /// Also pod templates.
    pub include_templates: bool,
    /// Extra field specs.
    pub fields: Vec<crate::fieldspec::FieldSpec>,
}

/// A patch target selector.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Group regex.
    pub group: String,
    /// Version regex.
    pub version: String,
    /// Kind regex.
    pub kind: String,
    /// Name regex.
    pub name: String,
    /// Namespace regex.
    pub namespace: String,
    /// Label selector.
    pub label_selector: String,
    /// Annotation selector.
    pub annotation_selector: String,
}

/// One `patches:` (or `patchesJson6902:`/`patchesStrategicMerge:`) entry.
#[derive(Debug, Clone)]
pub struct PatchSpec {
    /// A file holding the patch.
    pub path: Option<String>,
    /// An inline patch.
    pub patch: Option<String>,
    /// Which resources it applies to.
    pub target: Option<Selector>,
    /// `options.allowNameChange`.
    pub allow_name_change: bool,
    /// `options.allowKindChange`.
    pub allow_kind_change: bool,
    /// Line of the entry.
    pub line: usize,
}

/// One `images:` entry.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// The image name to match.
    pub name: String,
    /// Replacement name.
    pub new_name: String,
    /// Replacement tag.
    pub new_tag: String,
    /// Replacement digest.
    pub digest: String,
    /// Suffix appended to the tag.
    pub tag_suffix: String,
}

/// Options shared by generators.
#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    /// Labels added to generated objects.
    pub labels: Vec<(String, String)>,
    /// Annotations added to generated objects.
    pub annotations: Vec<(String, String)>,
    /// `disableNameSuffixHash`.
    pub disable_hash: Option<bool>,
    /// `immutable`.
    pub immutable: Option<bool>,
}

/// One `configMapGenerator:` or `secretGenerator:` entry.
#[derive(Debug, Clone, Default)]
pub struct GeneratorSpec {
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// create, merge or replace.
    pub behavior: String,
    /// `key=value` literals.
    pub literals: Vec<String>,
    /// Files (`path` or `key=path`).
    pub files: Vec<String>,
    /// Env files.
    pub envs: Vec<String>,
    /// Secret type.
    pub kind_type: String,
    /// Per-generator options.
    pub options: GenOptions,
    /// Line of the entry.
    pub line: usize,
}

/// A parsed kustomization.
#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    /// The file.
    pub path: PathBuf,
    /// Its directory (the root for the load restrictor).
    pub dir: PathBuf,
    /// `kind: Component`.
    pub is_component: bool,
    /// `resources` (and the deprecated `bases`).
    pub resources: Vec<Entry>,
    /// `components`.
    pub components: Vec<Entry>,
    /// `crds`.
    pub crds: Vec<Entry>,
    /// `configurations`.
    pub configurations: Vec<Entry>,
    /// `generators` (kustomize's builtin generator plugins as configuration objects).
    pub generators: Vec<Entry>,
    /// `transformers` (kustomize's builtin transformer plugins as configuration objects).
    pub transformers: Vec<Entry>,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `namePrefix`.
    pub name_prefix: Option<String>,
    /// `nameSuffix`.
    pub name_suffix: Option<String>,
    /// `commonLabels`.
    pub common_labels: Vec<(String, String)>,
    /// `labels`.
    pub labels: Vec<LabelSpec>,
    /// `commonAnnotations`.
    pub common_annotations: Vec<(String, String)>,
    /// `patchesStrategicMerge`.
    pub patches_sm: Vec<PatchSpec>,
    /// `patchesJson6902`.
    pub patches_json: Vec<PatchSpec>,
    /// `patches`.
    pub patches: Vec<PatchSpec>,
    /// `images`.
    pub images: Vec<(ImageSpec, usize)>,
    /// `replicas`.
    pub replicas: Vec<(String, i128, usize)>,
    /// `configMapGenerator`.
    pub config_maps: Vec<GeneratorSpec>,
    /// `secretGenerator`.
    pub secrets: Vec<GeneratorSpec>,
    /// `generatorOptions`.
    pub generator_options: Option<GenOptions>,
    /// `sortOptions.order: fifo`.
    pub fifo: bool,
    /// `sortOptions.legacySortOptions.orderFirst` / `orderLast`, when given.
    pub legacy_order: Option<(Vec<String>, Vec<String>)>,
    /// `openapi.path`: a custom OpenAPI schema for strategic merge, and its line.
    pub openapi_path: Option<(String, usize)>,
    /// Deprecated fields in use, with their lines, in kustomize's warning order.
    pub deprecated: Vec<(&'static str, usize)>,
    /// `vars` (deprecated in kustomize, still honoured).
    pub vars: Vec<crate::transform::vars::Var>,
    /// `replacements`, with the line of each entry.
    pub replacements: Vec<(crate::transform::replacements::Replacement, usize)>,
}

impl Kustomization {
    /// A location in this kustomization.
    pub fn at(&self, line: usize) -> Location {
        Location::at(&self.path, line)
    }
}

/// Finds the kustomization file in `dir`.
pub fn find_file(dir: &Path) -> Result<PathBuf> {
    let found: Vec<&str> = FILE_NAMES
        .iter()
        .copied()
        .filter(|n| dir.join(n).is_file())
        .collect();
    match found.len() {
        0 => Err(Error::NoKustomization {
            dir: dir.to_path_buf(),
        }),
        1 => Ok(dir.join(found[0])),
        _ => Err(Error::MultipleKustomizations {
            dir: dir.to_path_buf(),
            names: found.join(", "),
        }),
    }
}

/// Reads and parses the kustomization in `dir`.
pub fn load(dir: &Path) -> Result<Kustomization> {
    let path = find_file(dir)?;
    // The kustomization file is under the same load restrictor as every file it names: a
    // symlink to a file outside the root is refused (kubectl does not follow it either).
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    crate::loader::resolve_file(dir, name, &Location::file(&path))?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        at: Location::file(&path),
        source,
    })?;
    parse(&text, &path, dir)
}

/// Parses kustomization text.
pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Kustomization> {
    let docs = parse_documents_with(text, Typing::V2).map_err(|e| Error::yaml(path, 0, e))?;
    let Some(doc) = docs.into_iter().find(|d| d.value != Value::Null) else {
        return Err(Error::Invalid {
            at: Location::file(path),
            message: "the kustomization is empty".into(),
        });
    };
    from_document(&doc, path, dir)
}

/// Interprets one parsed kustomization document (also used for the builtin plugin
/// configurations of `generators:` / `transformers:`, which map onto kustomization fields).
pub(crate) fn from_document(
    doc: &crate::yaml::Document,
    path: &Path,
    dir: &Path,
) -> Result<Kustomization> {
    let mut k = Kustomization {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let Value::Map(map) = &doc.value else {
        return Err(Error::Invalid {
            at: Location::at(path, doc.line),
            message: "a kustomization must be a mapping".into(),
        });
    };
    // kustomize's CheckEmpty: only apiVersion/kind (or null fields) is an empty kustomization.
    if map
        .iter()
        .all(|(k, v)| matches!(k.as_str(), "apiVersion" | "kind") || matches!(v, Value::Null))
    {
        return Err(Error::Invalid {
            at: Location::at(path, doc.line),
            message: "the kustomization is empty".into(),
        });
    }
    let line_of = |key: &str| {
        doc.key_lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, l)| *l)
            .unwrap_or(0)
    };
    let mut p = FieldParser {
        path,
        line: 0,
        items: Vec::new(),
    };
    for (key, value) in map.iter() {
        p.line = line_of(key);
        p.items = doc
            .item_lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            return Err(Error::UnknownField {
                at: Location::at(path, p.line),
                field: key.clone(),
            });
        }
        if matches!(value, Value::Null) {
            continue;
        }
        match key.as_str() {
            "apiVersion" | "metadata" | "buildMetadata" => {}
            "kind" => {
                let kind = p.string(value, key)?;
                match kind.as_str() {
                    "Kustomization" | "" => {}
                    "Component" => k.is_component = true,
                    other => {
                        return Err(p.invalid(format!(
                            "kind must be Kustomization or Component, not {other:?}"
                        )));
                    }
                }
            }
            "resources" | "bases" => k.resources.extend(p.entries(value, key)?),
            "components" => k.components = p.entries(value, key)?,
            "crds" => k.crds = p.entries(value, key)?,
            "generators" => k.generators = p.entries(value, key)?,
            "transformers" => k.transformers = p.entries(value, key)?,
            "configurations" => k.configurations = p.entries(value, key)?,
            "openapi" => {
                for (f, v) in p.map(value, key)?.iter() {
                    match f.as_str() {
                        "path" => k.openapi_path = Some((p.string(v, f)?, p.line)),
                        // The only built-in version kustomize v5.5 has (v1.21.2) is the default.
                        "version" => {}
                        other => return Err(p.unknown(other)),
                    }
                }
            }
            "vars" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    k.vars.push(p.var(item)?);
                }
            }
            "namespace" => k.namespace = Some(p.string(value, key)?),
            "namePrefix" => k.name_prefix = Some(p.string(value, key)?),
            "nameSuffix" => k.name_suffix = Some(p.string(value, key)?),
            "commonLabels" => k.common_labels = p.pairs(value, key)?,
            "commonAnnotations" => k.common_annotations = p.pairs(value, key)?,
            "labels" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let m = p.map(item, "labels[]")?;
                    let mut spec = LabelSpec::default();
                    for (f, v) in m.iter() {
                        match f.as_str() {
                            "pairs" => spec.pairs = p.pairs(v, "pairs")?,
                            "includeSelectors" => spec.include_selectors = p.boolean(v, f)?,
                            "includeTemplates" => spec.include_templates = p.boolean(v, f)?,
                            "fields" => {
                                for fs in p.seq(v, f)? {
                                    spec.fields.push(p.field_spec(fs)?);
                                }
                            }
                            other => return Err(p.unknown(other)),
                        }
                    }
                    k.labels.push(spec);
                }
            }
            "patchesStrategicMerge" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let text = p.string(item, key)?;
                    let inline = text.contains('\n') || text.contains(": ");
                    k.patches_sm.push(PatchSpec {
                        path: (!inline).then(|| text.clone()),
                        patch: inline.then_some(text),
                        target: None,
                        allow_name_change: false,
                        allow_kind_change: false,
                        line: p.line,
                    });
                }
            }
            "patchesJson6902" | "patches" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let m = p.map(item, key)?;
                    let mut spec = PatchSpec {
                        path: None,
                        patch: None,
                        target: None,
                        allow_name_change: false,
                        allow_kind_change: false,
                        line: p.line,
                    };
                    for (f, v) in m.iter() {
                        match f.as_str() {
                            "path" => spec.path = Some(p.string(v, f)?),
                            "patch" => spec.patch = Some(p.string(v, f)?),
                            "target" => spec.target = Some(p.selector(v)?),
                            "options" => {
                                for (o, ov) in p.map(v, f)?.iter() {
                                    match o.as_str() {
                                        "allowNameChange" => {
                                            spec.allow_name_change = p.boolean(ov, o)?
                                        }
                                        "allowKindChange" => {
                                            spec.allow_kind_change = p.boolean(ov, o)?
                                        }
                                        other => return Err(p.unknown(other)),
                                    }
                                }
                            }
                            other => return Err(p.unknown(other)),
                        }
                    }
                    if spec.path.is_some() && spec.patch.is_some() {
                        return Err(
                            p.invalid("a patch may set only one of 'path' and 'patch'".into())
                        );
                    }
                    if spec.path.is_none() && spec.patch.is_none() {
                        return Err(p.invalid("a patch needs 'path' or 'patch'".into()));
                    }
                    if key == "patches" {
                        k.patches.push(spec);
                    } else {
                        if spec.target.is_none() {
                            return Err(p.invalid("patchesJson6902 entries need a 'target'".into()));
                        }
                        k.patches_json.push(spec);
                    }
                }
            }
            "images" | "imageTags" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let m = p.map(item, key)?;
                    let mut img = ImageSpec::default();
                    for (f, v) in m.iter() {
                        let s = p.string(v, f)?;
                        match f.as_str() {
                            "name" => img.name = s,
                            "newName" => img.new_name = s,
                            "newTag" => img.new_tag = s,
                            "digest" => img.digest = s,
                            "tagSuffix" => img.tag_suffix = s,
                            other => return Err(p.unknown(other)),
                        }
                    }
                    k.images.push((img, p.line));
                }
            }
            "replicas" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let m = p.map(item, key)?;
                    let mut name = String::new();
                    let mut count = 0i128;
                    for (f, v) in m.iter() {
                        match f.as_str() {
                            "name" => name = p.string(v, f)?,
                            "count" => count = p.integer(v, f)?,
                            other => return Err(p.unknown(other)),
                        }
                    }
                    k.replicas.push((name, count, p.line));
                }
            }
            "configMapGenerator" | "secretGenerator" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let g = p.generator(item)?;
                    if key == "configMapGenerator" {
                        k.config_maps.push(g);
                    } else {
                        k.secrets.push(g);
                    }
                }
            }
            "generatorOptions" => k.generator_options = Some(p.gen_options(value)?),
            "replacements" => {
                for (i, item) in p.seq(value, key)?.iter().enumerate() {
                    p.line = p.item_line(i);
                    let m = p.map(item, key)?;
                    if let Some(path_v) = m.get("path") {
                        let rel = p.string(path_v, "path")?;
                        let at = Location::at(path, p.line);
                        let (file, text) = crate::loader::read_text(dir, &rel, &at)?;
                        let docs = parse_documents_with(&text, Typing::V2)
                            .map_err(|e| Error::yaml(&file, 0, e))?;
                        for d in docs {
                            let items: Vec<Value> = match d.value {
                                Value::Seq(s) => s,
                                Value::Null => Vec::new(),
                                other => vec![other],
                            };
                            for it in &items {
                                k.replacements.push((p.replacement(it)?, p.line));
                            }
                        }
                    } else {
                        k.replacements.push((p.replacement(item)?, p.line));
                    }
                }
            }
            "sortOptions" => {
                let m = p.map(value, key)?;
                for (f, v) in m.iter() {
                    match f.as_str() {
                        "order" => match p.string(v, f)?.as_str() {
                            "fifo" => k.fifo = true,
                            "legacy" => k.fifo = false,
                            other => {
                                return Err(p.invalid(format!(
                                    "sortOptions.order must be legacy or fifo, not {other:?}"
                                )));
                            }
                        },
                        "legacySortOptions" => {
                            let (mut first, mut last) = (Vec::new(), Vec::new());
                            for (lf, lv) in p.map(v, f)?.iter() {
                                match lf.as_str() {
                                    "orderFirst" => first = p.strings(lv, lf)?,
                                    "orderLast" => last = p.strings(lv, lf)?,
                                    other => return Err(p.unknown(other)),
                                }
                            }
                            k.legacy_order = Some((first, last));
                        }
                        other => return Err(p.unknown(other)),
                    }
                }
            }
            other => {
                return Err(Error::Unsupported {
                    at: Location::at(path, p.line),
                    what: format!("the `{other}` field"),
                });
            }
        }
    }
    // kustomize's CheckDeprecatedFields: a field counts when it is non-empty.
    for field in DEPRECATED_FIELDS {
        let used = match map.get(field) {
            Some(Value::Seq(s)) => !s.is_empty(),
            Some(Value::Map(m)) => !m.is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if used {
            k.deprecated.push((field, line_of(field)));
        }
    }
    Ok(k)
}

/// Fields kustomize v5.5 warns about, in the order it prints the warnings.
const DEPRECATED_FIELDS: [&str; 6] = [
    "bases",
    "commonLabels",
    "imageTags",
    "patchesJson6902",
    "patchesStrategicMerge",
    "vars",
];

/// kubectl's warning line for a deprecated field (printed on standard error).
pub fn deprecation_message(field: &str) -> String {
    let (instead, fix) = match field {
        "bases" => ("resources", RUN_EDIT_FIX),
        "commonLabels" => ("labels", RUN_EDIT_FIX),
        "imageTags" => ("images", RUN_EDIT_FIX),
        "patchesJson6902" | "patchesStrategicMerge" => ("patches", RUN_EDIT_FIX),
        "vars" => ("replacements", RUN_EDIT_FIX_EXPERIMENTAL),
        _ => ("", RUN_EDIT_FIX),
    };
    format!("# Warning: '{field}' is deprecated. Please use '{instead}' instead. {fix}")
}

const RUN_EDIT_FIX: &str = "Run 'kustomize edit fix' to update your Kustomization automatically.";
const RUN_EDIT_FIX_EXPERIMENTAL: &str =
    "[EXPERIMENTAL] Run 'kustomize edit fix' to update your Kustomization automatically.";

struct FieldParser<'a> {
    path: &'a Path,
    line: usize,
    /// Lines of the current field's list items.
    items: Vec<usize>,
}

impl FieldParser<'_> {
    /// One `vars:` entry. kustomize decodes it through JSON, whose field names match case
    /// insensitively (`fieldpath` and `fieldPath` are the same field).
    fn var(&self, v: &Value) -> Result<crate::transform::vars::Var> {
        let mut var = crate::transform::vars::Var {
            line: self.line,
            path: self.path.to_path_buf(),
            ..Default::default()
        };
        for (f, val) in self.map(v, "vars[]")?.iter() {
            match f.to_ascii_lowercase().as_str() {
                "name" => var.name = self.string(val, f)?,
                "objref" => {
                    for (of, ov) in self.map(val, f)?.iter() {
                        let text = self.string(ov, of)?;
                        match of.to_ascii_lowercase().as_str() {
                            "kind" => var.kind = text,
                            "name" => var.obj_name = text,
                            "namespace" => var.namespace = text,
                            "apiversion" => var.api_version = text,
                            "group" => var.group = text,
                            "version" => var.version = text,
                            _ => return Err(self.unknown(of)),
                        }
                    }
                }
                "fieldref" => {
                    for (ff, fv) in self.map(val, f)?.iter() {
                        match ff.to_ascii_lowercase().as_str() {
                            "fieldpath" => var.field_path = self.string(fv, ff)?,
                            _ => return Err(self.unknown(ff)),
                        }
                    }
                }
                _ => return Err(self.unknown(f)),
            }
        }
        if var.field_path.is_empty() {
            var.field_path = "metadata.name".into();
        }
        Ok(var)
    }

    fn invalid(&self, message: String) -> Error {
        Error::Invalid {
            at: Location::at(self.path, self.line),
            message,
        }
    }
    fn unknown(&self, field: &str) -> Error {
        Error::UnknownField {
            at: Location::at(self.path, self.line),
            field: field.to_string(),
        }
    }
    /// A string field. Like kustomize (which decodes the file as YAML 1.1 into typed Go
    /// structs), an unquoted number or boolean is refused: quote it.
    fn string(&self, v: &Value, what: &str) -> Result<String> {
        let found = match v {
            Value::Str(s) => return Ok(s.clone()),
            Value::Null | Value::EmptyNull => return Ok(String::new()),
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        };
        Err(self.invalid(format!(
            "`{what}` must be a string, found {found} (quote it)"
        )))
    }
    fn boolean(&self, v: &Value, what: &str) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.invalid(format!("`{what}` must be true or false"))),
        }
    }
    fn integer(&self, v: &Value, what: &str) -> Result<i128> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::Null => Ok(0),
            _ => Err(self.invalid(format!("`{what}` must be an integer"))),
        }
    }
    fn seq<'v>(&self, v: &'v Value, what: &str) -> Result<&'v [Value]> {
        match v {
            Value::Seq(s) => Ok(s),
            _ => Err(self.invalid(format!("`{what}` must be a list"))),
        }
    }
    fn map<'v>(&self, v: &'v Value, what: &str) -> Result<&'v Map> {
        match v {
            Value::Map(m) => Ok(m),
            _ => Err(self.invalid(format!("`{what}` must be a mapping"))),
        }
    }
    fn item_line(&self, i: usize) -> usize {
        self.items.get(i).copied().unwrap_or(self.line)
    }
    fn entries(&self, v: &Value, what: &str) -> Result<Vec<Entry>> {
        self.seq(v, what)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                Ok(Entry {
                    text: self.string(x, what)?,
                    line: self.item_line(i),
                })
            })
            .collect()
    }
    fn strings(&self, v: &Value, what: &str) -> Result<Vec<String>> {
        self.seq(v, what)?
            .iter()
            .map(|x| self.string(x, what))
            .collect()
    }
    fn pairs(&self, v: &Value, what: &str) -> Result<Vec<(String, String)>> {
        self.map(v, what)?
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.string(v, k)?)))
            .collect()
    }
    fn selector(&self, v: &Value) -> Result<Selector> {
        let mut s = Selector::default();
        for (f, v) in self.map(v, "target")?.iter() {
            let val = self.string(v, f)?;
            match f.as_str() {
                "group" => s.group = val,
                "version" => s.version = val,
                "kind" => s.kind = val,
                "name" => s.name = val,
                "namespace" => s.namespace = val,
                "labelSelector" => s.label_selector = val,
                "annotationSelector" => s.annotation_selector = val,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(s)
    }
    fn field_spec(&self, v: &Value) -> Result<crate::fieldspec::FieldSpec> {
        let mut fs = crate::fieldspec::FieldSpec::default();
        for (f, v) in self.map(v, "fieldSpec")?.iter() {
            match f.as_str() {
                "path" => fs.path = crate::fieldspec::split_path(&self.string(v, f)?),
                "group" => fs.group = self.string(v, f)?,
                "version" => fs.version = self.string(v, f)?,
                "kind" => fs.kind = self.string(v, f)?,
                "create" => fs.create = self.boolean(v, f)?,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(fs)
    }
    fn id_selector(
        &self,
        v: &Value,
        what: &str,
    ) -> Result<crate::transform::replacements::IdSelector> {
        let mut s = crate::transform::replacements::IdSelector::default();
        for (f, v) in self.map(v, what)?.iter() {
            let val = self.string(v, f)?;
            match f.as_str() {
                "group" => s.group = val,
                "version" => s.version = val,
                "kind" => s.kind = val,
                "name" => s.name = val,
                "namespace" => s.namespace = val,
                "labelSelector" => s.label_selector = val,
                "annotationSelector" => s.annotation_selector = val,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(s)
    }
    fn field_options(&self, v: &Value) -> Result<crate::transform::replacements::FieldOptions> {
        let mut o = crate::transform::replacements::FieldOptions::default();
        for (f, v) in self.map(v, "options")?.iter() {
            match f.as_str() {
                "delimiter" => o.delimiter = self.string(v, f)?,
                "index" => o.index = self.integer(v, f)? as i64,
                "create" => o.create = self.boolean(v, f)?,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(o)
    }
    fn replacement(&self, v: &Value) -> Result<crate::transform::replacements::Replacement> {
        let mut r = crate::transform::replacements::Replacement::default();
        for (f, v) in self.map(v, "replacement")?.iter() {
            match f.as_str() {
                "source" => {
                    let m = self.map(v, f)?;
                    let mut sel = Map::new();
                    for (sf, sv) in m.iter() {
                        match sf.as_str() {
                            "fieldPath" => r.source_path = self.string(sv, sf)?,
                            "options" => r.source_options = self.field_options(sv)?,
                            _ => sel.insert(sf.clone(), sv.clone()),
                        }
                    }
                    r.source = self.id_selector(&Value::Map(sel), "source")?;
                }
                "targets" => {
                    for t in self.seq(v, f)? {
                        let mut target = crate::transform::replacements::Target::default();
                        for (tf, tv) in self.map(t, "target")?.iter() {
                            match tf.as_str() {
                                "select" => target.select = self.id_selector(tv, tf)?,
                                "reject" => {
                                    for rj in self.seq(tv, tf)? {
                                        target.reject.push(self.id_selector(rj, tf)?);
                                    }
                                }
                                "fieldPaths" => target.field_paths = self.strings(tv, tf)?,
                                "options" => target.options = self.field_options(tv)?,
                                other => return Err(self.unknown(other)),
                            }
                        }
                        r.targets.push(target);
                    }
                }
                other => return Err(self.unknown(other)),
            }
        }
        Ok(r)
    }
    fn gen_options(&self, v: &Value) -> Result<GenOptions> {
        let mut o = GenOptions::default();
        for (f, v) in self.map(v, "options")?.iter() {
            match f.as_str() {
                "labels" => o.labels = self.pairs(v, f)?,
                "annotations" => o.annotations = self.pairs(v, f)?,
                "disableNameSuffixHash" => o.disable_hash = Some(self.boolean(v, f)?),
                "immutable" => o.immutable = Some(self.boolean(v, f)?),
                other => return Err(self.unknown(other)),
            }
        }
        Ok(o)
    }
    fn generator(&self, v: &Value) -> Result<GeneratorSpec> {
        let mut g = GeneratorSpec {
            line: self.line,
            ..Default::default()
        };
        for (f, v) in self.map(v, "generator")?.iter() {
            match f.as_str() {
                "name" => g.name = self.string(v, f)?,
                "namespace" => g.namespace = self.string(v, f)?,
                "behavior" => g.behavior = self.string(v, f)?,
                "literals" => g.literals = self.strings(v, f)?,
                "files" => g.files = self.strings(v, f)?,
                "envs" => g.envs.extend(self.strings(v, f)?),
                "env" => g.envs.push(self.string(v, f)?),
                "type" => g.kind_type = self.string(v, f)?,
                "options" => g.options = self.gen_options(v)?,
                other => return Err(self.unknown(other)),
            }
        }
        Ok(g)
    }
}
