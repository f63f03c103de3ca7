//! Validation records, `releases/<version>.<env>.validation.yaml`: evidence that a release passed
//! the deep gate in an environment, tied to the exact lockfile bytes by their sha256.
//!
//! A record is written once (create-new, never overwritten). Its existence freezes the lockfile
//! ([`crate::releases::ensure_mutable`]) and makes the version promotable from that environment.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::report::{Report, Status, Summary};
use crate::version::Version;

/// Evidence that is not a green deep gate of this release in this environment, or a record that
/// cannot be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EvidenceError {
    #[error("{shown} is not a gate report")]
    #[diagnostic(
        code(rel::record::not_a_report),
        help(
            "give the JSON of the deep gate: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    NotAReport {
        shown: String,
        env: String,
        version: Version,
        #[source]
        source: serde_json::Error,
    },

    #[error("{shown} is a `{gate}` gate report, not the `{GATE}` gate")]
    #[diagnostic(
        code(rel::record::wrong_gate),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    WrongGate {
        shown: String,
        gate: String,
        env: String,
        version: Version,
    },

    #[error("{shown} is a `{GATE}` report with profile `{profile}`, not `{PROFILE}`")]
    #[diagnostic(
        code(rel::record::wrong_profile),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    WrongProfile {
        shown: String,
        profile: String,
        env: String,
        version: Version,
    },

    #[error("{shown} is evidence for version {found}, not {version}")]
    #[diagnostic(
        code(rel::record::wrong_version),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    WrongVersion {
        shown: String,
        found: String,
        env: String,
        version: Version,
    },

    #[error("{shown} is evidence for environment {found}, not {env}")]
    #[diagnostic(
        code(rel::record::wrong_env),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    WrongEnv {
        shown: String,
        found: String,
        env: String,
        version: Version,
    },

    #[error(
        "{shown} ran against another lockfile (sha256 {found}); releases/{version}.yaml is sha256 {sha256}"
    )]
    #[diagnostic(
        code(rel::record::other_lockfile),
        help(
            "the lockfile changed after the gate ran: run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    OtherLockfile {
        shown: String,
        found: String,
        sha256: String,
        env: String,
        version: Version,
    },

    #[error(
        "{shown} does not name the lockfile it ran against (no `{LOCKFILE_SHA256}` in its context)"
    )]
    #[diagnostic(
        code(rel::record::no_lockfile),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    NoLockfile {
        shown: String,
        env: String,
        version: Version,
    },

    #[error("{shown}: the deep gate failed ({count} failed: {failed})")]
    #[diagnostic(
        code(rel::record::failed),
        help(
            "a failed gate is not evidence: fix what failed, run the deep gate again, and record its green report"
        )
    )]
    Failed {
        shown: String,
        count: u64,
        failed: String,
    },

    #[error("{shown}: the deep gate ran no checks")]
    #[diagnostic(
        code(rel::record::empty),
        help(
            "run the deep gate for this version and environment: `rel gate smoke --profile deep --env {env} --version {version} --format json > evidence.json`"
        )
    )]
    Empty {
        shown: String,
        env: String,
        version: Version,
    },

    #[error("{} is not a valid validation record", path.display())]
    #[diagnostic(
        code(rel::record::unreadable),
        help(
            "validation records are written by `rel record` and never edited; restore it from git (`git checkout -- <file>`)"
        )
    )]
    Record {
        path: std::path::PathBuf,
        #[source]
        source: serde_saphyr::Error,
    },
}

impl EvidenceError {
    /// Evidence that is not a green deep gate is refused (exit 1); unreadable input is exit 2.
    pub fn exit(&self) -> crate::error::Exit {
        match self {
            EvidenceError::NotAReport { .. } | EvidenceError::Record { .. } => {
                crate::error::Exit::Error
            }
            _ => crate::error::Exit::Failed,
        }
    }
}

/// The gate whose green deep run is the evidence.
pub(crate) const GATE: &str = "smoke";
/// The report context key binding a smoke report to the lockfile bytes it ran against.
pub(crate) const LOCKFILE_SHA256: &str = "lockfileSha256";
/// The profile it must have run with.
pub(crate) const PROFILE: &str = "deep";

