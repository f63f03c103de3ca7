//! Keyed fingerprints of secret values.
//!
//! A secret value is shown only as the first 8 hex digits of
//! `HMAC-SHA256(K, field || 0x00 || name || 0x00 || value)`. The key `K` is chosen by the caller:
//! [`Masker::random`] draws one per run (fingerprints then only say "changed" or "same" within
//! one diff), [`Masker::with_key`] takes a per-repository key so fingerprints are stable across
//! runs. Never an unkeyed hash: a plain `sha256(value)` of a short password is reversed by trying
//! candidates, and diffs land in CI logs and pull requests. Equality is decided on the full
//! 256-bit MAC, so truncation for display cannot hide a change.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::DiffError;

/// The keyed fingerprint of one secret value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
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

/// Computes fingerprints under one key.
#[derive(Clone)]
pub struct Masker {
    key: [u8; 32],
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Masker(<key redacted>)")
    }
}

impl Masker {
    /// A masker with a fresh random key (per run).
    pub fn random() -> Result<Masker, DiffError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| DiffError::Random {
            reason: e.to_string(),
        })?;
        Ok(Masker { key })
    }

    /// A masker keyed by `key` (any length; e.g. a per-repository secret).
    pub fn with_key(key: &[u8]) -> Masker {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"rel manifest-diff fingerprint v1");
        Masker {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// The fingerprint of `value` stored under `name` of `field` (e.g. `data`, `PASSWORD`).
    pub fn fingerprint(&self, field: &str, name: &str, value: &str) -> Fingerprint {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Fingerprint(mac.finalize().into_bytes().into())
    }
}

impl Drop for Masker {
    fn drop(&mut self) {
        // Best effort: the key is per run and never leaves the process.
        self.key = [0; 32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_and_never_show_the_value() {
        let a = Masker::with_key(b"repo-key-a");
        let b = Masker::with_key(b"repo-key-b");
        let fa = a.fingerprint("data", "PASSWORD", "hunter2");
        assert_eq!(fa, a.fingerprint("data", "PASSWORD", "hunter2"));
        assert_ne!(fa, b.fingerprint("data", "PASSWORD", "hunter2"));
        assert_ne!(fa, a.fingerprint("data", "PASSWORD", "hunter3"));
        assert_ne!(fa, a.fingerprint("data", "OTHER", "hunter2"));
        let shown = format!("{fa} {fa:?} {a:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("repo-key"));
        assert_eq!(fa.to_string().len(), 8);
        // Not the unkeyed hash of the value.
        use sha2::Digest as _;
        let plain: String = Sha256::digest(b"hunter2")[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(fa.to_string(), plain);
        let r1 = Masker::random().unwrap();
        let r2 = Masker::random().unwrap();
        assert_ne!(
            r1.fingerprint("data", "K", "v"),
            r2.fingerprint("data", "K", "v")
        );
    }
}
