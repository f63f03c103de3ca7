//! How commands talk on stderr while they work, the same way on every command:
//!
//! - on a terminal, a spinner per component (what it is doing, bytes pushed, elapsed time), drawn
//!   by indicatif;
//! - elsewhere (CI, a pipe, a log file), one plain line per event: no colour, no carriage
//!   returns, no cursor movement, no control character at all;
//! - `--quiet`: nothing but errors and warnings; `--verbose`: debug logs (unless `RUST_LOG` is
//!   set) and cargo's own output.
//!
//! Data (tables, JSON) goes to stdout and is the same in every mode.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much a command says on stderr (`--quiet`, `--verbose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();

/// Set once, from the global flags, before the command runs.
pub fn set_verbosity(v: Verbosity) {
    let _ = VERBOSITY.set(v);
}

pub fn verbosity() -> Verbosity {
    VERBOSITY.get().copied().unwrap_or(Verbosity::Normal)
}

/// Whether progress is drawn (a terminal, not `--quiet`, not `TERM=dumb`).
pub fn draws() -> bool {
    verbosity() > Verbosity::Quiet
        && std::io::stderr().is_terminal()
        && std::env::var_os(crate::env_vars::TERM).is_none_or(|t| t != "dumb")
}

/// `text` as one plain log line: control characters (escape sequences, carriage returns, tabs,
/// newlines inside an event) become spaces or are dropped.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI sequence: ESC [ ... final byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
        } else if c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim_end().to_owned()
}

/// Talk: lines on stderr unless `--quiet`, each [`plain`].
pub fn say(text: &str) {
    if verbosity() == Verbosity::Quiet {
        return;
    }
    let _ = std::io::stderr().write_all(plain_lines(text).as_bytes());
}

/// Every line of `text` [`plain`], each ended by a newline.
fn plain_lines(text: &str) -> String {
    text.split('\n').map(|l| plain(l) + "\n").collect()
}

/// The progress of one piece of long work, per component.
pub struct Progress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, (ProgressBar, Instant)>,
    /// The last thing said per component: a repeat is not said again.
    last: BTreeMap<String, String>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            multi: draws().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: BTreeMap::new(),
            last: BTreeMap::new(),
        }
    }

    /// `component` is now doing `what` (a spinner's message, or a line).
    pub fn update(&mut self, component: &str, what: &str) {
        if self.last.get(component).is_some_and(|l| l == what) {
            return;
        }
        self.last.insert(component.to_owned(), what.to_owned());
        self.bar(component).set_message(plain(what));
        if self.multi.is_none() {
            say(&format!("{component}: {what}"));
        }
    }

    /// `component` is still doing what it was, now `what` far (bytes sent): drawn on a
    /// terminal only, never a log line (a line per tick would flood CI logs).
    pub fn tick(&mut self, component: &str, what: &str) {
        if self.multi.is_some() {
            self.bar(component).set_message(plain(what));
        }
    }

    /// `component` is done: `what`, with the time it took.
    pub fn finish(&mut self, component: &str, what: &str) {
        if self.last.get(component).is_some_and(|l| l == what) {
            return;
        }
        self.last.insert(component.to_owned(), what.to_owned());
        let started = self.bars.get(component).map(|(_, t)| *t);
        let took = started
            .map(|t| format!(" ({})", seconds(t.elapsed())))
            .unwrap_or_default();
        let line = format!("{component}: {what}{took}");
        if let Some((bar, _)) = self.bars.remove(component) {
            bar.finish_and_clear();
        }
        self.line(&line);
    }

    /// A line that is not about one component (a step, a check), above the spinners.
    pub fn line(&self, text: &str) {
        match &self.multi {
            Some(m) if verbosity() > Verbosity::Quiet => {
                let _ = m.println(plain_lines(text).trim_end_matches('\n'));
            }
            _ => say(text),
        }
    }

    fn bar(&mut self, component: &str) -> &ProgressBar {
        let multi = self.multi.clone();
        &self
            .bars
            .entry(component.to_owned())
            .or_insert_with(|| {
                let bar = match &multi {
                    Some(m) => {
                        let bar = m.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner} {prefix:<12} {msg} [{elapsed}]",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(component.to_owned());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    }
                    None => ProgressBar::hidden(),
                };
                (bar, Instant::now())
            })
            .0
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        for (bar, _) in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner for one wait that is not per component (`rel up` starting a stage), or a line.
pub fn spinner(what: &str) -> ProgressBar {
    if draws() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        say(what);
        ProgressBar::hidden()
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Bytes as people read them: `512 B`, `3.4 MiB`.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_have_no_control_characters() {
        assert_eq!(plain("\u{1b}[1;32mok\u{1b}[0m done\r\n"), "ok done");
        assert_eq!(plain("a\tb\nc"), "a b c");
        assert!(plain("x\u{7}y\u{8}").chars().all(|c| !c.is_control()));
    }
}
