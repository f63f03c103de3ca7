//! The YAML emitter kustomize prints with: go-yaml v2 (`sigs.k8s.io/yaml` `JSONToYAML`).
//!
//! Keys sort with go-yaml v2's `keyList.Less`; a sequence under a key is not indented; strings
//! are plain unless they would read back as something else, then quoted or written as literal
//! blocks following libyaml's scalar analysis; long lines wrap at a space past column 80.

use std::cmp::Ordering;

use super::resolve::v2_resolves_non_string;
use super::value::{Map, Value};

const BEST_WIDTH: usize = 80;

/// Appends one document (no `---`) to `out`.
pub fn emit_document(v: &Value, out: &mut String) {
    let mut e = Emitter { out, column: 0 };
    match v {
        Value::Map(m) if !m.is_empty() => e.map(m, 0),
        Value::Seq(s) if !s.is_empty() => e.seq(s, 0),
        other => {
            e.inline_value(other, 2);
            e.newline();
        }
    }
}

/// Renders a value as its own document.
pub fn to_yaml(v: &Value) -> String {
    let mut s = String::new();
    emit_document(v, &mut s);
    s
}

struct Emitter<'a> {
    out: &'a mut String,
    column: usize,
}

impl Emitter<'_> {
    fn put(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }
    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }
    fn newline(&mut self) {
        self.put('\n');
    }
    fn indent_to(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push(' ');
        }
        self.column += n;
    }
    /// Ensures we are at the start of a fresh line indented by `n`.
    fn line_at(&mut self, n: usize) {
        if self.column != 0 {
            self.newline();
        }
        self.indent_to(n);
    }

    /// A non-empty map whose keys go at column `indent`; the first key goes where the cursor is
    /// when that is already `indent` (after `- `).
    fn map(&mut self, m: &Map, indent: usize) {
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        sort_keys(&mut entries);
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if !(i == 0 && self.column == indent && indent > 0) {
                self.line_at(indent);
            }
            if k.len() > 128 || k.chars().any(is_break) {
                // libyaml writes keys it cannot emit as simple keys in the explicit form; a
                // collection value then starts on the `: ` line.
                self.put_str("? ");
                self.string(k, indent + 2, false);
                self.line_at(indent);
                self.put_str(": ");
                match v {
                    Value::Map(inner) if !inner.is_empty() => self.map(inner, indent + 2),
                    Value::Seq(items) if !items.is_empty() => self.seq(items, indent + 2),
                    other => self.inline_value(other, indent + 2),
                }
                continue;
            }
            self.key(k);
            self.put(':');
            match v {
                Value::Map(inner) if !inner.is_empty() => {
                    self.newline();
                    self.map(inner, indent + 2);
                }
                Value::Seq(items) if !items.is_empty() => {
                    self.newline();
                    self.seq(items, indent);
                }
                other => {
                    self.put(' ');
                    self.inline_value(other, indent + 2);
                }
            }
        }
        if self.column != 0 {
            self.newline();
        }
    }

    fn seq(&mut self, items: &[Value], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if !(i == 0 && self.column == indent && indent > 0) {
                self.line_at(indent);
            }
            self.put_str("- ");
            match item {
                Value::Map(inner) if !inner.is_empty() => self.map(inner, indent + 2),
                Value::Seq(inner) if !inner.is_empty() => self.seq(inner, indent + 2),
                other => self.inline_value(other, indent + 2),
            }
        }
        if self.column != 0 {
            self.newline();
        }
    }

    /// A scalar or empty collection written at the cursor; `indent` is where wrapped lines and
    /// block-scalar content go.
    fn inline_value(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null | Value::EmptyNull => self.put_str("null"),
            Value::Bool(b) => self.put_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.put_str(&i.to_string()),
            Value::Float(f) => self.put_str(&yaml_float(*f)),
            Value::Str(s) => self.string(s, indent, false),
            Value::Map(_) => self.put_str("{}"),
            Value::Seq(_) => self.put_str("[]"),
        }
    }

    fn key(&mut self, k: &str) {
        self.string(k, 0, true);
    }

    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        let can_plain = !v2_resolves_non_string(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_plain {
            Style::Plain
        } else {
            Style::Double
        };
        let a = analyze(s);
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single(s, indent, allow_breaks),
            Style::Double => self.double(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.newline();
                    self.indent_to(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
            i += 1;
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.put('\'');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for i in 0..chars.len() {
            let c = chars[i];
            if is_break(c) {
                if !breaks && c == '\n' {
                    self.newline();
                }
                self.out.push(c);
                self.column = 0;
                breaks = true;
                continue;
            }
            if breaks && c != ' ' {
                while self.column < indent {
                    self.put(' ');
                }
            }
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < chars.len() - 1
                    && chars[i + 1] != ' '
                {
                    self.newline();
                    self.indent_to(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                spaces = false;
                breaks = false;
            }
        }
        self.put('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.put('"');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        // Byte positions matter for the `i < len-1` test (libyaml works on bytes).
        let byte_len = s.len();
        let mut byte_pos = 0;
        // libyaml's BOM test looks at the start of the string, not at the current character:
        // a string that starts with a BOM has every character escaped.
        let starts_with_bom = s.starts_with('\u{FEFF}');
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if starts_with_bom || !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{B}' => self.put('v'),
                    '\u{C}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1B}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        if v <= 0xFF {
                            self.put_str(&format!("x{v:02X}"));
                        } else if v <= 0xFFFF {
                            self.put_str(&format!("u{v:04X}"));
                        } else {
                            self.put_str(&format!("U{v:08X}"));
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && byte_pos > 0
                    && byte_pos < byte_len - 1
                {
                    self.newline();
                    self.indent_to(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
            byte_pos += c.len_utf8();
            i += 1;
        }
        self.put('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put('|');
        let first = s.chars().next();
        if matches!(first, Some(' ') | Some('\n')) {
            self.put('2');
        }
        let mut rev = s.chars().rev();
        let last = rev.next();
        let chomp = match last {
            None => Some('-'),
            Some(c) if c != '\n' => Some('-'),
            Some(_) => {
                // A lone newline, or two at the end: keep them all.
                if s.chars().count() == 1 || rev.next() == Some('\n') {
                    Some('+')
                } else {
                    None
                }
            }
        };
        if let Some(c) = chomp {
            self.put(c);
        }
        self.newline();
        let mut at_line_start = true;
        for c in s.chars() {
            if c == '\n' {
                self.newline();
                at_line_start = true;
            } else {
                if at_line_start {
                    self.indent_to(indent);
                    at_line_start = false;
                }
                self.put(c);
            }
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// libyaml's `yaml_emitter_analyze_scalar` (block context only).
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut line_breaks = false;
    let mut special = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut preceded_by_ws = true;
    let mut prev_space = false;
    let mut prev_break = false;
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_by_ws = i + 1 >= n || is_blank(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' if followed_by_ws => block_indicators = true,
                '-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_indicators = true,
                '#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank(c) || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks {
        a.block_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// Sorts entries the way Go's `sort.Sort` orders go-yaml v2's key list (insertion sort up to 12
/// elements, which matters only when `keyList.Less` is not a total order).
fn sort_keys(entries: &mut [(&String, &Value)]) {
    if entries.len() <= 12 {
        for i in 1..entries.len() {
            let mut j = i;
            while j > 0 && key_less(entries[j].0, entries[j - 1].0) {
                entries.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        entries.sort_by(|a, b| key_cmp(a.0, b.0));
    }
}

/// go-yaml v2's `keyList.Less` for string keys.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if key_less(a, b) {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Go `encoding/json`'s text for a float64.
pub fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, exp) = shortest(f);
        let mut s = String::new();
        if f < 0.0 {
            s.push('-');
        }
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&exp.abs().to_string());
        s
    } else {
        format_f(f)
    }
}

/// What go-yaml v2 prints for a float64 that went through JSON text.
fn yaml_float(f: f64) -> String {
    let j = json_float(f);
    let body = j.strip_prefix('-').unwrap_or(&j);
    if body.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = j.parse::<i128>() {
            if v >= i64::MIN as i128 && v <= u64::MAX as i128 {
                return v.to_string();
            }
        }
    }
    // strconv.FormatFloat(f, 'g', -1, 64)
    let (digits, exp) = shortest(f);
    let neg = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let mut s = format!("{neg}{}", &digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&format!("{:02}", exp.abs()));
        s
    } else {
        format_f(f)
    }
}

/// Shortest round-trip digits and decimal exponent (d.ddd × 10^exp).
fn shortest(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `%f` with the shortest digits.
fn format_f(f: f64) -> String {
    let (digits, exp) = shortest(f);
    let neg = if f < 0.0 { "-" } else { "" };
    if f == 0.0 {
        return "0".into();
    }
    let n = digits.len() as i32;
    let s = if exp >= n - 1 {
        format!("{digits}{}", "0".repeat((exp - (n - 1)) as usize))
    } else if exp >= 0 {
        format!(
            "{}.{}",
            &digits[..(exp + 1) as usize],
            &digits[(exp + 1) as usize..]
        )
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    };
    format!("{neg}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_go_yaml_v2() {
        let mut keys = vec!["aB", "a_b", "a.b", "a-b", "a", "B", "Ab", "9", "1a", "-x"];
        keys.sort_by(|a, b| key_cmp(a, b));
        assert_eq!(
            keys,
            vec!["-x", "1a", "9", "Ab", "B", "a", "a-b", "a.b", "a_b", "aB"]
        );
        let mut keys = vec!["a10", "a9", "B", "_u"];
        keys.sort_by(|a, b| key_cmp(a, b));
        assert_eq!(keys, vec!["_u", "B", "a9", "a10"]);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(yaml_float(1.0), "1");
        assert_eq!(yaml_float(1234567.5), "1.2345675e+06");
        assert_eq!(yaml_float(0.000001), "1e-06");
        assert_eq!(yaml_float(0.5), "0.5");
        assert_eq!(json_float(1e21), "1e+21");
    }
}
