//! Pull request bodies, generated from the lockfiles: per component the old and new digest, the
//! tag, the source commit range, and the validation evidence. Kept under the forge's size limit
//! by falling back to shorter tables (GitHub rejects bodies over 65,536 characters).

use std::fmt::Write as _;

use image_ref::Digest;

/// One component's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub component: String,
    pub image: String,
    pub old_digest: Option<Digest>,
    pub new_digest: Digest,
    pub old_tag: Option<String>,
    pub new_tag: Option<String>,
    pub old_commit: Option<String>,
    pub new_commit: Option<String>,
}

impl Row {
    pub(crate) fn changed(&self) -> bool {
        self.old_digest.as_ref() != Some(&self.new_digest)
    }
}

/// What the body describes.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// The first line, e.g. `Promote release **0.4.0** to **prod** (from staging): digest copy, no rebuild.`
    pub headline: String,
    /// The release the environment ran before, when the old pins matched one.
    pub previous_version: Option<String>,
    pub rows: Vec<Row>,
    /// Evidence lines (validation record, lockfile hash), shown as a list.
    pub evidence: Vec<String>,
    /// The source repository (`org/name`), for commit links on GitHub-hosted sources.
    pub source_repo: Option<String>,
    /// Closing lines (what happens on merge, how to roll back).
    pub footer: Vec<String>,
}

/// The body, as long as it fits in `limit` characters.
pub(crate) fn render(input: &Input, limit: usize) -> String {
    for detail in [Detail::Full, Detail::Short, Detail::Names] {
        let text = render_at(input, detail);
        if text.chars().count() <= limit {
            return text;
        }
    }
    // Even the names do not fit: cut, and say so.
    let note = "\n\n… (truncated: the body exceeded the forge's size limit; the lockfile has every digest)\n";
    let keep = limit.saturating_sub(note.chars().count());
    let mut text: String = render_at(input, Detail::Names).chars().take(keep).collect();
    text.push_str(note);
    text
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Full digests, images, tags, commit ranges.
    Full,
    /// Digests shortened to 12 hex digits, no image column.
    Short,
    /// Only the changed components' names.
    Names,
}

