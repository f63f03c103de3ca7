//! Envelope format v1: sealing, parsing, opening, checking and re-wrapping.
//!
//! ```text
//! transport: standard base64 (padded) of the bytes below; ASCII whitespace is ignored when reading
//!
//! offset  size  field
//!      0     4  magic  "RGEN" (0x52 0x47 0x45 0x4e)
//!      4     1  format version, 0x01
//!      5     8  key id: SHA-256("rel-genesis key-id v1\0" || master key)[0..8]
//!     13    24  nonce: fresh random per seal (XSalsa20)
//!     37    16  Poly1305 tag           \ crypto_secretbox(plaintext, nonce, master key)
//!     53     n  ciphertext (n = |pt|)  /
//!
//! plaintext (inside the box; all integers big-endian):
//!   u8        format version (must equal the header's)
//!   u8        environment name length L (1..=63), then L bytes of the name
//!   u64       sealed-at, Unix seconds
//!   u32       entry count N
//!   N times:  u16 name length, name bytes (an EntryName); u32 value length, value bytes (UTF-8)
//!             names strictly ascending (sorted, unique); nothing may follow the last entry
//! ```
//!
//! Secretbox has no associated data, so the header is not authenticated directly: the version is
//! repeated inside the plaintext and compared after opening, and the key id is bound because a
//! different key cannot open the box. The environment is checked after opening.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::rand_core::CryptoRngCore;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::entries::Entries;
use crate::key::{KEY_ID_LEN, KeyId, MasterKey};
use crate::names::{EntryName, EnvName};

/// The four magic bytes that open every envelope.
pub const MAGIC: [u8; 4] = *b"RGEN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Nonce length (XSalsa20).
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Header length: magic, version, key id, nonce.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN;
/// Smallest possible v1 envelope, in bytes after base64 decoding.
pub const MIN_ENVELOPE_LEN: usize = HEADER_LEN + TAG_LEN + MIN_PLAINTEXT_LEN;
/// Largest envelope text accepted (1 MiB); Key Vault itself holds at most 25 KB.
pub const MAX_ENVELOPE_TEXT_LEN: usize = 1 << 20;

const MIN_PLAINTEXT_LEN: usize = 1 + 1 + 1 + 8 + 4;

/// The public part of an envelope: readable without the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub key_id: KeyId,
}

/// A parsed (not yet opened) envelope.
#[derive(Clone)]
pub struct Envelope {
    header: Header,
    nonce: [u8; NONCE_LEN],
    sealed_box: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &self.header.version)
            .field("key_id", &self.header.key_id)
            .field("box_len", &self.sealed_box.len())
            .finish()
    }
}

impl Envelope {
    /// Parse the base64 text form: checks base64, magic, version and length, not the key.
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        if text.len() > MAX_ENVELOPE_TEXT_LEN {
            return Err(OpenError::TooLarge {
                len: text.len(),
                max: MAX_ENVELOPE_TEXT_LEN,
            });
        }
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if compact.is_empty() {
            return Err(OpenError::Empty);
        }
        let bytes = STANDARD
            .decode(&compact)
            .map_err(|e| OpenError::BadBase64 {
                detail: match e {
                    base64::DecodeError::InvalidByte(offset, _) => {
                        format!("invalid character at offset {offset}")
                    }
                    base64::DecodeError::InvalidLength(len) => format!("invalid length {len}"),
                    base64::DecodeError::InvalidLastSymbol(offset, _) => {
                        format!("invalid last character at offset {offset}")
                    }
                    base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
                },
            })?;
        Self::from_bytes(&bytes)
    }

    /// Parse the binary form (after base64 decoding).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpenError> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(OpenError::BadMagic);
        }
        if bytes.len() <= MAGIC.len() {
            return Err(OpenError::Truncated {
                len: bytes.len(),
                min: MIN_ENVELOPE_LEN,
            });
        }
        let version = bytes[MAGIC.len()];
        if version != FORMAT_VERSION {
            return Err(OpenError::UnknownVersion { found: version });
        }
        if bytes.len() < MIN_ENVELOPE_LEN {
            return Err(OpenError::Truncated {
                len: bytes.len(),
                min: MIN_ENVELOPE_LEN,
            });
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&bytes[5..5 + KEY_ID_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[5 + KEY_ID_LEN..HEADER_LEN]);
        Ok(Self {
            header: Header {
                version,
                key_id: KeyId(key_id),
            },
            nonce,
            sealed_box: bytes[HEADER_LEN..].to_vec(),
        })
    }

    pub fn header(&self) -> Header {
        self.header
    }

    pub fn key_id(&self) -> KeyId {
        self.header.key_id
    }

    /// Open with `key`, whatever environment it was sealed for.
    pub fn open(&self, key: &MasterKey) -> Result<Opened, OpenError> {
        let given = key.key_id();
        if given != self.header.key_id {
            return Err(OpenError::WrongKey {
                sealed_for: self.header.key_id,
                given,
            });
        }
        let cipher = XSalsa20Poly1305::new(Key::from_slice(key.expose()));
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&self.nonce), self.sealed_box.as_slice())
                .map_err(|_| OpenError::AuthenticationFailed { key_id: given })?,
        );
        let decoded =
            decode_plaintext(&plaintext).map_err(|reason| OpenError::Malformed { reason })?;
        if decoded.version != self.header.version {
            return Err(OpenError::VersionMismatch {
                header: self.header.version,
                inner: decoded.version,
            });
        }
        Ok(Opened {
            key_id: given,
            env: decoded.env,
            sealed_at: decoded.sealed_at,
            entries: decoded.entries,
        })
    }
}

