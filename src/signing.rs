//! The release signing key and the three signature formats it makes, all over one key pair:
//! Ed25519 (`rel keygen --signing`, the default) or ECDSA P-256 (`--algorithm ecdsa-p256`,
//! cosign's default key type).
//!
//! - **minisign** detached signatures (`releases/<v>.yaml.minisig`, records): algorithm `ED`
//!   (Ed25519 over BLAKE2b-512 of the file), key id, trusted comment and global signature, as
//!   `minisign -V` and the `minisign-verify` crate read them. Verification uses `minisign-verify`.
//! - **cosign** image signatures: Ed25519 over the simple-signing payload bytes; the public key in
//!   PEM/SPKI is what `cosign verify --key` and containers/image's `sigstoreSigned` policy take.
//! - **DSSE** envelopes (in-toto attestations): Ed25519 over the pre-authentication encoding.
//!
//! The public key is written the minisign way (`RW...`, base64 of `Ed` + key id + key) in
//! rel.toml's `[trust]`; [`PublicKey::to_pem`] gives the same key for cosign-style verifiers.
//! The secret key never reaches `Debug`, output or a child process.
//!
//! An ECDSA P-256 key signs over SHA-256 of the message, DER-encoded (what cosign, `openssl dgst
//! -sha256 -verify` and DSSE verifiers expect); its public key in `[trust]` is the base64 of its
//! SubjectPublicKeyInfo (the PEM body on one line, `MFkw...`). minisign has no ECDSA, so an ECDSA
//! key signs images (cosign) and provenance (DSSE) only: signing a lockfile or a record with it
//! is refused, and a release whose lockfile must verify needs an Ed25519 key trusted as well.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::{Error, env_vars};

/// The first line of a secret key file `rel keygen --signing` writes.
const SECRET_COMMENT: &str = "untrusted comment: rel signing secret key";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the key's 32 bytes follow.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1): the 65-byte
/// uncompressed point follows.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// How an ECDSA P-256 secret key line starts (an Ed25519 one is the bare base64 seed).
const ECDSA_SECRET_PREFIX: &str = "ecdsa-p256:";
/// DSSE payload type of in-toto statements.
pub(crate) const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The algorithm of a release signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519: minisign, cosign and DSSE.
    Ed25519,
    /// ECDSA P-256 over SHA-256: cosign and DSSE (minisign has no ECDSA).
    EcdsaP256,
}

/// A signing key with its key id. Wiped on drop; `Debug` shows the id only.
pub struct SigningKey {
    key: Secret,
    id: [u8; 8],
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
}

#[derive(Clone, PartialEq, Eq)]
enum Verifying {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public().id_hex())
    }
}

/// A trusted public key (Ed25519 or ECDSA P-256) with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: Verifying,
    id: [u8; 8],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id_hex())
    }
}

/// What goes wrong with the release signing key (never carries the key text).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SigningError {
    #[error("cannot draw random bytes for a signing key")]
    #[diagnostic(
        code(rel::signing::random),
        help("the operating system's random source failed; try again")
    )]
    Random(#[source] getrandom::Error),

    #[error("REL_SIGNING_KEY is not set or not UTF-8")]
    #[diagnostic(
        code(rel::signing::no_env_key),
        help("give the key `rel keygen --signing` wrote, or pass --signing-key-file FILE")
    )]
    NoEnvKey,

    #[error("the signing key from {from} is unusable")]
    #[diagnostic(code(rel::signing::unusable), forward(source))]
    Unusable {
        from: String,
        #[source]
        source: KeyError,
    },

    #[error(
        "{what} is signed with minisign, which has only Ed25519 keys; signing key {key_id} is ECDSA P-256"
    )]
    #[diagnostic(
        code(rel::signing::minisign_ed25519),
        help(
            "sign lockfiles and records with an Ed25519 key (`rel keygen --signing`); an ECDSA P-256 key signs images and their provenance (`rel build --push`) only"
        )
    )]
    MinisignNeedsEd25519 { what: String, key_id: String },

    #[error("{path} already exists; rel keygen never replaces a key")]
    #[diagnostic(
        code(rel::signing::key_exists),
        help(
            "a lost signing key cannot sign again: pick another file name, or move the old key away yourself"
        )
    )]
    KeyExists { path: String },
}