fn render_at(input: &Input, detail: Detail) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", input.headline);
    if let Some(p) = &input.previous_version {
        let _ = writeln!(out, "Replaces release **{p}** in this environment.\n");
    }
    let changed: Vec<&Row> = input.rows.iter().filter(|r| r.changed()).collect();
    let unchanged = input.rows.len() - changed.len();
    let _ = writeln!(
        out,
        "{} of {} components change{}.\n",
        changed.len(),
        input.rows.len(),
        if unchanged > 0 {
            format!(" ({unchanged} already pinned)")
        } else {
            String::new()
        }
    );
    match detail {
        Detail::Full => {
            out.push_str(
                "| component | image | tag | old digest | new digest | source commits |\n",
            );
            out.push_str("| --- | --- | --- | --- | --- | --- |\n");
            for r in &input.rows {
                let _ = writeln!(
                    out,
                    "| {}{} | `{}` | {} | {} | {} | {} |",
                    r.component,
                    if r.changed() { "" } else { " (unchanged)" },
                    r.image,
                    tags(r),
                    r.old_digest
                        .as_ref()
                        .map(|d| format!("`{d}`"))
                        .unwrap_or_else(|| "(none)".into()),
                    format_args!("`{}`", r.new_digest),
                    commits(r, input.source_repo.as_deref()),
                );
            }
        }
        Detail::Short => {
            out.push_str(
                "| component | tag | old | new | commits |\n| --- | --- | --- | --- | --- |\n",
            );
            for r in &changed {
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` | `{}` | {} |",
                    r.component,
                    tags(r),
                    r.old_digest.as_ref().map_or("(none)", Digest::short),
                    r.new_digest.short(),
                    commits(r, None),
                );
            }
            out.push_str("\nDigests shortened to fit the forge's size limit; the lockfile has them in full.\n");
        }
        Detail::Names => {
            let names: Vec<&str> = changed.iter().map(|r| r.component.as_str()).collect();
            let _ = writeln!(out, "Changed: {}.", names.join(", "));
            out.push_str("\nThe table of digests did not fit the forge's size limit; the lockfile and the commit diff have every digest.\n");
        }
    }
    if !input.evidence.is_empty() {
        out.push_str("\n**Evidence**\n\n");
        for e in &input.evidence {
            let _ = writeln!(out, "- {e}");
        }
    }
    if !input.footer.is_empty() {
        out.push('\n');
        for f in &input.footer {
            let _ = writeln!(out, "{f}");
        }
    }
    out
}

fn tags(r: &Row) -> String {
    match (&r.old_tag, &r.new_tag) {
        (Some(o), Some(n)) if o != n => format!("{o} → {n}"),
        (_, Some(n)) => n.clone(),
        (Some(o), None) => format!("{o} → (none)"),
        (None, None) => "-".into(),
    }
}

fn commits(r: &Row, github_repo: Option<&str>) -> String {
    let s = |c: &str| c[..12.min(c.len())].to_owned();
    match (&r.old_commit, &r.new_commit) {
        (Some(o), Some(n)) if o == n => s(n),
        (Some(o), Some(n)) => match github_repo {
            Some(repo) => format!(
                "[{}…{}](https://github.com/{repo}/compare/{o}...{n})",
                s(o),
                s(n)
            ),
            None => format!("{}…{}", s(o), s(n)),
        },
        (None, Some(n)) => s(n),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> Row {
        Row {
            component: format!("component-{i:03}"),
            image: format!("registry.example.com/platform/component-{i:03}"),
            old_digest: Some(format!("sha256:{}", "a".repeat(64)).parse().unwrap()),
            new_digest: format!("sha256:{}", "b".repeat(64)).parse().unwrap(),
            old_tag: Some("0.3.0".into()),
            new_tag: Some("0.4.0".into()),
            old_commit: Some("0".repeat(40)),
            new_commit: Some("1".repeat(40)),
        }
    }

    fn input(n: usize) -> Input {
        Input {
            headline: "Promote release **0.4.0** to **prod** (from staging).".into(),
            previous_version: Some("0.3.0".into()),
            rows: (0..n).map(row).collect(),
            evidence: vec!["validated in staging".into()],
            source_repo: Some("org/platform".into()),
            footer: vec!["Merge to deploy.".into()],
        }
    }

    #[test]
    fn full_table_lists_every_digest() {
        let body = render(&input(3), 65_536);
        assert!(body.contains(&format!("| component-001 | `registry.example.com/platform/component-001` | 0.3.0 → 0.4.0 | `sha256:{}` | `sha256:{}` |", "a".repeat(64), "b".repeat(64))), "{body}");
        assert!(body.contains("https://github.com/org/platform/compare/"));
        assert!(body.contains("3 of 3 components change."));
        assert!(body.contains("Replaces release **0.3.0**"));
        assert!(body.contains("- validated in staging"));
    }

    #[test]
    fn falls_back_to_shorter_tables_under_the_limit() {
        let big = input(400);
        let full = render_at(&big, Detail::Full);
        assert!(
            full.chars().count() > 65_536,
            "the test needs a body over the limit"
        );
        let body = render(&big, 65_536);
        assert!(body.chars().count() <= 65_536);
        assert!(body.contains("Digests shortened"), "short table expected");
        assert!(
            body.contains("| component-399 | 0.3.0 → 0.4.0 | `aaaaaaaaaaaa` | `bbbbbbbbbbbb` |")
        );
        let names = render(&big, 20_000);
        assert!(names.chars().count() <= 20_000);
        assert!(names.contains("Changed: component-000, "));
        let cut = render(&big, 500);
        assert!(cut.chars().count() <= 500);
        assert!(cut.contains("truncated"));
    }
}