/// An opened envelope: environment, sealed-at time and entries.
#[derive(Debug)]
pub struct Opened {
    key_id: KeyId,
    env: EnvName,
    sealed_at: u64,
    entries: Entries,
}

impl Opened {
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    pub fn env(&self) -> &EnvName {
        &self.env
    }
    /// When the contents were sealed, in Unix seconds (as given to [`seal`]).
    pub fn sealed_at(&self) -> u64 {
        self.sealed_at
    }
    pub fn entries(&self) -> &Entries {
        &self.entries
    }
    pub fn into_entries(self) -> Entries {
        self.entries
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.names()
    }
    /// A value-free summary, safe to print.
    pub fn summary(&self) -> Summary {
        Summary {
            key_id: self.key_id,
            env: self.env.clone(),
            sealed_at: self.sealed_at,
            names: self.entries.names().map(str::to_owned).collect(),
        }
    }
}

/// What `check` reports: everything about an envelope except its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub key_id: KeyId,
    pub env: EnvName,
    pub sealed_at: u64,
    pub names: Vec<String>,
}

/// Seal `entries` for `env` under `key`, with a fresh random nonce from the OS generator.
/// `sealed_at` is the current time in Unix seconds (the caller reads the clock: this crate does no I/O).
pub fn seal(
    key: &MasterKey,
    env: &EnvName,
    entries: &Entries,
    sealed_at: u64,
) -> Result<String, SealError> {
    seal_with_rng(
        key,
        env,
        entries,
        sealed_at,
        &mut crypto_secretbox::aead::OsRng,
    )
}

/// [`seal`] with the nonce drawn from `rng`.
pub fn seal_with_rng(
    key: &MasterKey,
    env: &EnvName,
    entries: &Entries,
    sealed_at: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<String, SealError> {
    let plaintext = encode_plaintext(env, sealed_at, entries)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.try_fill_bytes(&mut nonce)
        .map_err(|_| SealError::Randomness)?;
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key.expose()));
    let sealed_box = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
        .map_err(|_| SealError::TooLarge)?;
    let mut out = Vec::with_capacity(HEADER_LEN + sealed_box.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(key.key_id().as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed_box);
    Ok(STANDARD.encode(out))
}

/// Read the public header (version, key id) without a key.
pub fn inspect(text: &str) -> Result<Header, OpenError> {
    Envelope::parse(text).map(|e| e.header())
}

/// Parse and open `text` with `key`, and require it to have been sealed for `expected_env`.
pub fn open(text: &str, key: &MasterKey, expected_env: &EnvName) -> Result<Opened, OpenError> {
    let opened = open_any_env(text, key)?;
    if opened.env != *expected_env {
        return Err(OpenError::WrongEnvironment {
            sealed_for: opened.env.clone(),
            expected: expected_env.clone(),
        });
    }
    Ok(opened)
}

/// Parse and open `text` with `key`, whatever environment it was sealed for.
pub fn open_any_env(text: &str, key: &MasterKey) -> Result<Opened, OpenError> {
    Envelope::parse(text)?.open(key)
}

/// Verify that `text` opens with `key` for `expected_env`; report names only.
pub fn check(text: &str, key: &MasterKey, expected_env: &EnvName) -> Result<Summary, OpenError> {
    open(text, key, expected_env).map(|o| o.summary())
}

/// The result of a re-wrap.
#[derive(Debug, Clone)]
pub struct Resealed {
    /// The new envelope text.
    pub text: String,
    pub from: KeyId,
    pub to: KeyId,
    pub env: EnvName,
    pub sealed_at: u64,
    pub entry_count: usize,
}

