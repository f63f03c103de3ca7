//! YAML text → [`Value`] documents, on `saphyr-parser` events.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::resolve::resolve_plain_v3;
use super::value::{Map, Value};

/// A YAML syntax problem, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What went wrong.
    pub message: String,
    /// The document is well-formed but exceeds a [`Budget`] limit (hostile input).
    pub over_budget: bool,
}

/// Limits that keep hostile YAML (alias bombs, pathological nesting) from exhausting memory or
/// the stack, in the spirit of serde-saphyr's budget. Real manifests stay far below them.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Nodes a file may produce in total, aliases expanded.
    pub max_nodes: usize,
    /// Nodes a file may produce by expanding aliases.
    pub max_alias_nodes: usize,
    /// Nesting depth of collections.
    pub max_depth: usize,
}

/// The limits every file is parsed under.
pub const BUDGET: Budget = Budget {
    max_nodes: 10_000_000,
    max_alias_nodes: 250_000,
    max_depth: 1_000,
};

/// One parsed document and the 1-based line of each of its top-level keys.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's value (`Null` for an empty document).
    pub value: Value,
    /// Line of each top-level key (when the document is a mapping).
    pub key_lines: Vec<(String, usize)>,
    /// For top-level keys holding a sequence, the line of each item.
    pub item_lines: Vec<(String, Vec<usize>)>,
    /// Line where the document starts.
    pub line: usize,
}

/// How plain scalars are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// go-yaml v3 (resources, strategic-merge patches).
    V3,
    /// go-yaml v2, YAML 1.1 booleans (`yes`, `on`): JSON 6902 patches written in YAML.
    V2,
    /// Keep the source text of every plain scalar except nulls (kustomization fields, which
    /// kustomize decodes into typed Go structs from the text).
    Raw,
}

/// Parses every document in `text` with go-yaml v3 typing.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    parse_documents_with(text, Typing::V3)
}

/// Parses every document in `text`.
pub fn parse_documents_with(text: &str, typing: Typing) -> Result<Vec<Document>, SyntaxError> {
    let mut p = Loader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        typing,
        nodes: 0,
        alias_nodes: 0,
        depth: 0,
        eof_without_newline: (!text.is_empty() && !text.ends_with('\n'))
            .then(|| text.chars().count()),
    };
    let mut docs = Vec::new();
    loop {
        let (ev, span) = p.next()?;
        match ev {
            Event::StreamStart => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let (ev, span) = p.next()?;
                let line = span.start.line();
                let mut key_lines = Vec::new();
                let mut item_lines = Vec::new();
                let value = if let Event::DocumentEnd = ev {
                    docs.push(Document {
                        value: Value::Null,
                        key_lines,
                        item_lines,
                        line,
                    });
                    continue;
                } else {
                    p.node(ev, span, Some((&mut key_lines, &mut item_lines)), None)?
                };
                let (end, _) = p.next()?;
                if !matches!(end, Event::DocumentEnd) {
                    return Err(SyntaxError {
                        line,
                        message: "expected end of document".into(),
                        over_budget: false,
                    });
                }
                docs.push(Document {
                    value,
                    key_lines,
                    item_lines,
                    line,
                });
            }
            _ => {
                return Err(SyntaxError {
                    line: span.start.line(),
                    message: "unexpected event".into(),
                    over_budget: false,
                });
            }
        }
    }
    Ok(docs)
}

/// Where the top-level mapping records its key lines and list item lines.
type TopLines<'t> = (
    &'t mut Vec<(String, usize)>,
    &'t mut Vec<(String, Vec<usize>)>,
);

