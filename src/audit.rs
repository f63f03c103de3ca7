//! `rel audit`: who did what, when, to which version, read back from commit trailers.
//!
//! The git history is the audit log: nothing else is stored.

use std::collections::BTreeMap;

use git2::Oid;

use crate::Error;
use crate::git_repo::Repo;
use crate::trailers::{Trailers, key};

/// An audit query rel cannot run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuditError {
    #[error("--since {text}: not a date")]
    #[diagnostic(
        code(rel::audit::since),
        help("give a date as YYYY-MM-DD (UTC) or an RFC 3339 time such as 2026-03-01T12:00:00Z")
    )]
    Since { text: String },
}

/// One rel action found in the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub commit: String,
    /// Committer time, RFC 3339 UTC.
    pub time: String,
    #[serde(skip)]
    pub timestamp: i64,
    pub action: String,
    pub version: Option<String>,
    /// On a rollback: the version taken out of the environment and put on hold.
    pub held: Option<String>,
    pub env: Option<String>,
    pub from_env: Option<String>,
    pub actor: Option<String>,
    pub subject: String,
    /// `Rel-Reason`: why (a freeze's reason).
    pub reason: Option<String>,
    /// `Rel-Until`: when a freeze ends by itself.
    pub until: Option<String>,
    /// `Rel-Soak-Override`: a promotion made before its soak window was over, and why.
    pub soak_override: Option<String>,
    /// Every `Rel-*` trailer of the commit.
    pub trailers: BTreeMap<String, String>,
}

/// Which entries to return.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub env: Option<String>,
    /// Only commits at or after this time (seconds since the epoch).
    pub since: Option<i64>,
}

/// Parse `--since`: `YYYY-MM-DD` (UTC midnight) or RFC 3339.
pub(crate) fn parse_since(text: &str) -> Result<i64, Error> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &fmt) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    Err(AuditError::Since {
        text: text.to_owned(),
    }
    .into())
}

pub(crate) fn format_time(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

/// The rel actions in the history of `from`, newest first.
pub(crate) fn read(repo: &Repo, from: Oid, query: &Query) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    repo.walk(from, "rel-action", |c| {
        if let Some(since) = query.since
            && c.time < since
        {
            // Sorted by time: everything after this is older.
            return false;
        }
        let trailers = Trailers::parse(&c.message);
        let Some(action) = trailers.get(key::ACTION) else {
            return true;
        };
        let env = trailers.get(key::ENV).map(str::to_owned);
        if let Some(want) = &query.env
            && env.as_deref() != Some(want.as_str())
            && trailers.get(key::FROM_ENV) != Some(want.as_str())
        {
            return true;
        }
        out.push(Entry {
            commit: c.id.to_string(),
            time: format_time(c.time),
            timestamp: c.time,
            action: action.to_owned(),
            version: trailers.get(key::VERSION).map(str::to_owned),
            held: trailers.get(key::ROLLED_BACK).map(str::to_owned),
            env,
            from_env: trailers.get(key::FROM_ENV).map(str::to_owned),
            actor: trailers
                .get(key::ACTOR)
                .map(str::to_owned)
                .or_else(|| Some(c.author.clone())),
            subject: c.message.lines().next().unwrap_or_default().to_owned(),
            reason: trailers.get(key::REASON).map(str::to_owned),
            until: trailers.get(key::UNTIL).map(str::to_owned),
            soak_override: trailers.get(key::SOAK_OVERRIDE).map(str::to_owned),
            trailers: trailers
                .0
                .iter()
                .filter(|(k, _)| k.len() > 4 && k[..4].eq_ignore_ascii_case("rel-"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
        true
    })?;
    Ok(out)
}

/// A table: TIME ACTION VERSION ENV ACTOR COMMIT SUBJECT.
pub(crate) fn to_table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let env = match (&e.from_env, &e.env) {
                (Some(f), Some(t)) => format!("{f} -> {t}"),
                (None, Some(t)) => t.clone(),
                _ => "-".into(),
            };
            [
                e.time.clone(),
                if e.soak_override.is_some() {
                    format!("{} (soak overridden)", e.action)
                } else {
                    e.action.clone()
                },
                match (&e.version, &e.held) {
                    (Some(v), Some(h)) => format!("{v} (held {h})"),
                    (None, Some(h)) => format!("held {h}"),
                    (Some(v), None) => v.clone(),
                    (None, None) => "-".into(),
                },
                env,
                e.actor.clone().unwrap_or_else(|| "-".into()),
                e.commit[..12.min(e.commit.len())].to_owned(),
            ]
        })
        .collect();
    let headers = ["TIME", "ACTION", "VERSION", "ENV", "ACTOR", "COMMIT"];
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 6], out: &mut String| {
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push('\n');
    };
    line(headers, &mut out);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]], &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_and_times() {
        assert_eq!(parse_since("1970-01-02").unwrap(), 86400);
        assert_eq!(parse_since("1970-01-01T00:01:00Z").unwrap(), 60);
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .to_string()
                .contains("not a date")
        );
        assert_eq!(format_time(86400), "1970-01-02T00:00:00Z");
    }
}