/// Re-wrap an envelope for `new_key`: open with `old_key`, seal the same contents (environment,
/// entries, and the original sealed-at time) under `new_key` with a fresh nonce. This rotates the
/// master key, not the secret values: to rotate a value, edit the source and seal again.
pub fn reseal(
    text: &str,
    old_key: &MasterKey,
    new_key: &MasterKey,
) -> Result<Resealed, ResealError> {
    reseal_with_rng(text, old_key, new_key, &mut crypto_secretbox::aead::OsRng)
}

/// [`reseal`] with the nonce drawn from `rng`.
pub fn reseal_with_rng(
    text: &str,
    old_key: &MasterKey,
    new_key: &MasterKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Resealed, ResealError> {
    if old_key.key_id() == new_key.key_id() {
        return Err(ResealError::SameKey {
            key_id: new_key.key_id(),
        });
    }
    let envelope = Envelope::parse(text)?;
    if envelope.key_id() == new_key.key_id() {
        return Err(ResealError::AlreadyUnderNewKey {
            key_id: new_key.key_id(),
        });
    }
    let opened = envelope.open(old_key)?;
    let text = seal_with_rng(new_key, &opened.env, &opened.entries, opened.sealed_at, rng)?;
    Ok(Resealed {
        text,
        from: old_key.key_id(),
        to: new_key.key_id(),
        env: opened.env.clone(),
        sealed_at: opened.sealed_at,
        entry_count: opened.entries.len(),
    })
}

pub(crate) struct Decoded {
    pub version: u8,
    pub env: EnvName,
    pub sealed_at: u64,
    pub entries: Entries,
}

fn encode_plaintext(
    env: &EnvName,
    sealed_at: u64,
    entries: &Entries,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let mut len = MIN_PLAINTEXT_LEN - 1 + env.as_str().len();
    for (name, value) in entries.iter() {
        len += 2 + name.as_str().len() + 4 + value.expose_secret().len();
    }
    let count = u32::try_from(entries.len()).map_err(|_| SealError::TooLarge)?;
    // Pre-sized so the buffer never reallocates (a reallocation would leave an unzeroized copy).
    let mut buf = Zeroizing::new(Vec::with_capacity(len));
    buf.push(FORMAT_VERSION);
    buf.push(env.as_str().len() as u8);
    buf.extend_from_slice(env.as_str().as_bytes());
    buf.extend_from_slice(&sealed_at.to_be_bytes());
    buf.extend_from_slice(&count.to_be_bytes());
    for (name, value) in entries.iter() {
        let value = value.expose_secret().as_bytes();
        let vlen = u32::try_from(value.len()).map_err(|_| SealError::ValueTooLarge {
            name: name.to_string(),
        })?;
        buf.extend_from_slice(&(name.as_str().len() as u16).to_be_bytes());
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(&vlen.to_be_bytes());
        buf.extend_from_slice(value);
    }
    debug_assert_eq!(buf.len(), len);
    Ok(buf)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(what)?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, &'static str> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, &'static str> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, &'static str> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, &'static str> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// Decode the plaintext. Errors are static reasons that never contain plaintext bytes.
pub(crate) fn decode_plaintext(bytes: &[u8]) -> Result<Decoded, &'static str> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("missing format version")?;
    let env_len = r.u8("missing environment name")? as usize;
    let env_bytes = r.take(env_len, "environment name runs past the end")?;
    let env = std::str::from_utf8(env_bytes)
        .ok()
        .and_then(|s| EnvName::new(s).ok())
        .ok_or("invalid environment name")?;
    let sealed_at = r.u64("missing sealed-at time")?;
    let count = r.u32("missing entry count")?;
    let mut entries = Entries::new();
    let mut previous: Option<EntryName> = None;
    for _ in 0..count {
        let name_len = r.u16("entry name length runs past the end")? as usize;
        let name_bytes = r.take(name_len, "entry name runs past the end")?;
        let name = std::str::from_utf8(name_bytes)
            .ok()
            .and_then(|s| EntryName::new(s).ok())
            .ok_or("invalid entry name")?;
        if previous.as_ref().is_some_and(|p| *p >= name) {
            return Err("entry names are not strictly ascending");
        }
        let value_len = r.u32("entry value length runs past the end")? as usize;
        let value_bytes = r.take(value_len, "entry value runs past the end")?;
        let value = std::str::from_utf8(value_bytes).map_err(|_| "entry value is not UTF-8")?;
        previous = Some(name.clone());
        entries.insert(name, SecretString::from(value.to_owned()));
    }
    if r.pos != bytes.len() {
        return Err("trailing bytes after the last entry");
    }
    Ok(Decoded {
        version,
        env,
        sealed_at,
        entries,
    })
}

/// Why an envelope could not be opened. None of these carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum OpenError {
    #[error("the envelope is empty")]
    #[diagnostic(
        code(genesis::open::empty),
        help(
            "pass the sealed envelope's base64 text; check that the file or variable holding it is not empty"
        )
    )]
    Empty,
    #[error("the envelope is {len} bytes long; the limit is {max}")]
    #[diagnostic(
        code(genesis::open::too_large),
        help(
            "this is not a sealed envelope; check that the right file or variable is passed (the envelope, not an archive or a bundle of several)"
        )
    )]
    TooLarge { len: usize, max: usize },
    #[error("the envelope is not valid base64 ({detail})")]
    #[diagnostic(
        code(genesis::open::bad_base64),
        help("an envelope is standard base64 text; check it was copied whole and not re-encoded")
    )]
    BadBase64 { detail: String },
    #[error("not a genesis envelope: bad magic bytes (expected \"RGEN\")")]
    #[diagnostic(
        code(genesis::open::bad_magic),
        help("pass the sealed envelope's base64 text, not the dotenv source or the master key")
    )]
    BadMagic,
    #[error(
        "the envelope is truncated: {len} bytes after base64 decoding, a v1 envelope has at least {min}"
    )]
    #[diagnostic(
        code(genesis::open::truncated),
        help("the envelope was cut short; copy it again from the secret store")
    )]
    Truncated { len: usize, min: usize },
    #[error("unknown envelope format version {found}; this build reads version 1")]
    #[diagnostic(
        code(genesis::open::unknown_version),
        help("upgrade rel to a version that reads this envelope")
    )]
    UnknownVersion { found: u8 },
    #[error("wrong key: the envelope was sealed for key id {sealed_for}, given key id {given}")]
    #[diagnostic(
        code(genesis::open::wrong_key),
        help("use the master key whose id is {sealed_for} (REL_MASTER_KEY, --key-file or stdin)")
    )]
    WrongKey { sealed_for: KeyId, given: KeyId },
    #[error(
        "authentication failed: the envelope was altered or corrupted (key id {key_id} matches)"
    )]
    #[diagnostic(
        code(genesis::open::authentication_failed),
        help(
            "the envelope has been tampered with or damaged; restore it from the secret store or seal it again"
        )
    )]
    AuthenticationFailed { key_id: KeyId },
    #[error("the envelope opened but its contents are malformed: {reason}")]
    #[diagnostic(code(genesis::open::malformed), help("seal it again from its source"))]
    Malformed { reason: &'static str },
    #[error("the envelope header says format version {header}, its contents say {inner}")]
    #[diagnostic(
        code(genesis::open::version_mismatch),
        help("the header was altered; restore the envelope")
    )]
    VersionMismatch { header: u8, inner: u8 },
    #[error("wrong environment: the envelope was sealed for `{sealed_for}`, expected `{expected}`")]
    #[diagnostic(
        code(genesis::open::wrong_environment),
        help(
            "use the envelope sealed for `{expected}`, or seal that environment's source for `{expected}`"
        )
    )]
    WrongEnvironment {
        sealed_for: EnvName,
        expected: EnvName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SealError {
    #[error("the operating system's random number generator failed")]
    #[diagnostic(
        code(genesis::seal::randomness),
        help(
            "nothing was sealed; retry, and if it fails again check that the system's entropy source (`getrandom`, /dev/urandom) is available, e.g. not blocked by a seccomp profile"
        )
    )]
    Randomness,
    #[error("the value of `{name}` is too large to seal")]
    #[diagnostic(
        code(genesis::seal::value_too_large),
        help("values are limited to 4 GiB; Key Vault holds 25 KB in all")
    )]
    ValueTooLarge { name: String },
    #[error("the entries are too large to seal")]
    #[diagnostic(
        code(genesis::seal::too_large),
        help(
            "shrink the source: an envelope opens only up to 1 MiB of base64 text and Key Vault holds 25 KB in all; keep large files (certificate bundles, archives) out of it and mount them from their own secret"
        )
    )]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ResealError {
    #[error("the new key is the old key (key id {key_id})")]
    #[diagnostic(
        code(genesis::reseal::same_key),
        help("generate a new master key and pass that as the new key")
    )]
    SameKey { key_id: KeyId },
    #[error("the envelope is already sealed for the new key (key id {key_id})")]
    #[diagnostic(
        code(genesis::reseal::already_done),
        help("nothing to do for this envelope")
    )]
    AlreadyUnderNewKey { key_id: KeyId },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Seal(#[from] SealError),
}