/// A validation record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationRecord {
    pub version: String,
    pub env: String,
    /// The lockfile, relative to the project root.
    pub lockfile: String,
    pub lockfile_sha256: String,
    pub gate: String,
    pub profile: String,
    /// What the gate checked (the report's `target`).
    pub target: String,
    pub summary: Summary,
    /// sha256 of the evidence file as given.
    pub evidence_sha256: String,
    /// RFC 3339, UTC.
    pub recorded_at: String,
    pub actor: String,
}

/// Lowercase hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Now, RFC 3339 in UTC, second precision.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parse evidence (a gate report in JSON) and check it is a green deep gate for `version` in `env`.
pub(crate) fn check_evidence(
    text: &str,
    shown: &str,
    version: &Version,
    env: &str,
    lockfile_sha256: &str,
) -> Result<Report, Error> {
    let (shown, env, version) = (shown.to_owned(), env.to_owned(), version.clone());
    let report: Report = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(source) => {
            return Err(EvidenceError::NotAReport {
                shown,
                env,
                version,
                source,
            }
            .into());
        }
    };
    if report.gate != GATE {
        return Err(EvidenceError::WrongGate {
            shown,
            gate: report.gate.clone(),
            env,
            version,
        }
        .into());
    }
    let profile = report
        .context
        .get("profile")
        .map(String::as_str)
        .unwrap_or("(none)");
    if profile != PROFILE {
        return Err(EvidenceError::WrongProfile {
            shown,
            profile: profile.to_owned(),
            env,
            version,
        }
        .into());
    }
    let ev_version = report
        .context
        .get("version")
        .map(String::as_str)
        .unwrap_or("(none)");
    if ev_version != version.to_string() {
        return Err(EvidenceError::WrongVersion {
            shown,
            found: ev_version.to_owned(),
            env,
            version,
        }
        .into());
    }
    let ev_env = report
        .context
        .get("env")
        .map(String::as_str)
        .unwrap_or("(none)");
    if ev_env != env {
        return Err(EvidenceError::WrongEnv {
            shown,
            found: ev_env.to_owned(),
            env,
            version,
        }
        .into());
    }
    match report.context.get(LOCKFILE_SHA256) {
        Some(sha) if sha == lockfile_sha256 => {}
        Some(sha) => {
            return Err(EvidenceError::OtherLockfile {
                shown,
                found: sha.clone(),
                sha256: lockfile_sha256.to_owned(),
                env,
                version,
            }
            .into());
        }
        None => {
            return Err(EvidenceError::NoLockfile {
                shown,
                env,
                version,
            }
            .into());
        }
    }
    let failed_checks = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if report.status != Status::Pass || report.summary.fail != 0 || failed_checks != 0 {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.as_str())
            .collect();
        return Err(EvidenceError::Failed {
            shown,
            count: report.summary.fail.max(failed_checks) as u64,
            failed: failed.join(", "),
        }
        .into());
    }
    if report.checks.is_empty() || report.summary.pass == 0 {
        return Err(EvidenceError::Empty {
            shown,
            env,
            version,
        }
        .into());
    }
    Ok(report)
}

impl ValidationRecord {
    /// The record's canonical YAML.
    pub fn to_yaml(&self) -> String {
        let s = &self.summary;
        format!(
            "# Validation record written by `rel record`: release {v} passed the deep gate in {env}.\n\
             # Never edit it: it freezes releases/{v}.yaml (by sha256) and makes {v} promotable.\n\
             version: \"{v}\"\n\
             env: {env}\n\
             lockfile: {lockfile}\n\
             lockfileSha256: {lsha}\n\
             gate: {gate}\n\
             profile: {profile}\n\
             target: {target}\n\
             summary:\n  pass: {p}\n  fail: {f}\n  warn: {w}\n  skip: {k}\n\
             evidenceSha256: {esha}\n\
             recordedAt: \"{at}\"\n\
             actor: {actor}\n",
            v = self.version,
            env = self.env,
            lockfile = self.lockfile,
            lsha = self.lockfile_sha256,
            gate = self.gate,
            profile = self.profile,
            target = serde_json::to_string(&self.target).unwrap_or_default(),
            p = s.pass,
            f = s.fail,
            w = s.warn,
            k = s.skip,
            esha = self.evidence_sha256,
            at = self.recorded_at,
            actor = serde_json::to_string(&self.actor).unwrap_or_default(),
        )
    }

