//! Autoload as a pure function: the caller reads its environment and applies the plan.

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::envelope::{OpenError, open};
use crate::key::{KeyId, MasterKey};
use crate::names::EnvName;

/// What autoload would do: the entries to set (absent from the environment) and the names
/// skipped (already set: an explicit environment wins, even when empty). `Debug` redacts values.
#[derive(Debug)]
pub struct AutoloadPlan {
    pub set: Vec<(String, SecretString)>,
    pub skipped: Vec<String>,
    pub key_id: KeyId,
    pub env: EnvName,
    pub sealed_at: u64,
}

impl AutoloadPlan {
    /// Names that will be set, for logging.
    pub fn set_names(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(|(n, _)| n.as_str())
    }
}

/// Open `envelope_text` with `key` for `expected_env` and plan set-if-absent: every entry whose
/// name `lookup` does not find goes to `set`, the others to `skipped`. Values that `lookup`
/// returns are only tested for presence and wiped at once.
pub fn autoload(
    envelope_text: &str,
    key: &MasterKey,
    expected_env: &EnvName,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<AutoloadPlan, OpenError> {
    let opened = open(envelope_text, key, expected_env)?;
    let key_id = opened.key_id();
    let env = opened.env().clone();
    let sealed_at = opened.sealed_at();
    let mut set = Vec::new();
    let mut skipped = Vec::new();
    for (name, value) in opened.into_entries() {
        let present = lookup(name.as_str()).map(Zeroizing::new).is_some();
        if present {
            skipped.push(name.to_string());
        } else {
            set.push((name.to_string(), value));
        }
    }
    Ok(AutoloadPlan {
        set,
        skipped,
        key_id,
        env,
        sealed_at,
    })
}
