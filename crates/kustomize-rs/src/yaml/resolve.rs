//! Plain-scalar resolution, the go-yaml way.
//!
//! Two resolvers matter: go-yaml v3 types the input (YAML 1.2 core plus octal `012`, no `yes`/`on`),
//! and go-yaml v2 decides at output whether a string must be quoted (YAML 1.1: `yes`, `on`, `y`,
//! base-60 `1:20` and timestamps all read back as non-strings, so they are quoted).

use super::value::Value;

/// Types a plain, untagged input scalar as go-yaml v3 (as used by kustomize) does.
pub fn resolve_plain_v3(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if is_special_float(s) {
                // `.inf`/`.nan` cannot pass through JSON; keep the text.
                return Value::Str(s.to_string());
            }
            if let Some(f) = parse_dot_float(s) {
                return Value::Float(f);
            }
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if is_special_float(s) {
                return Value::Str(s.to_string());
            }
            if let Some(ts) = parse_timestamp(s) {
                return Value::Str(ts);
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Value::Int(i);
            }
            if yaml_style_float(&plain) {
                // Go's ParseFloat refuses values out of range (they stay strings).
                if let Ok(f) = plain.parse::<f64>() {
                    if f.is_finite() {
                        return Value::Float(f);
                    }
                }
            }
            if let Some(rest) = plain.strip_prefix("0b") {
                if let Ok(i) = i128::from_str_radix(rest, 2) {
                    return Value::Int(i);
                }
            } else if let Some(rest) = plain.strip_prefix("-0b") {
                if let Ok(i) = i128::from_str_radix(rest, 2) {
                    return Value::Int(-i);
                }
            }
        }
        _ => {}
    }
    Value::Str(s.to_string())
}

fn is_special_float(s: &str) -> bool {
    matches!(
        s,
        ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    )
}

/// Whether go-yaml v2 would read the plain scalar `s` back as something other than a string
/// (so the emitter has to quote it).
pub fn v2_resolves_non_string(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let first = s.as_bytes()[0];
    let hinted = matches!(
        first,
        b'y' | b'Y'
            | b'n'
            | b'N'
            | b't'
            | b'T'
            | b'f'
            | b'F'
            | b'o'
            | b'O'
            | b'~'
            | b'.'
            | b'+'
            | b'-'
            | b'0'..=b'9'
    );
    if hinted {
        if matches!(
            s,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "true"
                | "True"
                | "TRUE"
                | "on"
                | "On"
                | "ON"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "false"
                | "False"
                | "FALSE"
                | "off"
                | "Off"
                | "OFF"
                | "~"
                | "null"
                | "Null"
                | "NULL"
        ) || is_special_float(s)
        {
            return true;
        }
        match first {
            b'.' if parse_dot_float(s).is_some() => {
                return true;
            }
            b'+' | b'-' | b'0'..=b'9' => {
                if parse_timestamp(s).is_some() {
                    return true;
                }
                let plain: String = s.chars().filter(|c| *c != '_').collect();
                if go_parse_int(&plain).is_some()
                    || (yaml_style_float(&plain) && plain.parse::<f64>().is_ok_and(f64::is_finite))
                {
                    return true;
                }
                if let Some(rest) = plain
                    .strip_prefix("0b")
                    .or_else(|| plain.strip_prefix("-0b"))
                {
                    if !rest.is_empty() && rest.bytes().all(|b| b == b'0' || b == b'1') {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    is_base60_float(s)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return false;
        }
        if n == 2 && b[start] > b'5' {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

fn parse_dot_float(s: &str) -> Option<f64> {
    // Go's ParseFloat on something starting with '.': `.5`, `.5e3`, and Go literal syntax
    // allows `_` between digits (`.1_0`).
    if s.contains('_') {
        let b = s.as_bytes();
        let ok = b.iter().enumerate().all(|(i, c)| {
            *c != b'_'
                || (i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        });
        if !ok {
            return None;
        }
        return parse_dot_float(&s.replace('_', ""));
    }
    let b = s.as_bytes();
    let mut i = 1;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    format!("0{s}").parse().ok().filter(|f: &f64| f.is_finite())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
pub fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return false;
        }
    } else {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)`.
pub fn go_parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        if v <= (i64::MAX as u128) + 1 {
            return Some(-(v as i128));
        }
        return None;
    }
    if v <= u64::MAX as u128 {
        // The signed parse fails above i64::MAX but the unsigned one (no sign allowed) succeeds.
        if v > i64::MAX as u128 && s.starts_with('+') {
            return None;
        }
        return Some(v as i128);
    }
    None
}

/// go-yaml's timestamp formats; returns the value as Go's JSON encoding of a `time.Time`
/// (RFC 3339 with nanoseconds trimmed).
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != 4 || i == b.len() || b[i] != b'-' {
        return None;
    }
    let year: u32 = s[..4].parse().ok()?;
    let mut p = 5;
    let num = |p: &mut usize, max_digits: usize| -> Option<u32> {
        let st = *p;
        while *p < b.len() && b[*p].is_ascii_digit() && *p - st < max_digits {
            *p += 1;
        }
        if *p == st {
            return None;
        }
        s[st..*p].parse().ok()
    };
    let month = num(&mut p, 2)?;
    if p >= b.len() || b[p] != b'-' {
        return None;
    }
    p += 1;
    let day = num(&mut p, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if p == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = b[p];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return None;
    }
    p += 1;
    let hour = num(&mut p, 2)?;
    if p >= b.len() || b[p] != b':' {
        return None;
    }
    p += 1;
    let min = num(&mut p, 2)?;
    if p >= b.len() || b[p] != b':' {
        return None;
    }
    p += 1;
    let sec = num(&mut p, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if p < b.len() && b[p] == b'.' {
        let st = p + 1;
        p += 1;
        while p < b.len() && b[p].is_ascii_digit() {
            p += 1;
        }
        if p == st || p - st > 9 {
            return None;
        }
        frac = s[st..p].trim_end_matches('0').to_string();
    }
    let zone = if sep == b' ' {
        if p != b.len() {
            return None;
        }
        "Z".to_string()
    } else {
        let rest = &s[p..];
        if rest == "Z" {
            "Z".to_string()
        } else if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().all(|c| c.is_ascii_digit())
            && rest[4..].bytes().all(|c| c.is_ascii_digit())
        {
            if &rest[1..] == "00:00" {
                "Z".to_string()
            } else {
                rest.to_string()
            }
        } else {
            return None;
        }
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!("{date}T{hour:02}:{min:02}:{sec:02}{frac}{zone}"))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_types_plain_scalars() {
        assert_eq!(resolve_plain_v3("012"), Value::Int(10));
        assert_eq!(resolve_plain_v3("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain_v3("08"), Value::Float(8.0));
        assert_eq!(resolve_plain_v3("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain_v3("1_000"), Value::Int(1000));
        assert_eq!(
            resolve_plain_v3("2024-01-01"),
            Value::Str("2024-01-01T00:00:00Z".into())
        );
        assert_eq!(resolve_plain_v3("~"), Value::Null);
        assert_eq!(resolve_plain_v3("1e310"), Value::Str("1e310".into()));
    }

    #[test]
    fn v2_quotes_yaml11_values() {
        for s in [
            "y",
            "on",
            "1:20",
            "0123",
            "2024-01-01",
            "",
            "1e3",
            ".5",
            "-1",
        ] {
            assert!(v2_resolves_non_string(s), "{s}");
        }
        for s in ["<<", "abc", "1a", "-", "1.2.3", "v1", "1e310"] {
            assert!(!v2_resolves_non_string(s), "{s}");
        }
    }
}
