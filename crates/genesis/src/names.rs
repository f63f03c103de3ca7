//! Validated names: environments and entries.

use std::borrow::Borrow;
use std::fmt;

/// Longest environment name accepted.
pub const MAX_ENV_NAME_LEN: usize = 63;
/// Longest entry name accepted.
pub const MAX_ENTRY_NAME_LEN: usize = 255;

/// An environment name such as `staging` or `prod`: 1 to 63 characters of `A-Z a-z 0-9 . _ -`,
/// starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvName(String);

impl EnvName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        let ok_len = !name.is_empty() && name.len() <= MAX_ENV_NAME_LEN;
        let ok_first = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Env {
                name: printable(name),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvName({:?})", self.0)
    }
}

impl std::str::FromStr for EnvName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An entry name, which becomes an environment variable name at autoload:
/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryName(String);

impl EntryName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        if is_entry_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Entry {
                name: printable(name),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_entry_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ENTRY_NAME_LEN
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Borrow<str> for EntryName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryName({:?})", self.0)
    }
}

impl std::str::FromStr for EntryName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Names are not secret, but a caller might pass a value by mistake: show at most 64 characters,
/// escaped.
fn printable(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum NameError {
    #[error("`{name}` is not a valid environment name")]
    #[diagnostic(
        code(genesis::name::env),
        help(
            "use 1 to 63 characters of letters, digits, `.`, `_` and `-`, starting with a letter or digit (e.g. `staging`)"
        )
    )]
    Env { name: String },
    #[error("`{name}` is not a valid entry name")]
    #[diagnostic(
        code(genesis::name::entry),
        help(
            "entry names become environment variables: letters, digits and `_`, not starting with a digit, at most 255 characters"
        )
    )]
    Entry { name: String },
}