impl SigningError {
    /// An existing key is a refusal (exit 1); the rest are input or environment errors.
    pub fn exit(&self) -> crate::Exit {
        match self {
            SigningError::KeyExists { .. } => crate::Exit::Failed,
            _ => crate::Exit::Error,
        }
    }
}

/// Why a key text is unusable. Never carries the key text itself.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("not base64")]
    #[diagnostic(help("a key is one line of base64, as `rel keygen --signing` prints it"))]
    Base64,
    #[error("{0} bytes where {1} were expected")]
    #[diagnostic(help("copy the whole line `rel keygen --signing` printed"))]
    Length(usize, usize),
    #[error("not an Ed25519 minisign key (algorithm `{0}`)")]
    #[diagnostic(help(
        "rel trusts Ed25519 keys (`RW...`) and ECDSA P-256 keys (`MFkw...`): `rel keygen --signing` makes one"
    ))]
    Algorithm(String),
    #[error("the key's bytes are not an Ed25519 public key")]
    #[diagnostic(help("copy the whole line `rel keygen --signing` printed"))]
    Point,
    #[error("the key's bytes are not an ECDSA P-256 key")]
    #[diagnostic(help(
        "copy the whole line `rel keygen --signing --algorithm ecdsa-p256` printed"
    ))]
    EcdsaPoint,
}

