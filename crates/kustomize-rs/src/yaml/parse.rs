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
}

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
    anchors: HashMap<usize, Value>,
    typing: Typing,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(SyntaxError {
                line: e.marker().line(),
                message: e.info().to_string(),
            }),
            None => Err(SyntaxError {
                line: 0,
                message: "unexpected end of input".into(),
            }),
        }
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        mut top: Option<TopLines<'_>>,
        mut item_lines: Option<&mut Vec<usize>>,
    ) -> Result<Value, SyntaxError> {
        let line = span.start.line();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(&text, style, tag.as_deref(), line, self.typing)?;
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::Alias(id) => self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                line,
                message: "unknown anchor".into(),
            }),
            Event::SequenceStart(anchor, _) => {
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
                let v = Value::Seq(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
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
                        Value::Null => "null".to_string(),
                        other => match other.scalar_text() {
                            Some(t) => t,
                            None => {
                                return Err(SyntaxError {
                                    line: key_line,
                                    message: "mapping key is not a scalar".into(),
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
                            for (k, v) in m.0 {
                                if !map.contains_key(&k) {
                                    map.0.push((k, v));
                                }
                            }
                        }
                        continue;
                    }
                    if map.contains_key(&key) {
                        return Err(SyntaxError {
                            line: key_line,
                            message: format!("mapping key {key:?} already defined"),
                        });
                    }
                    if let Some((kl, il)) = top.as_mut() {
                        kl.push((key.clone(), key_line));
                        if !lines.is_empty() {
                            il.push((key.clone(), lines));
                        }
                    }
                    map.0.push((key, v));
                }
                let v = Value::Map(map);
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            _ => Err(SyntaxError {
                line,
                message: "unexpected event".into(),
            }),
        }
    }
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
