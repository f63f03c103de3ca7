//! A [`ManifestDiff`] as unified-style text (optionally coloured) or as Markdown for a pull
//! request body, kept under a byte budget. Pure functions: they return strings.

use std::fmt::Write as _;

use image_ref::Digest;

use crate::{Change, FieldChange, ImageChange, ManifestDiff, Node, ObjectDiff};

/// One component's image moving between digests, with the source commits it was built from
/// (from the release lockfiles).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMove {
    pub component: String,
    /// The image name (no tag, no digest).
    pub image: String,
    pub old_digest: Option<Digest>,
    pub new_digest: Option<Digest>,
    pub old_commit: Option<String>,
    pub new_commit: Option<String>,
    /// Source repository (`org/name`) on GitHub, for a compare link in Markdown.
    pub source_repo: Option<String>,
}

impl ImageMove {
    pub fn changed(&self) -> bool {
        self.old_digest != self.new_digest
    }

    /// `abc123456789..def123456789`, when both commits are known and differ.
    pub fn commit_range(&self) -> Option<String> {
        match (&self.old_commit, &self.new_commit) {
            (Some(a), Some(b)) if a != b => Some(format!("{}..{}", short(a, 12), short(b, 12))),
            (None, Some(b)) => Some(format!("..{}", short(b, 12))),
            _ => None,
        }
    }
}

/// What to show: a title line, the image moves (shown first), and the per-object diff.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub title: &'a str,
    pub images: &'a [ImageMove],
    pub diff: &'a ManifestDiff,
}

