//! Errors that point into a file: `path:line:col: message`, with the offending snippet.

use std::path::{Path, PathBuf};

use miette::{NamedSource, SourceSpan};

/// A problem at a place in a text file (YAML lockfile, `rel.toml`, ...).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct SourceError {
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[source_code]
    pub source_code: NamedSource<String>,
    #[label("here")]
    pub span: SourceSpan,
}

impl SourceError {
    /// A problem at byte `offset` (clamped to the text) spanning `len` bytes.
    pub fn at_offset(
        path: &Path,
        text: &str,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset = offset.min(text.len());
        let (line, column) = line_col(text, offset);
        SourceError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: None,
            source_code: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: SourceSpan::new(offset.into(), len.min(text.len() - offset)),
        }
    }

    /// A problem at a 1-based `line` and `column`.
    pub fn at_line_col(
        path: &Path,
        text: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset = offset_of(text, line, column);
        let mut e = Self::at_offset(path, text, offset, 1, message);
        e.line = line.max(1);
        e.column = column.max(1);
        e
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `path:line:col`
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Byte offset of a 1-based line and column.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + col_bytes;
        }
        offset += l.len();
    }
    text.len()
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_round_trip() {
        let text = "a: 1\nbé: 2\nc: 3\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 5), (2, 1));
        let off = offset_of(text, 2, 3);
        assert_eq!(&text[off..off + 1], ":");
        assert_eq!(line_col(text, off), (2, 3));
        let e = SourceError::at_line_col(Path::new("x.yaml"), text, 3, 1, "bad");
        assert_eq!(e.to_string(), "x.yaml:3:1: bad");
    }
}
