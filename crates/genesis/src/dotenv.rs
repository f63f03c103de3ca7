//! The dotenv-style source that `rel seal` reads.
//!
//! ```text
//! # a comment
//! export DATABASE_URL=postgres://db/app      # `export ` prefix allowed; ` #` starts a comment
//! PLAIN = value with spaces                  # spaces around `=` and at the ends are trimmed
//! SINGLE='literal, no escapes, # kept'
//! DOUBLE="escapes \n \t \r \" \\ \$; may span
//! several lines (a PEM key, say)"
//! EMPTY=
//! ```
//!
//! No variable interpolation: `${X}` stays as written. A `#` starts a comment only at the start of
//! a line or after whitespace in an unquoted value. Errors give the line number and never echo a
//! value (nor the text of a line that could not be read as `KEY=VALUE`).

use secrecy::SecretString;

use crate::entries::Entries;
use crate::names::{EntryName, is_entry_name};

/// Parse a dotenv-style source into entries.
pub fn parse_dotenv(text: &str) -> Result<Entries, DotenvError> {
    let mut entries = Entries::new();
    let mut first_line: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let bytes = text.as_bytes();
    let mut pos = 0usize;
    let mut line = 1usize;
    // Skip a UTF-8 byte order mark.
    if text.starts_with('\u{feff}') {
        pos = 3;
    }
    while pos < bytes.len() {
        let line_end = find_byte(bytes, pos, b'\n').unwrap_or(bytes.len());
        let raw = &text[pos..line_end];
        let start_line = line;
        let trimmed = raw.trim_start();
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            pos = line_end + 1;
            line += 1;
            continue;
        }
        let rest = strip_export(trimmed);
        let Some(eq) = rest.find('=') else {
            return Err(DotenvError {
                line: start_line,
                kind: DotenvErrorKind::MissingEquals,
            });
        };
        let name = rest[..eq].trim();
        if name.is_empty() {
            return Err(DotenvError {
                line: start_line,
                kind: DotenvErrorKind::EmptyName,
            });
        }
        if !is_entry_name(name) {
            return Err(DotenvError {
                line: start_line,
                kind: DotenvErrorKind::InvalidName,
            });
        }
        let after = rest[eq + 1..].trim_start_matches([' ', '\t']);
        // Absolute offset of `after` in `text`.
        let after_pos = after.as_ptr() as usize - text.as_ptr() as usize;
        let (value, next_pos, end_line) = match after.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => {
                let (value, close, lines_crossed) =
                    read_quoted(text, after_pos + 1, q).ok_or(DotenvError {
                        line: start_line,
                        kind: DotenvErrorKind::UnterminatedQuote { quote: q as char },
                    })?;
                let end_line = start_line + lines_crossed;
                // After the closing quote: only whitespace or a comment, to the end of the line.
                let tail_end = find_byte(bytes, close + 1, b'\n').unwrap_or(bytes.len());
                let tail = text[close + 1..tail_end].trim();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return Err(DotenvError {
                        line: end_line,
                        kind: DotenvErrorKind::TrailingCharacters,
                    });
                }
                (value, tail_end + 1, end_line)
            }
            _ => {
                let line_text = &text[after_pos..line_end];
                let cut = comment_start(line_text).unwrap_or(line_text.len());
                let value = line_text[..cut].trim_end_matches([' ', '\t', '\r']);
                (
                    SecretString::from(value.to_owned()),
                    line_end + 1,
                    start_line,
                )
            }
        };
        let name = EntryName::new(name).map_err(|_| DotenvError {
            line: start_line,
            kind: DotenvErrorKind::InvalidName,
        })?;
        if let Some(first) = first_line.get(name.as_str()) {
            return Err(DotenvError {
                line: start_line,
                kind: DotenvErrorKind::Duplicate {
                    name: name.to_string(),
                    first_line: *first,
                },
            });
        }
        first_line.insert(name.to_string(), start_line);
        entries.insert(name, value);
        pos = next_pos;
        line = end_line + 1;
    }
    Ok(entries)
}

fn strip_export(s: &str) -> &str {
    match s.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => s,
    }
}

fn find_byte(bytes: &[u8], from: usize, b: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|c| *c == b)
        .map(|i| from + i)
}

/// Where an inline comment starts in an unquoted value: a `#` preceded by a space or tab.
fn comment_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'#' && matches!(b[i - 1], b' ' | b'\t'))
}

/// Read a quoted value starting just after the opening quote at `start`. Returns the value, the
/// index of the closing quote, and how many newlines the value crossed.
fn read_quoted(text: &str, start: usize, quote: u8) -> Option<(SecretString, usize, usize)> {
    let bytes = text.as_bytes();
    // Pre-size to the longest the value can be, so the buffer never reallocates.
    let mut out = String::with_capacity(bytes.len().saturating_sub(start));
    let mut newlines = 0usize;
    let mut i = start;
    let mut run_start = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b == quote {
            out.push_str(&text[run_start..i]);
            return Some((SecretString::from(out), i, newlines));
        }
        if b == b'\n' {
            newlines += 1;
        }
        if quote == b'"' && b == b'\\' && i + 1 < bytes.len() {
            out.push_str(&text[run_start..i]);
            let escaped = match bytes[i + 1] {
                b'n' => Some('\n'),
                b't' => Some('\t'),
                b'r' => Some('\r'),
                b'"' => Some('"'),
                b'\\' => Some('\\'),
                b'$' => Some('$'),
                _ => None,
            };
            match escaped {
                Some(c) => {
                    out.push(c);
                    i += 2;
                    run_start = i;
                }
                None => {
                    // Unknown escape: keep the backslash, go on with the next character as usual.
                    out.push('\\');
                    i += 1;
                    run_start = i;
                }
            }
            continue;
        }
        i += 1;
    }
    // Unterminated: wipe what was read.
    zeroize::Zeroize::zeroize(&mut out);
    None
}

/// A dotenv parse error: the line and what is wrong, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("line {line}: {kind}")]
#[diagnostic(code(genesis::dotenv), forward(kind))]
// The help is the kind's own (`forward(kind)`: every `DotenvErrorKind` has a help).
pub struct DotenvError {
    pub line: usize,
    pub kind: DotenvErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum DotenvErrorKind {
    #[error("expected `KEY=VALUE`")]
    #[diagnostic(help(
        "each line is `NAME=value`, a `# comment`, or blank; a value that spans lines must be double-quoted"
    ))]
    MissingEquals,
    #[error("the name before `=` is empty")]
    #[diagnostic(help(
        "put the variable's name before `=`: letters, digits and `_`, not starting with a digit (an optional `export ` prefix is allowed)"
    ))]
    EmptyName,
    #[error("the name before `=` is not a valid variable name")]
    #[diagnostic(help(
        "names are letters, digits and `_`, not starting with a digit (an optional `export ` prefix is allowed); e.g. `DB-URL` becomes `DB_URL`"
    ))]
    InvalidName,
    #[error("unterminated {quote} quote (opened on this line)")]
    #[diagnostic(help(
        "close the quote; a double-quoted value may span lines and writes a literal `\"` as `\\\"`, a single-quoted value cannot contain `'`"
    ))]
    UnterminatedQuote { quote: char },
    #[error("unexpected characters after the closing quote")]
    #[diagnostic(help(
        "only a `# comment` may follow a quoted value on its line; move the rest inside the quotes"
    ))]
    TrailingCharacters,
    #[error("`{name}` is set twice (first on line {first_line})")]
    #[diagnostic(help(
        "keep one line per name: delete this line or the one on line {first_line}, or rename one of them"
    ))]
    Duplicate { name: String, first_line: usize },
}