fn short(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `sha256:` and the first 12 hex digits; `(none)` for no digest.
fn short_digest(d: Option<&Digest>) -> String {
    d.map_or_else(
        || "(none)".to_owned(),
        |d| format!("{}:{}", d.algorithm(), d.short()),
    )
}

/// A value on one line: scalars as YAML would show them, collections as JSON.
pub fn inline(n: &Node) -> String {
    match n {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Str(s) => plain_or_quoted(s),
        Node::Quantity { text, .. } => text.clone(),
        Node::Secret(fp) => format!("<secret {fp}>"),
        other => other.to_json().to_string(),
    }
}

fn plain_or_quoted(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with([
            ' ', '"', '\'', '{', '[', '-', '#', '&', '*', '!', '|', '>', '%', '@',
        ])
        && !s.ends_with(' ')
        && !s.contains(['\n', '\t'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !matches!(s, "true" | "false" | "null" | "~" | "yes" | "no")
        && s.parse::<f64>().is_err();
    if plain {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

/// A value as YAML-like lines, indented by `indent` spaces.
fn yaml_lines(n: &Node, indent: usize, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    let item = |v: &Node, out: &mut Vec<String>| {
        if v.is_scalar() || matches!(v, Node::Map(m) if m.is_empty()) {
            out.push(format!("{pad}- {}", inline(v)));
        } else {
            let mut inner = Vec::new();
            yaml_lines(v, indent + 2, &mut inner);
            if let Some(first) = inner.first_mut() {
                first.replace_range(indent..indent + 2, "- ");
            }
            out.extend(inner);
        }
    };
    match n {
        Node::Map(m) => {
            for (k, v) in m {
                let key = plain_or_quoted(k);
                if let Node::Str(s) = v
                    && s.contains('\n')
                {
                    out.push(format!("{pad}{key}: |"));
                    out.extend(s.lines().map(|l| format!("{pad}  {l}")));
                } else if v.is_scalar() {
                    out.push(format!("{pad}{key}: {}", inline(v)));
                } else {
                    out.push(format!("{pad}{key}:"));
                    yaml_lines(v, indent + 2, out);
                }
            }
        }
        Node::Keyed { items, .. } => items.values().for_each(|v| item(v, out)),
        Node::Seq(items) => items.iter().for_each(|v| item(v, out)),
        Node::Str(s) if s.contains('\n') => out.extend(s.lines().map(|l| format!("{pad}{l}"))),
        scalar => out.push(format!("{pad}{}", inline(scalar))),
    }
}

/// A line of the unified-style rendering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Header,
    Hunk,
    Minus,
    Plus,
    Context,
    Note,
}

struct Lines(Vec<(Tag, String)>);

impl Lines {
    fn push(&mut self, tag: Tag, line: impl Into<String>) {
        self.0.push((tag, line.into()));
    }
}

/// The unified-style lines of one object.
fn object_lines(o: &ObjectDiff, images: &[crate::ImageMove], out: &mut Lines) {
    let mark = match o.change {
        Change::Added => "+",
        Change::Removed => "-",
        Change::Changed => "~",
    };
    let what = match o.change {
        Change::Added => "added".to_owned(),
        Change::Removed => "removed".to_owned(),
        Change::Changed => {
            let mut parts = Vec::new();
            if !o.images.is_empty() {
                parts.push(plural(o.images.len(), "image"));
            }
            if !o.fields.is_empty() {
                parts.push(plural(o.fields.len(), "field"));
            }
            parts.join(", ")
        }
    };
    out.push(Tag::Header, format!("{mark} {} ({what})", o.key));
    for i in &o.images {
        image_lines(i, images, o.change, out);
    }
    match (&o.change, &o.body) {
        (Change::Added | Change::Removed, Some(body)) => {
            let (tag, sign) = if o.change == Change::Added {
                (Tag::Plus, '+')
            } else {
                (Tag::Minus, '-')
            };
            let mut lines = Vec::new();
            yaml_lines(body, 0, &mut lines);
            for l in lines {
                out.push(tag, format!("{sign}   {l}"));
            }
        }
        _ => {
            for f in &o.fields {
                field_lines(f, out);
            }
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn image_lines(i: &ImageChange, moves: &[crate::ImageMove], change: Change, out: &mut Lines) {
    if change != Change::Changed {
        return;
    }
    let component = moves
        .iter()
        .find(|m| m.image == i.name())
        .map(|m| format!(" — component {}", m.component))
        .unwrap_or_default();
    out.push(Tag::Hunk, format!("  @@ {} (image){component} @@", i.path));
    if let Some(old) = &i.old {
        out.push(Tag::Minus, format!("-   {old}"));
    }
    if let Some(new) = &i.new {
        out.push(Tag::Plus, format!("+   {new}"));
    }
}

fn field_lines(f: &FieldChange, out: &mut Lines) {
    out.push(Tag::Hunk, format!("  @@ {} @@", f.path));
    // Two multi-line strings: a line diff of them.
    if let (Some(Node::Str(a)), Some(Node::Str(b))) = (&f.old, &f.new)
        && (a.contains('\n') || b.contains('\n'))
    {
        let d = similar::TextDiff::from_lines(a.as_str(), b.as_str());
        for group in d.grouped_ops(2) {
            for op in group {
                for change in d.iter_changes(&op) {
                    let line = change.value().trim_end_matches('\n');
                    match change.tag() {
                        similar::ChangeTag::Delete => out.push(Tag::Minus, format!("-   {line}")),
                        similar::ChangeTag::Insert => out.push(Tag::Plus, format!("+   {line}")),
                        similar::ChangeTag::Equal => out.push(Tag::Context, format!("    {line}")),
                    }
                }
            }
        }
        return;
    }
    for (value, tag, sign) in [(&f.old, Tag::Minus, '-'), (&f.new, Tag::Plus, '+')] {
        let Some(v) = value else { continue };
        let mut lines = Vec::new();
        yaml_lines(v, 0, &mut lines);
        for l in lines {
            out.push(tag, format!("{sign}   {l}"));
        }
    }
}

fn summary_line(diff: &ManifestDiff) -> String {
    if diff.is_empty() {
        return format!("No change ({} objects the same).", diff.unchanged);
    }
    format!(
        "{} change: {} added, {} removed, {} changed ({} unchanged).",
        plural(diff.objects.len(), "object"),
        diff.count(Change::Added),
        diff.count(Change::Removed),
        diff.count(Change::Changed),
        diff.unchanged
    )
}

fn move_line(m: &ImageMove) -> String {
    let mut s = format!(
        "{}  {}  {} -> {}",
        m.component,
        m.image,
        short_digest(m.old_digest.as_ref()),
        short_digest(m.new_digest.as_ref()),
    );
    if let Some(r) = m.commit_range() {
        let _ = write!(s, "  commits {r}");
    }
    s
}

/// Unified-style text: a title, the image moves, then each object. `color` adds ANSI colours.
pub fn text(view: &View<'_>, color: bool) -> String {
    let mut lines = Lines(Vec::new());
    lines.push(Tag::Note, view.title);
    let moving: Vec<&ImageMove> = view.images.iter().filter(|m| m.changed()).collect();
    if !moving.is_empty() {
        lines.push(Tag::Note, "Images:");
        for m in moving {
            lines.push(Tag::Note, format!("  {}", move_line(m)));
        }
    }
    lines.push(Tag::Note, summary_line(view.diff));
    for o in &view.diff.objects {
        lines.push(Tag::Context, "");
        object_lines(o, view.images, &mut lines);
    }
    let mut out = String::new();
    for (tag, line) in lines.0 {
        let (start, end) = match (color, tag) {
            (false, _) | (true, Tag::Context | Tag::Note) => ("", ""),
            (true, Tag::Header) => ("\x1b[1m", "\x1b[0m"),
            (true, Tag::Hunk) => ("\x1b[36m", "\x1b[0m"),
            (true, Tag::Minus) => ("\x1b[31m", "\x1b[0m"),
            (true, Tag::Plus) => ("\x1b[32m", "\x1b[0m"),
        };
        out.push_str(start);
        out.push_str(&line);
        out.push_str(end);
        out.push('\n');
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown for a pull request body: the image moves as a table, then one folded `<details>`
/// section per object, as many as fit in `budget` bytes; a last line says how many objects were
/// left out. The result is never longer than `budget` unless `budget` cannot hold even the
/// summary line and the note (then it holds only those).
pub fn markdown(view: &View<'_>, budget: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### {}\n", view.title);
    let _ = writeln!(head, "{}\n", summary_line(view.diff));
    let moving: Vec<&ImageMove> = view.images.iter().filter(|m| m.changed()).collect();
    let mut table = String::new();
    if !moving.is_empty() {
        table.push_str(
            "| component | image | digest | source commits |\n| --- | --- | --- | --- |\n",
        );
        for m in &moving {
            let commits = match (&m.source_repo, &m.old_commit, &m.new_commit) {
                (Some(repo), Some(a), Some(b)) if a != b => format!(
                    "[`{}..{}`](https://github.com/{repo}/compare/{a}...{b})",
                    short(a, 12),
                    short(b, 12)
                ),
                _ => m
                    .commit_range()
                    .map(|r| format!("`{r}`"))
                    .unwrap_or_default(),
            };
            let _ = writeln!(
                table,
                "| {} | `{}` | `{}` → `{}` | {} |",
                md_cell(&m.component),
                md_cell(&m.image),
                short_digest(m.old_digest.as_ref()),
                short_digest(m.new_digest.as_ref()),
                commits
            );
        }
        table.push('\n');
    }
    let sections: Vec<String> = view
        .diff
        .objects
        .iter()
        .map(|o| md_section(o, view.images))
        .collect();
    let note = |left: usize| {
        format!(
            "_… {} not shown to keep this section under {budget} bytes._\n",
            plural(left, "more object")
        )
    };
    let mut out = head.clone();
    let reserve = note(sections.len()).len();
    if out.len() + table.len() + reserve <= budget || sections.is_empty() {
        out.push_str(&table);
    } else {
        let _ = writeln!(
            out,
            "_{} move (table left out for size)._\n",
            plural(moving.len(), "image")
        );
    }
    for (i, s) in sections.iter().enumerate() {
        let left_after = sections.len() - i - 1;
        let reserve = if left_after == 0 {
            0
        } else {
            note(sections.len()).len()
        };
        if out.len() + s.len() + reserve > budget {
            out.push_str(&note(sections.len() - i));
            return out;
        }
        out.push_str(s);
    }
    out
}

fn md_section(o: &ObjectDiff, images: &[ImageMove]) -> String {
    let mut lines = Lines(Vec::new());
    object_lines(o, images, &mut lines);
    let mut summary = String::new();
    let mut body = String::new();
    for (i, (_, line)) in lines.0.iter().enumerate() {
        if i == 0 {
            summary = line.clone();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    // A fence longer than any run of backticks in the body.
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut s = format!(
        "<details><summary><code>{}</code></summary>\n\n",
        html_escape(&summary)
    );
    if !body.is_empty() {
        let _ = write!(s, "{fence}diff\n{body}{fence}\n\n");
    }
    s.push_str("</details>\n\n");
    s
}
