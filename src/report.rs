//! The check report every gate produces: a list of checks, each PASS/FAIL/WARN/SKIP with a reason.
//!
//! One type, four renderings: a table (TTY), plain lines (pipes, CI logs), one JSON document
//! (`--format json`, also the evidence `rel record` accepts), and JUnit XML (`--junit FILE`).
//! GitHub workflow annotations are derived from the same checks.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// A finding that does not fail the gate.
    Warn,
    /// Not run (its input was missing); never fails the gate.
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Status::Pass => "\x1b[32m",
            Status::Fail => "\x1b[31m",
            Status::Warn => "\x1b[33m",
            Status::Skip => "\x1b[2m",
        }
    }
}

/// One row of a gate's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail)
    }
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail)
    }
    pub fn warn(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail)
    }
    pub fn skip(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, detail)
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

/// A gate's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The gate, e.g. `coherence`, `smoke`.
    pub gate: String,
    /// What was checked, e.g. `releases/0.4.0.yaml` or `staging`.
    pub target: String,
    /// `pass` when no check failed, else `fail`.
    pub status: Status,
    pub summary: Summary,
    pub checks: Vec<Check>,
    /// Extra facts about the run (profile, version, environment), for evidence.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context: std::collections::BTreeMap<String, String>,
}

/// How to render a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table on a terminal, plain lines otherwise.
    Auto,
    Table,
    Plain,
    Json,
}

impl Report {
    pub fn new(gate: impl Into<String>, target: impl Into<String>) -> Self {
        Report {
            gate: gate.into(),
            target: target.into(),
            status: Status::Pass,
            summary: Summary::default(),
            checks: Vec::new(),
            context: Default::default(),
        }
    }

    pub fn push(&mut self, check: Check) {
        match check.status {
            Status::Pass => self.summary.pass += 1,
            Status::Fail => {
                self.summary.fail += 1;
                self.status = Status::Fail;
            }
            Status::Warn => self.summary.warn += 1,
            Status::Skip => self.summary.skip += 1,
        }
        self.checks.push(check);
    }

    pub fn with_context(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    pub fn passed(&self) -> bool {
        self.summary.fail == 0
    }

    fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} gate {}: {} passed, {} failed, {} warnings, {} skipped",
            self.gate,
            if self.passed() { "PASSED" } else { "FAILED" },
            s.pass,
            s.fail,
            s.warn,
            s.skip
        )
    }

    /// The rendering for `format`; `tty` decides `auto`, `color` adds ANSI colours to tables.
    pub fn render(&self, format: Format, tty: bool, color: bool) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Table => self.to_table(color),
            Format::Plain => self.to_plain(),
            Format::Auto if tty => self.to_table(color),
            Format::Auto => self.to_plain(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// One line per check: `PASS name: detail`, then the summary.
    pub fn to_plain(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(out, "{} {}: {}", c.status.label(), c.name, c.detail);
        }
        let _ = writeln!(out, "{}", self.summary_line());
        out
    }

    pub fn to_table(&self, color: bool) -> String {
        let name_w = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{} — {}", self.gate, self.target);
        let _ = writeln!(out, "{:<name_w$}  STATUS  DETAIL", "CHECK");
        for c in &self.checks {
            let label = c.status.label();
            let status = if color {
                format!("{}{label}\x1b[0m", c.status.color())
            } else {
                label.to_owned()
            };
            let mut lines = c.detail.lines();
            let _ = writeln!(
                out,
                "{:<name_w$}  {status}    {}",
                c.name,
                lines.next().unwrap_or("")
            );
            for more in lines {
                let _ = writeln!(out, "{:<name_w$}          {more}", "");
            }
        }
        let _ = writeln!(out, "{}", self.summary_line());
        out
    }

    /// JUnit XML: one test case per check; FAIL is a failure, SKIP is skipped.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"rel\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            self.checks.len(),
            self.summary.fail,
            self.summary.skip
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            xml_escape(&format!("{} {}", self.gate, self.target)),
            self.checks.len(),
            self.summary.fail,
            self.summary.skip
        );
        for c in &self.checks {
            let name = xml_escape(&c.name);
            let class = xml_escape(&format!("rel.gate.{}", self.gate));
            match c.status {
                Status::Pass | Status::Warn => {
                    let _ = writeln!(out, "    <testcase name=\"{name}\" classname=\"{class}\">");
                    let _ = writeln!(
                        out,
                        "      <system-out>{}</system-out>",
                        xml_escape(&c.detail)
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
                Status::Fail => {
                    let _ = writeln!(out, "    <testcase name=\"{name}\" classname=\"{class}\">");
                    let _ = writeln!(
                        out,
                        "      <failure message=\"{}\">{}</failure>",
                        xml_escape(c.detail.lines().next().unwrap_or("")),
                        xml_escape(&c.detail)
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
                Status::Skip => {
                    let _ = writeln!(out, "    <testcase name=\"{name}\" classname=\"{class}\">");
                    let _ = writeln!(
                        out,
                        "      <skipped message=\"{}\"/>",
                        xml_escape(&c.detail)
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// GitHub Actions workflow commands: `::error` per FAIL, `::warning` per WARN.
    pub fn to_github_annotations(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let kind = match c.status {
                Status::Fail => "error",
                Status::Warn => "warning",
                _ => continue,
            };
            let title = gh_escape_property(&format!("rel gate {}: {}", self.gate, c.name));
            let _ = writeln!(out, "::{kind} title={title}::{}", gh_escape_data(&c.detail));
        }
        out
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_property(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("coherence", "releases/0.4.0.yaml");
        r.push(Check::pass("version", "0.4.0 matches the file name"));
        r.push(Check::fail(
            "component/gateway/digest",
            "not digest-pinned: tag `0.4.0` only\nfix: pin it",
        ));
        r.push(Check::skip("optional", "no input"));
        r
    }

    #[test]
    fn summary_and_status() {
        let r = sample();
        assert!(!r.passed());
        assert_eq!(r.status, Status::Fail);
        assert_eq!(
            r.summary,
            Summary {
                pass: 1,
                fail: 1,
                warn: 0,
                skip: 1
            }
        );
    }

    #[test]
    fn plain_lines() {
        let out = sample().to_plain();
        assert!(out.starts_with("PASS version: 0.4.0 matches the file name\nFAIL component/gateway/digest: not digest-pinned"));
        assert!(
            out.ends_with("coherence gate FAILED: 1 passed, 1 failed, 0 warnings, 1 skipped\n")
        );
    }

    #[test]
    fn table_aligns_and_colors_only_when_asked() {
        let t = sample().to_table(false);
        assert!(t.contains("component/gateway/digest  FAIL    not digest-pinned"));
        assert!(
            t.contains("\n                                  fix: pin it\n"),
            "{t}"
        );
        assert!(!t.contains('\x1b'));
        assert!(sample().to_table(true).contains("\x1b[31mFAIL"));
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["checks"][1]["status"], "fail");
        assert_eq!(v["status"], "fail");
    }

    #[test]
    fn junit_and_annotations() {
        let j = sample().to_junit();
        assert!(j.contains("failures=\"1\""));
        assert!(j.contains("<failure message=\"not digest-pinned: tag `0.4.0` only\">"));
        assert!(j.contains("<skipped message=\"no input\"/>"));
        let a = sample().to_github_annotations();
        assert_eq!(
            a,
            "::error title=rel gate coherence%3A component/gateway/digest::not digest-pinned: tag `0.4.0` only%0Afix: pin it\n"
        );
    }
}
