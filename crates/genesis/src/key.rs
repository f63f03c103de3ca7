//! The master key and its public key id.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a key id in bytes (shown as twice as many hex digits).
pub const KEY_ID_LEN: usize = 8;

const KEY_ID_DOMAIN: &[u8] = b"rel-genesis key-id v1\0";

/// A 32-byte master key. Its bytes live in a zeroize-on-drop box; `Debug` shows the key id only,
/// and there is no `Display`: the base64 text form is only reachable through [`MasterKey::to_base64`],
/// which returns a [`SecretString`].
pub struct MasterKey {
    bytes: SecretBox<[u8; KEY_LEN]>,
    id: KeyId,
}

impl MasterKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        Self::generate_with(&mut crypto_secretbox::aead::OsRng)
    }

    /// A fresh random key from the given cryptographic generator.
    pub fn generate_with(rng: &mut impl CryptoRngCore) -> Result<Self, KeyError> {
        let mut failed = false;
        let bytes = SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            failed = rng.try_fill_bytes(k).is_err();
        });
        if failed {
            return Err(KeyError::Randomness);
        }
        Ok(Self::from_secret_box(bytes))
    }

    /// Build a key from raw bytes. The caller's buffer is zeroized when it drops.
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let boxed = SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| k.copy_from_slice(&bytes[..]));
        Self::from_secret_box(boxed)
    }

    /// Parse the base64 text form (standard alphabet, padded; surrounding whitespace is ignored,
    /// so a key file that ends in a newline reads fine). Errors never echo the text.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(KeyError::Empty);
        }
        let decoded = Zeroizing::new(STANDARD.decode(trimmed).map_err(|_| KeyError::BadBase64)?);
        if decoded.len() != KEY_LEN {
            return Err(KeyError::WrongLength { got: decoded.len() });
        }
        let boxed = SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| k.copy_from_slice(&decoded));
        Ok(Self::from_secret_box(boxed))
    }

    /// The base64 text form (44 characters), for writing a key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.bytes.expose_secret()))
    }

    /// The key's public id, derived from the key with a domain-separated SHA-256.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        self.bytes.expose_secret()
    }

    fn from_secret_box(bytes: SecretBox<[u8; KEY_LEN]>) -> Self {
        let id = KeyId::derive(bytes.expose_secret());
        Self { bytes, id }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.id.to_string())
            .finish_non_exhaustive()
    }
}

/// The public id of a master key: the first 8 bytes of
/// `SHA-256("rel-genesis key-id v1\0" || key)`, shown as 16 lowercase hex digits.
/// It names the key in errors ("sealed for key id X, given key id Y") without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub(crate) [u8; KEY_ID_LEN]);

impl KeyId {
    fn derive(key: &[u8; KEY_LEN]) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_ID_DOMAIN);
        h.update(key);
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// The raw 8 bytes, as they sit in the envelope header.
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a master key could not be read or made. Never contains any part of the key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("the master key is empty")]
    #[diagnostic(
        code(genesis::key::empty),
        help(
            "give the master key itself: 44 base64 characters encoding 32 bytes; check that the file or variable holding it is not empty"
        )
    )]
    Empty,
    #[error("the master key is not valid base64")]
    #[diagnostic(
        code(genesis::key::bad_base64),
        help(
            "a master key is 44 characters of standard base64 (A-Z a-z 0-9 + /, `=` padding), as generated; check that it was not cut, quoted or re-encoded"
        )
    )]
    BadBase64,
    #[error("the master key decodes to {got} bytes, expected 32")]
    #[diagnostic(
        code(genesis::key::wrong_length),
        help(
            "a master key is exactly 32 random bytes; check that the whole key was given and not encoded twice, or generate a new one"
        )
    )]
    WrongLength { got: usize },
    #[error("the operating system's random number generator failed")]
    #[diagnostic(
        code(genesis::key::randomness),
        help(
            "no key was made; retry, and if it fails again check that the system's entropy source (`getrandom`, /dev/urandom) is available, e.g. not blocked by a seccomp profile"
        )
    )]
    Randomness,
}