    pub fn parse(path: &Path, text: &str) -> Result<ValidationRecord, Error> {
        serde_saphyr::from_str(text).map_err(|source| {
            EvidenceError::Record {
                path: path.to_owned(),
                source,
            }
            .into()
        })
    }

    /// Read the record of `version` in `env`, if there is one.
    pub fn load(
        root: &Path,
        version: &Version,
        env: &str,
    ) -> Result<Option<ValidationRecord>, Error> {
        let path = crate::releases::record_path(root, version, env);
        match std::fs::read_to_string(&path) {
            Ok(text) => ValidationRecord::parse(&path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read the validation record", &path, e)),
        }
    }

    /// One-line evidence for trailers and PR bodies: `smoke/deep pass=12 fail=0 warn=1 skip=0`.
    pub fn evidence_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{}/{} pass={} fail={} warn={} skip={}",
            self.gate, self.profile, s.pass, s.fail, s.warn, s.skip
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Check;

    fn deep(version: &str, env: &str) -> Report {
        let mut r = Report::new("smoke", env)
            .with_context("profile", "deep")
            .with_context("version", version)
            .with_context("env", env)
            .with_context(LOCKFILE_SHA256, "ab".repeat(32));
        r.push(Check::pass("login", "ok"));
        r.push(Check::warn("latency", "p99 high"));
        r
    }

    #[test]
    fn green_deep_evidence_is_accepted_and_everything_else_refused() {
        let v: Version = "0.4.0".parse().unwrap();
        let ok = deep("0.4.0", "staging");
        assert!(check_evidence(&ok.to_json(), "e.json", &v, "staging", &"ab".repeat(32)).is_ok());
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "is not a gate report"),
            (
                deep("0.4.1", "staging").to_json(),
                "evidence for version 0.4.1, not 0.4.0",
            ),
            (
                deep("0.4.0", "prod").to_json(),
                "evidence for environment prod, not staging",
            ),
            (
                Report {
                    gate: "coherence".into(),
                    ..ok.clone()
                }
                .to_json(),
                "`coherence` gate report",
            ),
            (
                ok.clone().with_context("profile", "quick").to_json(),
                "profile `quick`, not `deep`",
            ),
            (
                {
                    let mut r = ok.clone();
                    r.push(Check::fail("db", "down"));
                    r.to_json()
                },
                "the deep gate failed (1 failed: db)",
            ),
            (
                deep("0.4.0", "staging")
                    .to_json()
                    .replace("\"pass\": 1", "\"pass\": 0")
                    .replace(
                        "\"status\": \"pass\",\n      \"detail\": \"ok\"",
                        "\"status\": \"skip\",\n      \"detail\": \"ok\"",
                    ),
                "ran no checks",
            ),
        ];
        for (text, want) in cases {
            let e = check_evidence(&text, "e.json", &v, "staging", &"ab".repeat(32)).unwrap_err();
            assert!(e.to_string().contains(want), "want {want:?}, got {e}");
            // Evidence that is not a report at all is bad input (2); a report that is not green
            // deep evidence for this release is a refusal (1).
            let class = if want == "is not a gate report" {
                crate::Exit::Error
            } else {
                crate::Exit::Failed
            };
            assert_eq!(e.exit(), class, "{want}");
        }
    }

    #[test]
    fn record_yaml_round_trips() {
        let r = ValidationRecord {
            version: "0.4.0".into(),
            env: "staging".into(),
            lockfile: "releases/0.4.0.yaml".into(),
            lockfile_sha256: sha256_hex(b"x"),
            gate: "smoke".into(),
            profile: "deep".into(),
            target: "staging: 0.4.0".into(),
            summary: Summary {
                pass: 3,
                fail: 0,
                warn: 1,
                skip: 0,
            },
            evidence_sha256: sha256_hex(b"y"),
            recorded_at: now_rfc3339(),
            actor: "ci@example.com".into(),
        };
        let back = ValidationRecord::parse(Path::new("r.yaml"), &r.to_yaml()).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.evidence_line(), "smoke/deep pass=3 fail=0 warn=1 skip=0");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
