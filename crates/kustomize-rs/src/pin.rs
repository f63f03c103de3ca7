//! Byte-exact editing of a kustomization's `images:` pins (for `rel pin`).
//!
//! Only the pin values change: comments, key order, quoting and indentation stay. A pin whose
//! image has no entry is appended in the file's own style. The edit is checked by parsing both
//! versions and comparing them with the intended change; anything else differing is an error.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::yaml::{Map, Typing, Value, parse_documents_with};

/// A desired pin: the entry whose `name` is `name` gets `digest` (and `newName` if given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The image name as written in the workloads (the entry's `name`).
    pub name: String,
    /// The repository to pull instead (`newName`), if any.
    pub new_name: Option<String>,
    /// The digest, `sha256:<hex>`.
    pub digest: String,
}

/// What [`pin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinOutcome {
    /// The new file text.
    pub text: String,
    /// Names of entries whose values changed.
    pub changed: Vec<String>,
    /// Names of entries appended.
    pub appended: Vec<String>,
    /// Names of existing entries no pin matched (kept as they are, reported).
    pub unmatched: Vec<String>,
}

/// Why a pin edit was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic, PartialEq, Eq)]
pub enum PinError {
    /// The kustomization is not valid YAML.
    #[error("kustomization.yaml:{line}: invalid YAML: {message}")]
    #[diagnostic(help(
        "fix the YAML at that line (`kubectl kustomize` on the overlay shows the same problem)"
    ))]
    Yaml {
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The file's layout is one the editor does not handle.
    #[error("kustomization.yaml:{line}: cannot edit pins here: {message}")]
    #[diagnostic(help(
        "write `images:` as a block list of mappings (`- name: ...` with `digest: sha256:...`); flow style and anchors there cannot be edited byte-exactly"
    ))]
    Layout {
        /// 1-based line.
        line: usize,
        /// What is unexpected.
        message: String,
    },
    /// A digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest for image '{name}': {digest:?} (expected sha256:<64 hex digits>)")]
    #[diagnostic(help(
        "pin digests as `sha256:` followed by 64 lowercase hex characters, as the lockfile holds them"
    ))]
    BadDigest {
        /// The pin's image name.
        name: String,
        /// The digest given.
        digest: String,
    },
    /// Re-parsing the edited file showed a change other than the pins.
    #[error("refusing the edit: re-parsing shows changes beyond the pin values ({0})")]
    #[diagnostic(help(
        "nothing was written; this is a bug in the pin editor: report it with the kustomization.yaml that triggers it"
    ))]
    Verify(String),
}

/// A node of the event tree, with source spans (byte offsets).
#[derive(Debug)]
enum Node {
    Scalar {
        value: String,
        style: ScalarStyle,
        start: usize,
        end: usize,
        line: usize,
    },
    Seq {
        items: Vec<Node>,
        start: usize,
        end: usize,
        flow: bool,
        line: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        start: usize,
        end: usize,
        flow: bool,
        line: usize,
    },
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }
    fn end(&self) -> usize {
        match self {
            Node::Scalar { end, .. } | Node::Seq { end, .. } | Node::Map { end, .. } => *end,
        }
    }
    fn start(&self) -> usize {
        match self {
            Node::Scalar { start, .. } | Node::Seq { start, .. } | Node::Map { start, .. } => {
                *start
            }
        }
    }
    fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
    fn get(&self, key: &str) -> Option<(&Node, &Node)> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }
}

struct TreeBuilder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    byte_of: Vec<usize>,
    text: &'a str,
}