impl SigningKey {
    /// A new Ed25519 key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, Error> {
        SigningKey::generate_with(Algorithm::Ed25519)
    }

    /// A new key of `algorithm` from the operating system's random source.
    pub fn generate_with(algorithm: Algorithm) -> Result<SigningKey, Error> {
        loop {
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(seed.as_mut()).map_err(SigningError::Random)?;
            match algorithm {
                Algorithm::Ed25519 => return Ok(SigningKey::from_seed(&seed)),
                // A scalar of 0 or ≥ n (chance about 2^-32) is drawn again.
                Algorithm::EcdsaP256 => {
                    if let Ok(key) = p256::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                        return Ok(SigningKey::from_ecdsa(key));
                    }
                }
            }
        }
    }

    fn from_seed(seed: &[u8; 32]) -> SigningKey {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let id = key_id(&Verifying::Ed25519(key.verifying_key()));
        SigningKey {
            key: Secret::Ed25519(key),
            id,
        }
    }

    fn from_ecdsa(key: p256::ecdsa::SigningKey) -> SigningKey {
        let id = key_id(&Verifying::EcdsaP256(*key.verifying_key()));
        SigningKey {
            key: Secret::EcdsaP256(key),
            id,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.key {
            Secret::Ed25519(_) => Algorithm::Ed25519,
            Secret::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// The secret key file's text: a comment line and the secret in base64 (the Ed25519 seed, or
    /// `ecdsa-p256:` and the P-256 scalar).
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(120));
        text.push_str(SECRET_COMMENT);
        text.push(' ');
        text.push_str(&self.public().id_hex());
        text.push('\n');
        match &self.key {
            Secret::Ed25519(k) => text.push_str(&B64.encode(k.to_bytes())),
            Secret::EcdsaP256(k) => {
                text.push_str(ECDSA_SECRET_PREFIX);
                text.push_str(&B64.encode(Zeroizing::new(k.to_bytes().to_vec()).as_slice()));
            }
        }
        text.push('\n');
        text
    }

    /// Parse a secret key: the text [`SigningKey::to_secret_text`] writes, or its base64 line alone.
    pub fn from_secret_text(text: &str) -> Result<SigningKey, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or_default();
        let (ecdsa, line) = match line.strip_prefix(ECDSA_SECRET_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let bytes = Zeroizing::new(B64.decode(line).map_err(|_| KeyError::Base64)?);
        if ecdsa {
            let key =
                p256::ecdsa::SigningKey::from_slice(&bytes).map_err(|_| KeyError::EcdsaPoint)?;
            return Ok(SigningKey::from_ecdsa(key));
        }
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Length(bytes.len(), 32))?,
        );
        Ok(SigningKey::from_seed(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: match &self.key {
                Secret::Ed25519(k) => Verifying::Ed25519(k.verifying_key()),
                Secret::EcdsaP256(k) => Verifying::EcdsaP256(*k.verifying_key()),
            },
            id: self.id,
        }
    }

    /// A signature over `message` itself (cosign's over the simple-signing payload, DSSE's over
    /// the pre-authentication encoding): Ed25519's 64 bytes, or ECDSA P-256 over SHA-256 of
    /// `message`, DER-encoded.
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Secret::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            Secret::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }

    /// A minisign detached signature of `message` (algorithm `ED`: the BLAKE2b-512 prehash).
    /// Deterministic: the same key, bytes and comment give the same signature file. `None` for
    /// an ECDSA key: minisign has only Ed25519.
    pub fn sign_minisign(&self, message: &[u8], trusted_comment: &str) -> Option<String> {
        let Secret::Ed25519(key) = &self.key else {
            return None;
        };
        let hash = blake2::Blake2b512::digest(message);
        let sig = key.sign(&hash).to_bytes();
        let mut line = Vec::with_capacity(74);
        line.extend_from_slice(b"ED");
        line.extend_from_slice(&self.id);
        line.extend_from_slice(&sig);
        let mut global = Vec::with_capacity(64 + trusted_comment.len());
        global.extend_from_slice(&sig);
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = key.sign(&global).to_bytes();
        Some(format!(
            "untrusted comment: signature from rel secret key {}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            self.public().id_hex(),
            B64.encode(&line),
            B64.encode(global_sig)
        ))
    }

    /// A DSSE envelope (JSON) of `payload`, signed over its pre-authentication encoding.
    pub fn dsse_envelope(&self, payload_type: &str, payload: &[u8]) -> String {
        let sig = self.sign_raw(&pae(payload_type, payload));
        serde_json::json!({
            "payload": B64.encode(payload),
            "payloadType": payload_type,
            "signatures": [{"keyid": self.public().id_hex(), "sig": B64.encode(sig)}],
        })
        .to_string()
    }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Key ids are derived from the public key (the first 8 bytes of the SHA-256 of its bytes: the
/// Ed25519 key, or the uncompressed P-256 point), so the same secret always has the same id.
fn key_id(key: &Verifying) -> [u8; 8] {
    let hash = match key {
        Verifying::Ed25519(k) => sha2::Sha256::digest(k.as_bytes()),
        Verifying::EcdsaP256(k) => sha2::Sha256::digest(k.to_encoded_point(false).as_bytes()),
    };
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[..8]);
    id
}

