//! Time as rel's soak windows and freezes see it: "now" (injectable through `REL_NOW`), humane
//! durations (`90s`, `30m`, `24h`, `2d`, `1d12h`) and the times `--until` accepts.
//!
//! Every decision that depends on the time of day (is a soak over, has a freeze expired) asks
//! [`now`], so tests and rehearsals can fix it without sleeping; a promotion decided under an
//! injected clock says so in its trailers ([`injected`]).

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;
use crate::error::Exit;

/// A time rel was given that it cannot use.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClockError {
    #[error("{var}={text} is not a time")]
    #[diagnostic(
        code(rel::clock::now),
        help("set it to an RFC 3339 time such as 2026-12-02T10:00:00Z, or unset {var}")
    )]
    BadNow { var: &'static str, text: String },

    #[error("--until {text}: not a time")]
    #[diagnostic(code(rel::clock::until), help("{UNTIL_HELP}"))]
    NotATime { text: String },

    #[error("--until {text} is not in the future (it is {at}, now is {now})")]
    #[diagnostic(code(rel::clock::until_past), help("{UNTIL_HELP}"))]
    NotInFuture {
        text: String,
        at: String,
        now: String,
    },
}

impl ClockError {
    /// Every one is an input error.
    pub fn exit(&self) -> Exit {
        Exit::Error
    }
}

const UNTIL_HELP: &str = "give an RFC 3339 time (2026-12-24T18:00:00Z), a date (2026-12-24, midnight UTC) or a duration from now (4h, 2d, 1d12h)";

/// Now, in UTC, second precision: `REL_NOW` (RFC 3339) when it is set, else the system clock.
pub fn now() -> Result<OffsetDateTime, Error> {
    match injected() {
        Some(text) => parse_rfc3339(&text).ok_or_else(|| {
            ClockError::BadNow {
                var: crate::env_vars::NOW,
                text,
            }
            .into()
        }),
        None => Ok(truncate(OffsetDateTime::now_utc())),
    }
}

/// The value of `REL_NOW`, when the clock is injected.
pub fn injected() -> Option<String> {
    std::env::var(crate::env_vars::NOW)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_owned())
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// An RFC 3339 time, converted to UTC, second precision.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(|t| truncate(t.to_offset(time::UtcOffset::UTC)))
}

/// RFC 3339 in UTC (`2026-12-02T10:00:00Z`).
pub fn format(t: OffsetDateTime) -> String {
    truncate(t.to_offset(time::UtcOffset::UTC))
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A humane duration: whole numbers with the units `s`, `m`, `h` and `d`, largest first and
/// each at most once (`90s`, `30m`, `24h`, `2d`, `1d12h`). `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let units = [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut rest = t;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let at = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total = total.checked_add(n.checked_mul(units[at].1)?)?;
        next_unit = at + 1;
        rest = &rest[digits + 1..];
    }
    Some(Duration::from_secs(total))
}

/// A duration as people read it: `1d 2h`, `23h 59m`, `5m 3s`, `0s` (the two largest units).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3_600, "h"),
        (s % 3_600 / 60, "m"),
        (s % 60, "s"),
    ];
    let Some(first) = parts.iter().position(|(n, _)| *n > 0) else {
        return "0s".to_owned();
    };
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A compact form for config and trailers that parses back: whole days from two days up
/// (`2d`), else hours, minutes and seconds (`24h`, `36h`, `90m` is `1h30m`).
pub fn format_duration_exact(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 && s % 86_400 == 0 {
        return format!("{}d", s / 86_400);
    }
    let parts = [(s / 3_600, "h"), (s % 3_600 / 60, "m"), (s % 60, "s")];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// `--until`: an RFC 3339 time, a date `YYYY-MM-DD` (midnight UTC), or a duration from `now`
/// (`4h`, `2d`, `1d12h`). The result must lie after `now`.
pub fn parse_until(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    let t = text.trim();
    let at = if let Some(at) = parse_rfc3339(t) {
        at
    } else if let Ok(d) =
        time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]"))
    {
        d.midnight().assume_utc()
    } else if let Some(d) = parse_duration(t) {
        now + d
    } else {
        return Err(ClockError::NotATime { text: t.to_owned() }.into());
    };
    if at <= now {
        return Err(ClockError::NotInFuture {
            text: t.to_owned(),
            at: format(at),
            now: format(now),
        }
        .into());
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_durations_parse_and_print() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("24h"), Some(86_400));
        assert_eq!(d("2d"), Some(172_800));
        assert_eq!(d("1d12h"), Some(129_600));
        assert_eq!(d("90m"), Some(5_400));
        assert_eq!(d("45s"), Some(45));
        assert_eq!(d(" 1h30m "), Some(5_400));
        for bad in [
            "", "24", "h", "1.5h", "1w", "12h1d", "1h1h", "-1h", "1 h", "24hours",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(86_399)), "23h 59m");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d 1h");
        assert_eq!(format_duration(Duration::from_secs(61)), "1m 1s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration_exact(Duration::from_secs(129_600)), "36h");
        assert_eq!(format_duration_exact(Duration::from_secs(86_400)), "24h");
        assert_eq!(format_duration_exact(Duration::from_secs(172_800)), "2d");
        assert_eq!(format_duration_exact(Duration::from_secs(5_400)), "1h30m");
    }

    #[test]
    fn until_takes_times_dates_and_durations_in_the_future() {
        let now = parse_rfc3339("2026-12-02T10:00:00Z").unwrap();
        let f = |s| parse_until(s, now).map(format);
        assert_eq!(
            f("2026-12-24T18:00:00+01:00").unwrap(),
            "2026-12-24T17:00:00Z"
        );
        assert_eq!(f("2026-12-24").unwrap(), "2026-12-24T00:00:00Z");
        assert_eq!(f("4h").unwrap(), "2026-12-02T14:00:00Z");
        assert!(
            f("2026-12-01")
                .unwrap_err()
                .to_string()
                .contains("not in the future")
        );
        assert!(
            f("tomorrow")
                .unwrap_err()
                .to_string()
                .contains("not a time")
        );
    }
}
