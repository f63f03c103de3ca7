//! Soak windows: a version validated in an environment with `soak = "24h"` may be promoted out of
//! it only once its validation record there is that old. The record's `recordedAt` is the start;
//! [`crate::clock::now`] is the clock.

use std::time::Duration;

use time::OffsetDateTime;

use crate::Error;
use crate::error::Exit;
use crate::record::ValidationRecord;

/// A soak window that cannot be measured, or that is not over.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SoakError {
    #[error(
        "{record}: recordedAt `{recorded_at}` is not an RFC 3339 time, so its soak cannot be measured"
    )]
    #[diagnostic(
        code(rel::soak::recorded_at),
        help(
            "validation records are written by `rel record` and never edited: restore it from git"
        )
    )]
    BadRecordedAt { record: String, recorded_at: String },

    #[error(
        "release {version} is still soaking in {env}: validated {validated_at}, soak {soak}; it may be promoted to {target} at {eligible_at} (in {left})"
    )]
    #[diagnostic(
        code(rel::soak::soaking),
        help(
            "wait until {eligible_at}, or promote now with `rel promote --version {version} --env {target} --override-soak --reason \"why it cannot wait\"` (the override and its reason go into the commit trailers and `rel audit`)"
        )
    )]
    Soaking {
        version: String,
        env: String,
        validated_at: String,
        soak: String,
        target: String,
        eligible_at: String,
        left: String,
    },
}

impl SoakError {
    /// A version still soaking is a refusal (1); an unreadable record an input error (2).
    pub fn exit(&self) -> Exit {
        match self {
            SoakError::Soaking { .. } => Exit::Failed,
            SoakError::BadRecordedAt { .. } => Exit::Error,
        }
    }
}

/// Where a version stands in an environment's soak window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Soak {
    pub version: String,
    pub env: String,
    /// The window, as rel.toml would write it (`24h`, `1d12h`).
    pub soak: String,
    #[serde(skip)]
    pub window: Duration,
    /// The validation record's `recordedAt` (RFC 3339 UTC).
    pub validated_at: String,
    /// When the version may be promoted out (RFC 3339 UTC).
    pub eligible_at: String,
    /// Seconds until then; 0 once eligible.
    pub remaining_seconds: u64,
    pub eligible: bool,
}

impl Soak {
    /// The soak of `record` under `window` at `now`.
    pub fn of(
        record: &ValidationRecord,
        record_shown: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<Soak, Error> {
        let validated = crate::clock::parse_rfc3339(&record.recorded_at).ok_or_else(|| {
            SoakError::BadRecordedAt {
                record: record_shown.to_owned(),
                recorded_at: record.recorded_at.clone(),
            }
        })?;
        let eligible_at = validated + window;
        let remaining = (eligible_at - now).whole_seconds().max(0);
        Ok(Soak {
            version: record.version.clone(),
            env: record.env.clone(),
            soak: crate::clock::format_duration_exact(window),
            window,
            validated_at: crate::clock::format(validated),
            eligible_at: crate::clock::format(eligible_at),
            remaining_seconds: u64::try_from(remaining).unwrap_or(0),
            eligible: remaining == 0,
        })
    }

    /// `23h 59m`.
    pub fn remaining(&self) -> String {
        crate::clock::format_duration(Duration::from_secs(self.remaining_seconds))
    }

    /// The refusal of a promotion before the window is over.
    pub fn refusal(&self, target: &str) -> Error {
        SoakError::Soaking {
            version: self.version.clone(),
            env: self.env.clone(),
            validated_at: self.validated_at.clone(),
            soak: self.soak.clone(),
            target: target.to_owned(),
            eligible_at: self.eligible_at.clone(),
            left: self.remaining(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;

    fn record(at: &str) -> ValidationRecord {
        ValidationRecord {
            version: "0.4.0".into(),
            env: "staging".into(),
            lockfile: "releases/0.4.0.yaml".into(),
            lockfile_sha256: "0".repeat(64),
            gate: "smoke".into(),
            profile: "deep".into(),
            target: "staging".into(),
            summary: Summary::default(),
            evidence_sha256: "0".repeat(64),
            recorded_at: at.into(),
            actor: "a".into(),
        }
    }

    #[test]
    fn eligible_exactly_when_the_window_is_over() {
        let r = record("2026-12-01T10:00:00Z");
        let now = |s| crate::clock::parse_rfc3339(s).unwrap();
        let day = Duration::from_secs(86_400);
        let s = Soak::of(&r, "r", day, now("2026-12-01T11:00:00Z")).unwrap();
        assert!(!s.eligible);
        assert_eq!(s.eligible_at, "2026-12-02T10:00:00Z");
        assert_eq!(s.remaining_seconds, 23 * 3600);
        assert_eq!(
            s.refusal("prod").to_string(),
            "release 0.4.0 is still soaking in staging: validated 2026-12-01T10:00:00Z, soak 24h; it may be promoted to prod at 2026-12-02T10:00:00Z (in 23h)"
        );
        let s = Soak::of(&r, "r", day, now("2026-12-02T09:59:59Z")).unwrap();
        assert!(!s.eligible);
        assert_eq!(s.remaining(), "1s");
        let s = Soak::of(&r, "r", day, now("2026-12-02T10:00:00Z")).unwrap();
        assert!(s.eligible);
        assert_eq!(s.remaining_seconds, 0);
        assert!(Soak::of(&record("yesterday"), "r", day, now("2026-12-02T10:00:00Z")).is_err());
    }
}
