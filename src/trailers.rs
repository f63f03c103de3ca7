//! Commit trailers: how rel writes what it did into git, and how it reads it back.
//!
//! The git history is the audit log (DESIGN.md invariant 9). Every commit rel makes ends with a
//! paragraph of `Key: value` lines (git's trailer convention, as `git interpret-trailers` and
//! `git log --format=%(trailers)` read them). Keys rel writes start with `Rel-`.

use std::fmt;
use std::str::FromStr;

/// The trailer keys rel writes.
pub(crate) mod key {
    pub(crate) const ACTION: &str = "Rel-Action";
    pub(crate) const VERSION: &str = "Rel-Version";
    pub(crate) const ENV: &str = "Rel-Env";
    pub(crate) const FROM_ENV: &str = "Rel-From-Env";
    pub(crate) const LOCKFILE_SHA256: &str = "Rel-Lockfile-Sha256";
    pub(crate) const ACTOR: &str = "Rel-Actor";
    /// Gate evidence: `smoke/deep pass=12 fail=0 warn=1 skip=0`.
    pub(crate) const EVIDENCE: &str = "Rel-Evidence";
    /// The version the environment ran before this change, when it matched a release.
    pub(crate) const PREVIOUS_VERSION: &str = "Rel-Previous-Version";
    /// On a rollback: the version taken out of the environment (and put on hold).
    pub(crate) const ROLLED_BACK: &str = "Rel-Rolled-Back";
    /// On a rollback that is a revert: the commit it reverts.
    pub(crate) const REVERTS: &str = "Rel-Reverts";
    /// On a rollback to a commit: the commit whose pins were restored.
    pub(crate) const RESTORES: &str = "Rel-Restores";
    /// Why (a freeze's reason).
    pub(crate) const REASON: &str = "Rel-Reason";
    /// On a freeze: when it ends by itself (RFC 3339); absent: until `rel unfreeze`.
    pub(crate) const UNTIL: &str = "Rel-Until";
    /// On a promotion out of an environment with a soak window: the window (`24h`).
    pub(crate) const SOAK: &str = "Rel-Soak";
    /// ... and when the version became (or becomes) eligible (RFC 3339).
    pub(crate) const SOAK_ELIGIBLE: &str = "Rel-Soak-Eligible";
    /// On a promotion made before the soak was over (`--override-soak`): the reason given.
    pub(crate) const SOAK_OVERRIDE: &str = "Rel-Soak-Override";
    /// When the decision used an injected clock (`REL_NOW`): the time it used.
    pub(crate) const CLOCK: &str = "Rel-Clock";
}

/// What a rel commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    Deploy,
    Record,
    Promote,
    Rollback,
    HoldClear,
    Freeze,
    Unfreeze,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Record => "record",
            Action::Promote => "promote",
            Action::Rollback => "rollback",
            Action::HoldClear => "hold-clear",
            Action::Freeze => "freeze",
            Action::Unfreeze => "unfreeze",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "deploy" => Action::Deploy,
            "record" => Action::Record,
            "promote" => Action::Promote,
            "rollback" => Action::Rollback,
            "hold-clear" => Action::HoldClear,
            "freeze" => Action::Freeze,
            "unfreeze" => Action::Unfreeze,
            other => return Err(format!("unknown Rel-Action `{other}`")),
        })
    }
}

/// An ordered list of trailers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trailers(pub Vec<(String, String)>);

impl Trailers {
    pub(crate) fn new() -> Self {
        Trailers(Vec::new())
    }

    /// Add a trailer; newlines in the value are flattened so the trailer stays one line.
    pub(crate) fn push(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        let value = value.to_string().replace(['\n', '\r'], " ");
        self.0.push((key.to_owned(), value.trim().to_owned()));
        self
    }

    /// The first value of `key` (case-insensitive, as git compares trailer keys).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The `Rel-Action`, when it is one rel knows.
    pub(crate) fn action(&self) -> Option<Action> {
        self.get(key::ACTION).and_then(|a| a.parse().ok())
    }

    /// A full commit message: subject, optional body, a blank line, the trailers.
    pub(crate) fn message(&self, subject: &str, body: &str) -> String {
        let mut out = String::with_capacity(subject.len() + body.len() + 64 * self.0.len());
        out.push_str(subject.trim());
        out.push_str("\n\n");
        let body = body.trim();
        if !body.is_empty() {
            out.push_str(body);
            out.push_str("\n\n");
        }
        for (k, v) in &self.0 {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out
    }

    /// The trailers of a commit message: its last paragraph, when every line of it is a
    /// `Key: value` trailer (or an indented continuation). A message with only a subject has none.
    pub(crate) fn parse(message: &str) -> Trailers {
        let trimmed = message.trim_end();
        let Some(start) = trimmed.rfind("\n\n") else {
            return Trailers::new();
        };
        let paragraph = &trimmed[start + 2..];
        let mut out: Vec<(String, String)> = Vec::new();
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                match out.last_mut() {
                    Some((_, v)) => {
                        v.push(' ');
                        v.push_str(line.trim());
                        continue;
                    }
                    None => return Trailers::new(),
                }
            }
            let Some((k, v)) = line.split_once(':') else {
                return Trailers::new();
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Trailers::new();
            }
            out.push((k.to_owned(), v.trim().to_owned()));
        }
        Trailers(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_its_trailers() {
        let mut t = Trailers::new();
        t.push(key::ACTION, Action::Promote)
            .push(key::VERSION, "0.4.0")
            .push(key::ENV, "prod")
            .push(key::ACTOR, "a b\nc");
        let msg = t.message(
            "rel: promote 0.4.0 to prod",
            "Pins every component.\n\nSecond paragraph.",
        );
        assert!(msg.starts_with("rel: promote 0.4.0 to prod\n\nPins every component.\n\nSecond paragraph.\n\nRel-Action: promote\n"));
        let back = Trailers::parse(&msg);
        assert_eq!(
            back,
            Trailers(vec![
                ("Rel-Action".into(), "promote".into()),
                ("Rel-Version".into(), "0.4.0".into()),
                ("Rel-Env".into(), "prod".into()),
                ("Rel-Actor".into(), "a b c".into()),
            ])
        );
        assert_eq!(back.action(), Some(Action::Promote));
        assert_eq!(back.get("rel-version"), Some("0.4.0"));
    }

    #[test]
    fn only_a_trailer_paragraph_counts() {
        assert_eq!(Trailers::parse("subject only"), Trailers::new());
        assert_eq!(
            Trailers::parse("subject\n\nRel-Action: promote\nnot a trailer line\n"),
            Trailers::new()
        );
        assert_eq!(
            Trailers::parse("subject\n\nRel-Action: promote\n\nplain body\n"),
            Trailers::new()
        );
        let t = Trailers::parse(
            "s\n\nbody\n\nSigned-off-by: x <x@y>\nRel-Action: rollback\n  continued\n",
        );
        assert_eq!(t.get("Rel-Action"), Some("rollback continued"));
        assert_eq!(t.action(), None, "continuation changes the value");
        assert_eq!(
            Trailers::parse("s\n\nRel-Action: hold-clear\n").action(),
            Some(Action::HoldClear)
        );
    }
}