struct Loader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// Each anchor's value and the number of nodes it holds.
    anchors: HashMap<usize, (Value, usize)>,
    typing: Typing,
    nodes: usize,
    alias_nodes: usize,
    depth: usize,
    /// The input's length in characters when it does not end with a line break: a block
    /// scalar that runs to the end of such input has no final line break in go-yaml.
    eof_without_newline: Option<usize>,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(SyntaxError {
                line: e.marker().line(),
                message: e.info().to_string(),
                over_budget: false,
            }),
            None => Err(SyntaxError {
                line: 0,
                message: "unexpected end of input".into(),
                over_budget: false,
            }),
        }
    }

    fn over_budget(line: usize, message: String) -> SyntaxError {
        SyntaxError {
            line,
            message,
            over_budget: true,
        }
    }

    /// Counts one node against the budget.
    fn count(&mut self, line: usize) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > BUDGET.max_nodes {
            return Err(Self::over_budget(
                line,
                format!("more than {} YAML nodes in one file", BUDGET.max_nodes),
            ));
        }
        Ok(())
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        top: Option<TopLines<'_>>,
        item_lines: Option<&mut Vec<usize>>,
    ) -> Result<Value, SyntaxError> {
        let line = span.start.line();
        if let Event::Alias(id) = ev {
            let (v, size) = self.anchors.get(&id).ok_or_else(|| SyntaxError {
                line,
                message: "unknown anchor".into(),
                over_budget: false,
            })?;
            self.alias_nodes += size;
            self.nodes += size;
            if self.alias_nodes > BUDGET.max_alias_nodes || self.nodes > BUDGET.max_nodes {
                return Err(Self::over_budget(
                    line,
                    format!(
                        "aliases expand to more than {} YAML nodes (an alias bomb?)",
                        BUDGET.max_alias_nodes
                    ),
                ));
            }
            return Ok(v.clone());
        }
        let collection = matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..));
        if collection {
            self.depth += 1;
            if self.depth > BUDGET.max_depth {
                return Err(Self::over_budget(
                    line,
                    format!("YAML nested deeper than {} levels", BUDGET.max_depth),
                ));
            }
        }
        let anchor = match &ev {
            Event::Scalar(_, _, a, _) | Event::SequenceStart(a, _) | Event::MappingStart(a, _) => {
                *a
            }
            _ => 0,
        };
        let before = self.nodes;
        self.count(line)?;
        let v = self.node_inner(ev, span, top, item_lines)?;
        if collection {
            self.depth -= 1;
        }
        if anchor > 0 {
            self.anchors
                .insert(anchor, (v.clone(), self.nodes - before));
        }
        Ok(v)
    }

    fn node_inner(
        &mut self,
        ev: Event<'a>,
        span: Span,
        mut top: Option<TopLines<'_>>,
        mut item_lines: Option<&mut Vec<usize>>,
    ) -> Result<Value, SyntaxError> {
        let line = span.start.line();
        match ev {
            Event::Scalar(text, style, _, tag) => {
                let mut text = text;
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && self
                        .eof_without_newline
                        .is_some_and(|len| span.end.index() >= len)
                    && text.ends_with('\n')
                {
                    let mut t = text.into_owned();
                    t.pop();
                    text = t.into();
                }
                if style == ScalarStyle::Folded && text.contains("\n ") {
                    text = go_yaml_folded(&text).into();
                }
                scalar(&text, style, tag.as_deref(), line, self.typing)
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::SequenceEnd = ev {
                        break;
                    }
                    if let Some(il) = item_lines.as_deref_mut() {
                        il.push(sp.start.line());
                    }
                    items.push(self.node(ev, sp, None, None)?);
                }
                Ok(Value::Seq(items))
            }
            Event::MappingStart(..) => {
                let mut map = Map::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::MappingEnd = ev {
                        break;
                    }
                    let key_line = sp.start.line();
                    let k = self.node(ev, sp, None, None)?;
                    let key = match k {
                        Value::Str(s) => s,
                        Value::Null | Value::EmptyNull => "null".to_string(),
                        other => match other.scalar_text() {
                            Some(t) => t,
                            None => {
                                return Err(SyntaxError {
                                    line: key_line,
                                    message: "mapping key is not a scalar".into(),
                                    over_budget: false,
                                });
                            }
                        },
                    };
                    let (ev, sp) = self.next()?;
                    let mut lines = Vec::new();
                    let v = self.node(ev, sp, None, top.is_some().then_some(&mut lines))?;
                    if key == "<<" {
                        // Merge key: earlier explicit keys win.
                        let sources = match v {
                            Value::Map(m) => vec![m],
                            Value::Seq(s) => s
                                .into_iter()
                                .filter_map(|x| if let Value::Map(m) = x { Some(m) } else { None })
                                .collect(),
                            _ => Vec::new(),
                        };
                        for m in sources {
                            for (k, v) in m {
                                map.insert_new(k, v);
                            }
                        }
                        continue;
                    }
                    if map.contains_key(&key) {
                        return Err(SyntaxError {
                            line: key_line,
                            message: format!("mapping key {key:?} already defined"),
                            over_budget: false,
                        });
                    }
                    if let Some((kl, il)) = top.as_mut() {
                        kl.push((key.clone(), key_line));
                        if !lines.is_empty() {
                            il.push((key.clone(), lines));
                        }
                    }
                    map.push_absent(key, v);
                }
                Ok(Value::Map(map))
            }
            _ => Err(SyntaxError {
                line,
                message: "unexpected event".into(),
                over_budget: false,
            }),
        }
    }
}

/// go-yaml keeps one more line break than YAML 1.2 before a more-indented line of a folded
/// scalar that follows a normal line (`>` with `a`, `  b` reads as "a\n\n  b").
fn go_yaml_folded(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev_content: Option<bool> = None;
    for (i, l) in lines.iter().enumerate() {
        let blank_start = l.starts_with(' ') || l.starts_with('\t');
        if i > 0 {
            out.push('\n');
        }
        if !l.is_empty() {
            if blank_start && prev_content == Some(false) {
                out.push('\n');
            }
            prev_content = Some(blank_start);
        }
        out.push_str(l);
    }
    out
}

fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: usize,
    typing: Typing,
) -> Result<Value, SyntaxError> {
    if let Some(tag) = tag {
        if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
            return Ok(match tag.suffix.as_str() {
                "str" => Value::Str(text.to_string()),
                "int" | "float" | "bool" | "null" => {
                    let v = resolve_plain_v3(text);
                    if matches!(v, Value::Str(_)) && tag.suffix != "str" {
                        return Err(SyntaxError {
                            line,
                            message: format!("cannot decode {text:?} as !!{}", tag.suffix),
                            over_budget: false,
                        });
                    }
                    v
                }
                _ => Value::Str(text.to_string()),
            });
        }
        return Ok(Value::Str(text.to_string()));
    }
    Ok(match style {
        ScalarStyle::Plain => match typing {
            Typing::V3 if text.is_empty() => Value::EmptyNull,
            Typing::V3 => resolve_plain_v3(text),
            Typing::V2 => match text {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Value::Bool(true),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Value::Bool(false),
                t => match resolve_plain_v3(t) {
                    // v2 keeps timestamps as their text
                    Value::Str(_) => Value::Str(t.to_string()),
                    v => v,
                },
            },
            Typing::Raw => match text {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                t => Value::Str(t.to_string()),
            },
        },
        _ => Value::Str(text.to_string()),
    })
}