impl<'a> TreeBuilder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), PinError> {
        match self.parser.next_event() {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(PinError::Yaml {
                line: e.marker().line(),
                message: e.info().to_string(),
            }),
            None => Err(PinError::Yaml {
                line: 0,
                message: "unexpected end of input".into(),
            }),
        }
    }
    fn b(&self, char_index: usize) -> usize {
        self.byte_of
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }
    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, PinError> {
        let start = self.b(span.start.index());
        let line = span.start.line();
        match ev {
            Event::Scalar(v, style, _, _) => {
                let end = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        quoted_end(self.text, start)
                    }
                    _ => self.b(span.end.index()),
                };
                Ok(Node::Scalar {
                    value: v.to_string(),
                    style,
                    start,
                    end,
                    line,
                })
            }
            Event::SequenceStart(..) => {
                let flow = self.text[start..].starts_with('[');
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::SequenceEnd = ev {
                        let end = self.b(sp.end.index());
                        return Ok(Node::Seq {
                            items,
                            start,
                            end,
                            flow,
                            line,
                        });
                    }
                    items.push(self.node(ev, sp)?);
                }
            }
            Event::MappingStart(..) => {
                let flow = self.text[start..].starts_with('{');
                let mut entries = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::MappingEnd = ev {
                        let end = self.b(sp.end.index());
                        return Ok(Node::Map {
                            entries,
                            start,
                            end,
                            flow,
                            line,
                        });
                    }
                    let k = self.node(ev, sp)?;
                    let (ev, sp) = self.next()?;
                    let v = self.node(ev, sp)?;
                    entries.push((k, v));
                }
            }
            Event::Alias(_) => Err(PinError::Layout {
                line,
                message: "aliases are not supported in images".into(),
            }),
            _ => Err(PinError::Layout {
                line,
                message: "unexpected YAML event".into(),
            }),
        }
    }
}

fn parse_tree(text: &str) -> Result<Option<Node>, PinError> {
    let mut byte_of: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    byte_of.push(text.len());
    let mut tb = TreeBuilder {
        parser: Parser::new_from_str(text),
        byte_of,
        text,
    };
    let mut root = None;
    loop {
        let (ev, span) = tb.next()?;
        match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            ev => {
                let n = tb.node(ev, span)?;
                if root.is_none() {
                    root = Some(n);
                }
            }
        }
    }
    Ok(root)
}

/// End (exclusive) of the quoted scalar starting at `start` (its opening quote).
fn quoted_end(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if q == b'\'' && b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        if q == b'"' {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                return i + 1;
            }
        }
        i += 1;
    }
    text.len()
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Column (in chars) of byte offset `at` within its line.
fn column(text: &str, at: usize) -> usize {
    let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[line_start..at].chars().count()
}

/// Offset just past the end of the line holding `at` (after its newline, or end of text).
fn end_of_line(text: &str, at: usize) -> usize {
    match text[at..].find('\n') {
        Some(i) => at + i + 1,
        None => text.len(),
    }
}

/// Renders a scalar replacement in the style of the value it replaces.
fn restyle(style: ScalarStyle, new: &str) -> String {
    match style {
        ScalarStyle::SingleQuoted => format!("'{}'", new.replace('\'', "''")),
        ScalarStyle::DoubleQuoted => {
            format!("\"{}\"", new.replace('\\', "\\\\").replace('"', "\\\""))
        }
        _ => new.to_string(),
    }
}

struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// Sets the pins in kustomization `text`. See the module docs for the guarantees.
pub fn pin(text: &str, pins: &[Pin]) -> Result<PinOutcome, PinError> {
    for p in pins {
        if !valid_digest(&p.digest) {
            return Err(PinError::BadDigest {
                name: p.name.clone(),
                digest: p.digest.clone(),
            });
        }
    }
    let root = parse_tree(text)?;
    let mut edits: Vec<Edit> = Vec::new();
    let mut changed = Vec::new();
    let mut appended = Vec::new();
    let mut unmatched = Vec::new();
    let mut matched_pins = vec![false; pins.len()];
    let root_map = match &root {
        Some(n @ Node::Map { flow: false, .. }) => Some(n),
        None => None,
        Some(n) => {
            return Err(PinError::Layout {
                line: n.line(),
                message: "the kustomization is not a block mapping".into(),
            });
        }
    };
    let images = root_map.and_then(|r| r.get("images"));
    // Style hints for appended entries.
    let mut key_order: Vec<&str> = vec!["name", "newName", "digest"];
    let mut name_style: Option<ScalarStyle> = None;
    let mut digest_style: Option<ScalarStyle> = None;
    match images {
        Some((
            _,
            Node::Seq {
                items, flow: false, ..
            },
        )) => {
            if let Some(Node::Map { entries, .. }) = items.first() {
                let order: Vec<&str> = entries.iter().filter_map(|(k, _)| k.scalar()).collect();
                let mut ko: Vec<&str> = ["name", "newName", "digest"].into_iter().collect();
                ko.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
                key_order = ko;
            }
            for item in items {
                let Node::Map {
                    entries,
                    flow,
                    line,
                    ..
                } = item
                else {
                    return Err(PinError::Layout {
                        line: item.line(),
                        message: "an images entry is not a mapping".into(),
                    });
                };
                let Some(name) = item.get("name").and_then(|(_, v)| v.scalar()) else {
                    return Err(PinError::Layout {
                        line: *line,
                        message: "an images entry has no name".into(),
                    });
                };
                if let Some((_, Node::Scalar { style, .. })) = item.get("name") {
                    name_style.get_or_insert(*style);
                }
                if let Some((_, Node::Scalar { style, .. })) = item.get("digest") {
                    digest_style.get_or_insert(*style);
                }
                let Some(pi) = pins.iter().position(|p| p.name == name) else {
                    unmatched.push(name.to_string());
                    continue;
                };
                matched_pins[pi] = true;
                let p = &pins[pi];
                let mut wanted: Vec<(&str, &str)> = vec![("digest", p.digest.as_str())];
                if let Some(nn) = &p.new_name {
                    wanted.push(("newName", nn.as_str()));
                }
                let mut did_change = false;
                let mut inserts: Vec<(&str, &str)> = Vec::new();
                for (key, val) in wanted {
                    match item.get(key) {
                        Some((
                            _,
                            Node::Scalar {
                                value,
                                style,
                                start,
                                end,
                                ..
                            },
                        )) => {
                            if value != val {
                                edits.push(Edit {
                                    start: *start,
                                    end: *end,
                                    text: restyle(*style, val),
                                });
                                did_change = true;
                            }
                        }
                        Some((k, _)) => {
                            return Err(PinError::Layout {
                                line: k.line(),
                                message: format!("`{key}` is not a scalar"),
                            });
                        }
                        None => inserts.push((key, val)),
                    }
                }
                if !inserts.is_empty() {
                    did_change = true;
                    if *flow {
                        let close = item.end() - 1;
                        let mut s = String::new();
                        for (k, v) in &inserts {
                            s.push_str(&format!(", {k}: {v}"));
                        }
                        edits.push(Edit {
                            start: close,
                            end: close,
                            text: s,
                        });
                    } else {
                        let (first_key, _) = &entries[0];
                        let indent = column(text, first_key.start());
                        let last_end = entries
                            .iter()
                            .map(|(_, v)| v.end())
                            .max()
                            .unwrap_or(item.end());
                        let at =
                            end_of_line(text, last_end.saturating_sub(1).max(first_key.start()));
                        let mut s = String::new();
                        if at == text.len() && !text.ends_with('\n') {
                            s.push('\n');
                        }
                        // Keep the file's key order: insert newName before digest when both are new.
                        inserts.sort_by_key(|(k, _)| key_order.iter().position(|o| o == k));
                        for (k, v) in &inserts {
                            let style = if *k == "digest" {
                                digest_style
                            } else {
                                name_style
                            }
                            .unwrap_or(ScalarStyle::Plain);
                            s.push_str(&format!(
                                "{}{k}: {}\n",
                                " ".repeat(indent),
                                restyle(style, v)
                            ));
                        }
                        edits.push(Edit {
                            start: at,
                            end: at,
                            text: s,
                        });
                    }
                }
                if did_change {
                    changed.push(name.to_string());
                }
            }
        }
        Some((_, Node::Scalar { value, .. })) if value.is_empty() => {}
        Some((k, _)) => {
            return Err(PinError::Layout {
                line: k.line(),
                message: "`images` is not a block list".into(),
            });
        }
        None => {}
    }
    let name_style = name_style.unwrap_or(ScalarStyle::Plain);
    let digest_style = digest_style.unwrap_or(ScalarStyle::Plain);
    // Append missing entries.
    let missing: Vec<&Pin> = pins
        .iter()
        .zip(&matched_pins)
        .filter(|(_, m)| !**m)
        .map(|(p, _)| p)
        .collect();
    if !missing.is_empty() {
        let (dash_col, insert_at, header) = match images {
            Some((_, Node::Seq { items, .. })) if !items.is_empty() => {
                let first = &items[0];
                let dash = column(text, first.start()).saturating_sub(2);
                let last_end = items.last().map(Node::end).unwrap_or(first.end());
                (
                    dash,
                    end_of_line(text, last_end.saturating_sub(1)),
                    String::new(),
                )
            }
            Some((k, v)) => {
                // `images:` with no entries: replace the empty value.
                let indent = list_indent(text, root_map);
                let at = end_of_line(text, v.end().max(k.end()).saturating_sub(1));
                edits.push(Edit {
                    start: k.end(),
                    end: at,
                    text: ":\n".into(),
                });
                (indent, at, String::new())
            }
            None => {
                let indent = list_indent(text, root_map);
                let mut h = String::new();
                if !text.is_empty() && !text.ends_with('\n') {
                    h.push('\n');
                }
                h.push_str("images:\n");
                (indent, text.len(), h)
            }
        };
        let mut s = header;
        if s.is_empty() && insert_at == text.len() && !text.is_empty() && !text.ends_with('\n') {
            s.push('\n');
        }
        for p in &missing {
            let mut first = true;
            for key in &key_order {
                let val = match *key {
                    "name" => Some(restyle(name_style, &p.name)),
                    "newName" => p.new_name.as_ref().map(|n| restyle(name_style, n)),
                    _ => Some(restyle(digest_style, &p.digest)),
                };
                let Some(val) = val else { continue };
                if first {
                    s.push_str(&format!("{}- {key}: {val}\n", " ".repeat(dash_col)));
                    first = false;
                } else {
                    s.push_str(&format!("{}{key}: {val}\n", " ".repeat(dash_col + 2)));
                }
            }
            appended.push(p.name.clone());
        }
        edits.push(Edit {
            start: insert_at,
            end: insert_at,
            text: s,
        });
    }
    if text.contains("\r\n") {
        // Keep the file's line endings in inserted lines.
        for e in &mut edits {
            e.text = e.text.replace("\r\n", "\n").replace('\n', "\r\n");
        }
    }
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut pos = 0;
    for e in &edits {
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    verify(text, &out, pins)?;
    Ok(PinOutcome {
        text: out,
        changed,
        appended,
        unmatched,
    })
}

/// Indentation of the `-` of block lists in this file (from any top-level list), default 0.
fn list_indent(text: &str, root: Option<&Node>) -> usize {
    if let Some(Node::Map { entries, .. }) = root {
        for (_, v) in entries {
            if let Node::Seq {
                flow: false, items, ..
            } = v
            {
                if let Some(first) = items.first() {
                    return column(text, first.start()).saturating_sub(2);
                }
            }
        }
    }
    0
}

/// Re-parses both texts and checks the only differences are the intended pins.
fn verify(before: &str, after: &str, pins: &[Pin]) -> Result<(), PinError> {
    let parse = |t: &str| -> Result<Value, PinError> {
        let docs = parse_documents_with(t, Typing::Raw)
            .map_err(|e| PinError::Verify(format!("edited file does not parse: {}", e.message)))?;
        Ok(docs
            .into_iter()
            .next()
            .map(|d| d.value)
            .unwrap_or(Value::Null))
    };
    let mut expected = parse(before)?;
    let got = parse(after)?;
    if let Value::Null = expected {
        expected = Value::Map(Map::new());
    }
    let Value::Map(root) = &mut expected else {
        return Err(PinError::Verify("kustomization is not a mapping".into()));
    };
    if !matches!(root.get("images"), Some(Value::Seq(_))) {
        root.insert("images", Value::Seq(Vec::new()));
    }
    let Some(Value::Seq(items)) = root.get_mut("images") else {
        unreachable!("set above")
    };
    for p in pins {
        let found = items
            .iter_mut()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(p.name.as_str()));
        let entry = match found {
            Some(e) => e,
            None => {
                let mut m = Map::new();
                m.insert("name", Value::Str(p.name.clone()));
                items.push(Value::Map(m));
                items.last_mut().expect("just pushed")
            }
        };
        let m = entry
            .as_map_mut()
            .ok_or_else(|| PinError::Verify("an images entry is not a mapping".into()))?;
        if let Some(nn) = &p.new_name {
            m.insert("newName", Value::Str(nn.clone()));
        }
        m.insert("digest", Value::Str(p.digest.clone()));
    }
    if !same(&expected, &got) {
        return Err(PinError::Verify(
            "the parsed document differs from the intended change".into(),
        ));
    }
    Ok(())
}