impl PublicKey {
    /// Parse a public key as `[trust]` lists it: a minisign line (`RW...`, Ed25519) or the base64
    /// SubjectPublicKeyInfo of an ECDSA P-256 key (`MFkw...`, the PEM body on one line). A
    /// leading `untrusted comment:` line is skipped.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or_default();
        let bytes = B64.decode(line).map_err(|_| KeyError::Base64)?;
        match bytes.strip_prefix(&SPKI_P256_PREFIX[..]) {
            Some(point) => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| KeyError::EcdsaPoint)?;
                let key = Verifying::EcdsaP256(key);
                Ok(PublicKey {
                    id: key_id(&key),
                    key,
                })
            }
            None => PublicKey::from_minisign(line),
        }
    }

    /// Parse a minisign public key line (`RW...`; a leading `untrusted comment:` line is skipped).
    pub fn from_minisign(text: &str) -> Result<PublicKey, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or_default();
        let bytes = B64.decode(line).map_err(|_| KeyError::Base64)?;
        if bytes.len() != 42 {
            return Err(KeyError::Length(bytes.len(), 42));
        }
        if &bytes[..2] != b"Ed" {
            return Err(KeyError::Algorithm(
                String::from_utf8_lossy(&bytes[..2]).into_owned(),
            ));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[2..10]);
        let raw: [u8; 32] = bytes[10..].try_into().expect("32 bytes");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::Point)?;
        Ok(PublicKey {
            key: Verifying::Ed25519(key),
            id,
        })
    }

    /// The key as `[trust]` lists it: the minisign line of an Ed25519 key, the base64
    /// SubjectPublicKeyInfo of an ECDSA P-256 key.
    pub fn to_text(&self) -> String {
        match &self.key {
            Verifying::Ed25519(_) => self.to_minisign(),
            Verifying::EcdsaP256(_) => B64.encode(self.spki_der()),
        }
    }

    /// The minisign public key line (base64 of `Ed` + key id + key); an ECDSA key has none and
    /// gives its [`PublicKey::to_text`].
    pub fn to_minisign(&self) -> String {
        match &self.key {
            Verifying::Ed25519(k) => {
                let mut bytes = Vec::with_capacity(42);
                bytes.extend_from_slice(b"Ed");
                bytes.extend_from_slice(&self.id);
                bytes.extend_from_slice(k.as_bytes());
                B64.encode(bytes)
            }
            Verifying::EcdsaP256(_) => self.to_text(),
        }
    }

    fn spki_der(&self) -> Vec<u8> {
        match &self.key {
            Verifying::Ed25519(k) => {
                let mut der = SPKI_ED25519_PREFIX.to_vec();
                der.extend_from_slice(k.as_bytes());
                der
            }
            Verifying::EcdsaP256(k) => {
                let mut der = SPKI_P256_PREFIX.to_vec();
                der.extend_from_slice(k.to_encoded_point(false).as_bytes());
                der
            }
        }
    }

    /// The key in PEM (SubjectPublicKeyInfo), as cosign, OpenSSL and containers/image read it.
    pub fn to_pem(&self) -> String {
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            B64.encode(self.spki_der())
        )
    }

    /// The key id as minisign prints it (16 hex digits of the little-endian number).
    pub fn id_hex(&self) -> String {
        format!("{:016X}", u64::from_le_bytes(self.id))
    }

    /// Whether `sig` is this key's signature of `message` (Ed25519, or ECDSA P-256 over SHA-256,
    /// DER-encoded).
    pub fn verify_raw(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.key {
            Verifying::Ed25519(k) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|sig| k.verify(message, &sig).is_ok()),
            Verifying::EcdsaP256(k) => p256::ecdsa::Signature::from_der(sig)
                .is_ok_and(|sig| k.verify(message, &sig).is_ok()),
        }
    }

    /// Check a minisign signature file over `message` with `minisign-verify`; the trusted
    /// comment on success.
    pub fn verify_minisign(&self, message: &[u8], sig_text: &str) -> Result<String, String> {
        if let Verifying::EcdsaP256(_) = self.key {
            return Err(format!(
                "key {} is ECDSA P-256, and minisign signatures are Ed25519 only",
                self.id_hex()
            ));
        }
        let pk = minisign_verify::PublicKey::from_base64(&self.to_minisign())
            .map_err(|e| format!("public key: {e}"))?;
        let sig = minisign_verify::Signature::decode(sig_text)
            .map_err(|e| format!("not a minisign signature: {e}"))?;
        pk.verify(message, &sig, false).map_err(|e| e.to_string())?;
        Ok(sig.trusted_comment().to_owned())
    }

    /// The payload of a DSSE envelope when one of its signatures is this key's.
    pub fn verify_dsse(&self, envelope: &[u8]) -> Result<(String, Vec<u8>), String> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            payload: String,
            #[serde(rename = "payloadType")]
            payload_type: String,
            signatures: Vec<Sig>,
        }
        #[derive(serde::Deserialize)]
        struct Sig {
            sig: String,
        }
        let env: Envelope =
            serde_json::from_slice(envelope).map_err(|e| format!("not a DSSE envelope: {e}"))?;
        let payload = B64
            .decode(&env.payload)
            .map_err(|_| "the DSSE payload is not base64".to_owned())?;
        let message = pae(&env.payload_type, &payload);
        let ok = env.signatures.iter().any(|s| {
            B64.decode(&s.sig)
                .is_ok_and(|sig| self.verify_raw(&message, &sig))
        });
        if ok {
            Ok((env.payload_type, payload))
        } else {
            Err(format!("no signature by key {}", self.id_hex()))
        }
    }
}

