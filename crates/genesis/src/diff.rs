//! What a source would change in an envelope, with values shown only as keyed fingerprints.
//!
//! A changed value is shown as the first 8 hex digits of
//! `HMAC-SHA256(K_diff, name || 0x00 || value)`, where `K_diff = HMAC-SHA256(master key,
//! "rel-genesis diff-fingerprint v1")`. Why keyed: a plain `sha256(value)` of a low-entropy value
//! (a port, `true`, a short password) is reversed by trying candidates, and diff output lands in CI
//! logs and pull requests. Keyed with a subkey of the master key, only a holder of the master key
//! (who can open the envelope anyway) can test guesses. Why not a random per-diff salt: fingerprints
//! stay stable across runs, so an operator can compare the fingerprint in today's diff with the one
//! from `rel unseal` yesterday. Including the name means equal values under two names do not show
//! as equal. 32 bits is enough to tell values apart by eye and little enough to reveal nothing more.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::entries::Entries;
use crate::envelope::Opened;
use crate::key::MasterKey;

const DIFF_DOMAIN: &[u8] = b"rel-genesis diff-fingerprint v1";

/// A short keyed hash of an entry's value (8 hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The fingerprint of `value` under `name`, keyed by `key` (see the module docs).
pub fn fingerprint(key: &MasterKey, name: &str, value: &SecretString) -> Fingerprint {
    let mut sub =
        <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    sub.update(DIFF_DOMAIN);
    let subkey = zeroize::Zeroizing::new(sub.finalize().into_bytes());
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&subkey).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.update(&[0]);
    mac.update(value.expose_secret().as_bytes());
    let out = mac.finalize().into_bytes();
    Fingerprint([out[0], out[1], out[2], out[3]])
}

/// One changed entry: its name and the fingerprints of the old and new values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub name: String,
    pub old: Fingerprint,
    pub new: Fingerprint,
}

/// What sealing `source` would change relative to an opened envelope. Names only, plus
/// fingerprints for changed values; safe to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
    pub unchanged: Vec<String>,
}

impl Diff {
    /// True when the source matches the envelope.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compare an opened envelope with a source. All lists are in name order.
pub fn diff(key: &MasterKey, opened: &Opened, source: &Entries) -> Diff {
    let sealed = opened.entries();
    let mut out = Diff::default();
    for (name, new) in source.iter() {
        match sealed.get(name.as_str()) {
            None => out.added.push(name.to_string()),
            Some(old) => {
                let same: bool = old
                    .expose_secret()
                    .as_bytes()
                    .ct_eq(new.expose_secret().as_bytes())
                    .into();
                if same {
                    out.unchanged.push(name.to_string());
                } else {
                    out.changed.push(Changed {
                        name: name.to_string(),
                        old: fingerprint(key, name.as_str(), old),
                        new: fingerprint(key, name.as_str(), new),
                    });
                }
            }
        }
    }
    out.removed = sealed
        .names()
        .filter(|n| !source.contains(n))
        .map(str::to_owned)
        .collect();
    out
}