/// Equality ignoring map key order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// A unified diff of `old` → `new` (for `--dry-run`), with `path` in the headers.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn p(name: &str, digest: &str) -> Pin {
        Pin {
            name: name.into(),
            new_name: None,
            digest: digest.into(),
        }
    }

    const OVERLAY: &str = "# prod overlay: pins are the image authority
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # shared base
images:
  # the API server
  - name: shop/api
    newName: registry.example.com/shop/api   # mirrored
    digest: \"sha256:1111111111111111111111111111111111111111111111111111111111111111\" # 0.4.0
  - name: shop/web
    newName: registry.example.com/shop/web
    newTag: '1.2'
  - name: legacy/worker
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
namespace: shop   # trailing comment
";

    #[test]
    fn only_digest_values_change() {
        let out = pin(OVERLAY, &[p("shop/api", D2), p("legacy/worker", D3)]).unwrap();
        let expected = OVERLAY
            .replacen(
                &format!("\"{D1}\" # 0.4.0"),
                &format!("\"{D2}\" # 0.4.0"),
                1,
            )
            .replacen(
                &format!("digest: {D1}\nnamespace"),
                &format!("digest: {D3}\nnamespace"),
                1,
            );
        assert_eq!(out.text, expected);
        assert_eq!(out.changed, vec!["shop/api", "legacy/worker"]);
        assert_eq!(out.unmatched, vec!["shop/web"]);
        assert!(out.appended.is_empty());
    }

    #[test]
    fn missing_digest_key_is_inserted_under_the_entry() {
        let out = pin(OVERLAY, &[p("shop/web", D2)]).unwrap();
        assert!(out.text.contains(&format!(
            "  - name: shop/web\n    newName: registry.example.com/shop/web\n    newTag: '1.2'\n    digest: \"{D2}\"\n  - name: legacy/worker"
        )), "{}", out.text);
        assert_eq!(out.changed, vec!["shop/web"]);
    }

    #[test]
    fn missing_entry_is_appended_in_the_file_style() {
        let out = pin(
            OVERLAY,
            &[Pin {
                name: "shop/new".into(),
                new_name: Some("registry.example.com/shop/new".into()),
                digest: D2.into(),
            }],
        )
        .unwrap();
        assert!(
            out.text.contains(&format!(
                "    digest: {D1}\n  - name: shop/new\n    newName: registry.example.com/shop/new\n    digest: \"{D2}\"\nnamespace: shop"
            )),
            "{}",
            out.text
        );
        assert_eq!(out.appended, vec!["shop/new"]);
        assert_eq!(out.unmatched.len(), 3);
    }

    #[test]
    fn images_section_is_created_when_absent() {
        let text = "resources:\n- base\n# end\n";
        let out = pin(text, &[p("a/b", D1)]).unwrap();
        assert_eq!(
            out.text,
            format!("resources:\n- base\n# end\nimages:\n- name: a/b\n  digest: {D1}\n")
        );
    }

    #[test]
    fn unchanged_pins_leave_text_identical() {
        let out = pin(OVERLAY, &[p("shop/api", D1)]).unwrap();
        assert_eq!(out.text, OVERLAY);
        assert!(out.changed.is_empty());
    }

    #[test]
    fn new_name_is_updated_in_place() {
        let out = pin(
            OVERLAY,
            &[Pin {
                name: "shop/api".into(),
                new_name: Some("mirror.example.com/api".into()),
                digest: D1.into(),
            }],
        )
        .unwrap();
        assert!(
            out.text
                .contains("    newName: mirror.example.com/api   # mirrored\n")
        );
        assert_eq!(out.text.lines().count(), OVERLAY.lines().count());
    }

    #[test]
    fn flow_style_entries_are_edited_in_place() {
        let text = "images:\n- {name: a, digest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111'}\n- {name: b}\n";
        let out = pin(text, &[p("a", D2), p("b", D3)]).unwrap();
        assert_eq!(
            out.text,
            format!("images:\n- {{name: a, digest: '{D2}'}}\n- {{name: b, digest: {D3}}}\n")
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let text = OVERLAY.replace('\n', "\r\n");
        let out = pin(&text, &[p("shop/web", D2), p("shop/new", D3)]).unwrap();
        assert!(
            !out.text.replace("\r\n", "").contains('\n'),
            "a bare LF was inserted"
        );
        assert_eq!(out.appended, vec!["shop/new"]);
        assert_eq!(out.changed, vec!["shop/web"]);
    }

    #[test]
    fn files_without_a_final_newline() {
        let text = format!("images:\n- name: a\n  digest: {D1}");
        let out = pin(&text, &[p("a", D2), p("b", D3)]).unwrap();
        assert_eq!(
            out.text,
            format!("images:\n- name: a\n  digest: {D2}\n- name: b\n  digest: {D3}\n")
        );
        let text = "images:\n- name: a".to_string();
        let out = pin(&text, &[p("a", D2)]).unwrap();
        assert_eq!(out.text, format!("images:\n- name: a\n  digest: {D2}\n"));
    }

    #[test]
    fn bad_digest_is_refused() {
        let err = pin(OVERLAY, &[p("shop/api", "sha256:nothex")]).unwrap_err();
        assert!(matches!(err, PinError::BadDigest { .. }));
    }

    #[test]
    fn verification_refuses_other_changes() {
        let after = OVERLAY.replace("namespace: shop", "namespace: other");
        let err = verify(OVERLAY, &after, &[]).unwrap_err();
        assert!(matches!(err, PinError::Verify(_)));
        assert!(verify(OVERLAY, OVERLAY, &[]).is_ok());
    }

    #[test]
    fn invalid_yaml_is_reported_with_its_line() {
        let err = pin("images:\n- name: [x\n", &[p("x", D1)]).unwrap_err();
        assert!(matches!(err, PinError::Yaml { .. }), "{err:?}");
    }

    #[test]
    fn unified_diff_shows_the_changed_line() {
        let out = pin(OVERLAY, &[p("legacy/worker", D3)]).unwrap();
        let d = unified_diff(OVERLAY, &out.text, "overlays/prod/kustomization.yaml");
        assert!(d.contains("--- a/overlays/prod/kustomization.yaml"));
        assert!(d.contains(&format!("-    digest: {D1}")));
        assert!(d.contains(&format!("+    digest: {D3}")));
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count(),
            1
        );
    }
}