/// Where the signing key comes from. Never a flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigningKeySource {
    /// `REL_SIGNING_KEY`.
    Env,
    /// `--signing-key-file FILE`; `-` is standard input.
    File(PathBuf),
}

impl SigningKeySource {
    /// `--signing-key-file` when given, else `REL_SIGNING_KEY` when set, else no key.
    pub(crate) fn pick(file: Option<&Path>) -> Option<SigningKeySource> {
        match file {
            Some(p) => Some(SigningKeySource::File(p.to_path_buf())),
            None => std::env::var_os(env_vars::SIGNING_KEY)
                .filter(|v| !v.is_empty())
                .map(|_| SigningKeySource::Env),
        }
    }

    fn describe(&self) -> String {
        match self {
            SigningKeySource::Env => format!("${}", env_vars::SIGNING_KEY),
            SigningKeySource::File(p) if p == Path::new("-") => "standard input".to_owned(),
            SigningKeySource::File(p) => format!("key file {}", p.display()),
        }
    }
}

/// Read and parse the signing key; the text is wiped once parsed.
pub(crate) fn load(source: &SigningKeySource) -> Result<SigningKey, Error> {
    let text: Zeroizing<String> = match source {
        SigningKeySource::Env => Zeroizing::new(
            std::env::var(env_vars::SIGNING_KEY).map_err(|_| SigningError::NoEnvKey)?,
        ),
        SigningKeySource::File(p) if p == Path::new("-") => {
            let mut buf = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| Error::io("read the signing key from standard input", "-", e))?;
            buf
        }
        SigningKeySource::File(path) => {
            let bytes = Zeroizing::new(
                std::fs::read(path).map_err(|e| Error::io("read the signing key file", path, e))?,
            );
            Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    SigningKey::from_secret_text(&text).map_err(|e| {
        SigningError::Unusable {
            from: source.describe(),
            source: e,
        }
        .into()
    })
}

/// Refuse an ECDSA key before anything is written: `what` (a lockfile, a record) is signed with
/// minisign, which has only Ed25519 keys.
pub(crate) fn ensure_minisign(key: &SigningKey, what: &str) -> Result<(), Error> {
    match key.algorithm() {
        Algorithm::Ed25519 => Ok(()),
        Algorithm::EcdsaP256 => Err(minisign_refusal(key, what)),
    }
}

fn minisign_refusal(key: &SigningKey, what: &str) -> Error {
    SigningError::MinisignNeedsEd25519 {
        what: what.to_owned(),
        key_id: key.public().id_hex(),
    }
    .into()
}

/// `releases/<file>.minisig`: the detached signature next to the signed file.
pub(crate) fn signature_path(signed: &Path) -> PathBuf {
    let mut name = signed.file_name().unwrap_or_default().to_os_string();
    name.push(".minisig");
    signed.with_file_name(name)
}

/// The trusted comment of a detached signature: the signed file's name (no time, so a rerun
/// writes the same bytes).
pub(crate) fn trusted_comment(signed: &Path) -> String {
    format!(
        "file:{}",
        signed.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Write the detached signature of `bytes` (the content of `signed`) unless an identical one is
/// there. Returns the signature's path.
pub(crate) fn write_detached(
    key: &SigningKey,
    signed: &Path,
    bytes: &[u8],
) -> Result<PathBuf, Error> {
    let path = signature_path(signed);
    let Some(text) = key.sign_minisign(bytes, &trusted_comment(signed)) else {
        return Err(minisign_refusal(key, &signed.display().to_string()));
    };
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    crate::atomic_write::write(&path, text.as_bytes())
        .map_err(|e| Error::io("write the signature", &path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_public_keys_round_trip() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_secret_text(&key.to_secret_text()).unwrap();
        assert_eq!(key.public(), again.public());
        let public = PublicKey::from_minisign(&key.public().to_minisign()).unwrap();
        assert_eq!(public, key.public());
        let Secret::Ed25519(secret) = &key.key else {
            panic!("an Ed25519 key")
        };
        assert!(!format!("{key:?}").contains(&B64.encode(secret.to_bytes())));
        assert!(
            key.public()
                .to_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA")
        );
    }

    #[test]
    fn minisign_signatures_verify_and_tampering_is_caught() {
        let key = SigningKey::generate().unwrap();
        let sig = key
            .sign_minisign(b"version: 1.0.0\n", "file:1.0.0.yaml")
            .unwrap();
        let pk = key.public();
        assert_eq!(
            pk.verify_minisign(b"version: 1.0.0\n", &sig).unwrap(),
            "file:1.0.0.yaml"
        );
        assert!(pk.verify_minisign(b"version: 1.0.1\n", &sig).is_err());
        let forged = sig.replace("file:1.0.0.yaml", "file:2.0.0.yaml");
        assert!(pk.verify_minisign(b"version: 1.0.0\n", &forged).is_err());
        let other = SigningKey::generate().unwrap().public();
        assert!(other.verify_minisign(b"version: 1.0.0\n", &sig).is_err());
    }

    fn config(trust: &str) -> Result<crate::config::Config, crate::source_error::SourceError> {
        crate::config::Config::parse(
            Path::new("rel.toml"),
            &format!(
                "registry = \"r.example.com/p\"\n[environments.staging]\noverlay = \"o/s\"\n[environments.prod]\noverlay = \"o/p\"\n{trust}"
            ),
            PathBuf::from("/p"),
        )
    }

    #[test]
    fn trust_keys_parse_per_environment_and_bad_ones_point_at_their_line() {
        let (a, b) = (
            SigningKey::generate().unwrap().public(),
            SigningKey::generate().unwrap().public(),
        );
        let c = config(&format!(
            "[trust]\nkeys = [\"{}\"]\n[trust.environments.prod]\nkeys = [\"{}\"]\n",
            a.to_minisign(),
            b.to_minisign()
        ))
        .unwrap();
        let t = c.trust.unwrap();
        assert_eq!(t.keys_for(None), std::slice::from_ref(&a));
        assert_eq!(t.keys_for(Some("staging")), std::slice::from_ref(&a));
        assert_eq!(t.keys_for(Some("prod")), std::slice::from_ref(&b));
        assert!(config("").unwrap().trust.is_none());

        let e = config("[trust]\nkeys = [\"RWnot-a-key\"]\n").unwrap_err();
        let text = format!("{:?}", miette::Report::new(e));
        assert!(
            text.contains("is not a signing public key: not base64"),
            "{text}"
        );
        assert!(text.contains("rel.toml:7:9"), "{text}");
        let e = config(&format!(
            "[trust.environments.qa]\nkeys = [\"{}\"]\n",
            a.to_minisign()
        ))
        .unwrap_err();
        assert!(
            format!("{e:?}").contains("names no environment")
                || e.to_string().contains("names no environment"),
            "{e:?}"
        );
        assert!(config("[trust]\n").is_err());
    }

    #[test]
    fn ecdsa_p256_keys_round_trip_sign_der_and_refuse_minisign() {
        let key = SigningKey::generate_with(Algorithm::EcdsaP256).unwrap();
        let text = key.to_secret_text();
        assert!(text.contains("\necdsa-p256:"), "{}", text.as_str());
        let again = SigningKey::from_secret_text(&text).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(again.algorithm(), Algorithm::EcdsaP256);
        let public = PublicKey::parse(&key.public().to_text()).unwrap();
        assert_eq!(public, key.public());
        assert!(key.public().to_text().starts_with("MFkw"));
        assert!(
            key.public()
                .to_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
        );
        let sig = key.sign_raw(b"payload");
        assert_eq!(sig[0], 0x30, "DER SEQUENCE");
        assert!(public.verify_raw(b"payload", &sig));
        assert!(!public.verify_raw(b"other", &sig));
        let ed = SigningKey::generate().unwrap().public();
        assert!(!ed.verify_raw(b"payload", &sig));
        let env = key.dsse_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}");
        assert!(public.verify_dsse(env.as_bytes()).is_ok());
        assert!(key.sign_minisign(b"x", "file:x").is_none());
        assert!(public.verify_minisign(b"x", "").is_err());
        // Both kinds side by side in [trust].
        assert_eq!(PublicKey::parse(&ed.to_text()).unwrap(), ed);
    }

    #[test]
    fn dsse_envelopes_verify_with_the_signing_key_only() {
        let key = SigningKey::generate().unwrap();
        let env = key.dsse_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}");
        let (t, body) = key.public().verify_dsse(env.as_bytes()).unwrap();
        assert_eq!(
            (t.as_str(), body.as_slice()),
            (IN_TOTO_PAYLOAD_TYPE, &b"{}"[..])
        );
        let other = SigningKey::generate().unwrap().public();
        assert!(other.verify_dsse(env.as_bytes()).is_err());
    }
}

/// rel.toml's `[trust]`: the public keys whose signatures make a release trusted, project-wide and
/// optionally per environment (an environment's list replaces the project-wide one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    pub keys: Vec<PublicKey>,
    pub environments: std::collections::BTreeMap<String, Vec<PublicKey>>,
}

impl TrustConfig {
    /// The keys trusted in `env` (or project-wide for `None`).
    pub fn keys_for(&self, env: Option<&str>) -> &[PublicKey] {
        env.and_then(|e| self.environments.get(e))
            .map_or(self.keys.as_slice(), Vec::as_slice)
    }
}

/// `[trust]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTrust {
    #[serde(default)]
    keys: Vec<toml::Spanned<String>>,
    #[serde(default)]
    environments: std::collections::BTreeMap<toml::Spanned<String>, RawTrustEnv>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTrustEnv {
    keys: Vec<toml::Spanned<String>>,
}

impl RawTrust {
    /// Validate: every key parses, every environment exists. Errors carry the span.
    pub(crate) fn validate(
        self,
        known_envs: &[String],
    ) -> Result<TrustConfig, (std::ops::Range<usize>, String, &'static str)> {
        let parse = |keys: Vec<toml::Spanned<String>>| {
            keys.into_iter()
                .map(|k| {
                    PublicKey::parse(k.get_ref()).map_err(|e| {
                        (
                            k.span(),
                            format!("`{}` is not a signing public key: {e}", k.get_ref()),
                            "paste the public key `rel keygen --signing` printed (base64, starting with `RW`, or `MFkw` for ECDSA P-256)",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let keys = parse(self.keys)?;
        let mut environments = std::collections::BTreeMap::new();
        for (name, env) in self.environments {
            if !known_envs.contains(name.get_ref()) {
                return Err((
                    name.span(),
                    format!(
                        "[trust.environments.{}] names no environment",
                        name.get_ref()
                    ),
                    "use an environment of `[environments]`, or drop the section",
                ));
            }
            environments.insert(name.get_ref().clone(), parse(env.keys)?);
        }
        if keys.is_empty() && environments.is_empty() {
            return Err((
                0..0,
                "[trust] lists no key".to_owned(),
                "add `keys = [\"RW...\"]` with the public key `rel keygen --signing` printed, or remove [trust]",
            ));
        }
        Ok(TrustConfig { keys, environments })
    }
}
