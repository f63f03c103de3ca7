//! The bearer tokens identity issues and the gateway verifies: compact JWS with `alg: EdDSA`
//! (Ed25519), published as a JWKS of `kty: OKP, crv: Ed25519` keys.
//!
//! The key id is the key's RFC 7638 JWK thumbprint, so every identity replica given the same
//! 32-byte seed signs with the same key under the same `kid` and serves the same JWKS.
//! Neither the seed nor a token is ever logged; [`Signer`]'s `Debug` shows the `kid` only.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The only algorithm issued or accepted.
pub const ALG: &str = "EdDSA";
/// Seconds of clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECS: i64 = 30;

/// What kind of principal a token stands for (the seed's `class` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenClass {
    ServiceAccount,
    Node,
}

impl TokenClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenClass::ServiceAccount => "service_account",
            TokenClass::Node => "node",
        }
    }
}

impl fmt::Display for TokenClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("unknown token class `{0}`; expected `service_account` or `node`")]
#[diagnostic(help(
    "write the class in lowercase as one of the two, e.g. `smoke:service_account:SECRET` or `node-a:node:SECRET` in the client entry"
))]
pub struct UnknownClass(pub String);

impl FromStr for TokenClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "service_account" => Ok(TokenClass::ServiceAccount),
            "node" => Ok(TokenClass::Node),
            other => Err(UnknownClass(other.to_owned())),
        }
    }
}

/// The claims of a platform token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub class: TokenClass,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// One public key of a JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

/// A JSON Web Key Set, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error(
        "IDENTITY_SIGNING_KEY_B64 is not valid base64; it must be a 32-byte seed in standard base64"
    )]
    #[diagnostic(help(
        "make one with `head -c 32 /dev/urandom | base64` and store the output as is (standard alphabet `A-Z a-z 0-9 + /`, no quotes, no URL-safe `-`/`_`); in a Kubernetes Secret's `data:` the value is base64 of that text, so use `stringData:` to store it unencoded"
    ))]
    Base64,
    #[error(
        "IDENTITY_SIGNING_KEY_B64 decodes to {0} bytes; it must be a 32-byte Ed25519 seed (`head -c 32 /dev/urandom | base64`)"
    )]
    #[diagnostic(help(
        "check that the whole seed was stored (44 base64 characters) and not encoded twice, or make a new one with `head -c 32 /dev/urandom | base64`; every identity replica needs the same seed, and a new seed invalidates the tokens already issued"
    ))]
    Length(usize),
}

/// The Ed25519 signing key and its `kid`.
pub struct Signer {
    key: SigningKey,
    kid: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// From the base64 (standard alphabet, padding optional) 32-byte seed.
    pub fn from_seed_b64(seed_b64: &str) -> Result<Self, KeyError> {
        let trimmed = seed_b64.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .map_err(|_| KeyError::Base64)?,
        );
        let seed: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Self::from_seed(seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = thumbprint(&key.verifying_key());
        Self { key, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn jwk(&self) -> Jwk {
        public_jwk(&self.verifying_key())
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk()],
        }
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: ALG.to_owned(),
            typ: Some("JWT".to_owned()),
            kid: Some(self.kid.clone()),
        };
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serialises"));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// The public JWK of `key`, with its thumbprint as `kid`.
pub fn public_jwk(key: &VerifyingKey) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        crv: Some("Ed25519".to_owned()),
        x: Some(URL_SAFE_NO_PAD.encode(key.as_bytes())),
        kid: Some(thumbprint(key)),
        alg: Some(ALG.to_owned()),
        key_use: Some("sig".to_owned()),
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Why a token was refused. The texts are safe to return to a client: they never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    #[diagnostic(help(
        "send the `access_token` identity's /token returned, whole and unchanged, as `Authorization: Bearer TOKEN`: three base64url parts joined by dots"
    ))]
    Malformed(&'static str),
    #[error("unsupported algorithm `{0}`; only EdDSA is accepted")]
    #[diagnostic(help(
        "use a token issued by the platform's identity service, which signs with EdDSA; tokens from other issuers, and unsigned ones, are never accepted"
    ))]
    Algorithm(String),
    #[error("token has no `kid` header")]
    #[diagnostic(help(
        "use a token issued by the platform's identity service: its header names the signing key (`kid`) the JWKS lists"
    ))]
    MissingKid,
    #[error("token signed by unknown key `{0}`")]
    #[diagnostic(help(
        "get a fresh token from identity; if fresh tokens fail too, check that the verifier's IDENTITY_JWKS_URL points at the identity that issues them and that every identity replica has the same IDENTITY_SIGNING_KEY_B64"
    ))]
    UnknownKey(String),
    #[error("signature does not verify")]
    #[diagnostic(help(
        "the token was altered or cut after it was issued; send it exactly as identity returned it, or get a fresh one"
    ))]
    Signature,
    #[error("token expired")]
    #[diagnostic(help(
        "get a fresh token from identity's /token before this one expires (the lifetime is identity's IDENTITY_TOKEN_TTL_SECS); if fresh tokens are refused too, check that the clocks of identity and the verifier agree within {LEEWAY_SECS} s"
    ))]
    Expired,
    #[error("token issued in the future")]
    #[diagnostic(help(
        "identity's clock is more than {LEEWAY_SECS} s ahead of the verifier's: synchronise both hosts' clocks (NTP)"
    ))]
    NotYetValid,
    #[error("token issued by `{found}`, expected `{expected}`")]
    #[diagnostic(help(
        "set IDENTITY_ISSUER (or --issuer) to the same value on identity and on the gateway; the gateway expects `{expected}`"
    ))]
    Issuer { found: String, expected: String },
}

struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    let (signing_input, signature_b64) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("expected three dot-separated parts"))?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or(TokenError::Malformed("expected three dot-separated parts"))?;
    if payload_b64.contains('.') {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| TokenError::Malformed("header is not a JWS header"))?;
    if header.alg != ALG {
        return Err(TokenError::Algorithm(header.alg));
    }
    Ok(Parts {
        header,
        signing_input,
        payload_b64,
        signature_b64,
    })
}

/// The `kid` a token names (after checking its shape and algorithm), to pick the key.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    split(token)?.header.kid.ok_or(TokenError::MissingKid)
}

/// Verifies signature, expiry and issuer; returns the claims.
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    issuer: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    let parts = split(token)?;
    let sig_bytes = URL_SAFE_NO_PAD
        .decode(parts.signature_b64)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let sig_bytes: [u8; 64] = sig_bytes.try_into().map_err(|_| TokenError::Signature)?;
    key.verify_strict(
        parts.signing_input.as_bytes(),
        &Signature::from_bytes(&sig_bytes),
    )
    .map_err(|_| TokenError::Signature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(parts.payload_b64)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("payload is not a platform claim set"))?;
    if claims.exp + LEEWAY_SECS <= now {
        return Err(TokenError::Expired);
    }
    if claims.iat - LEEWAY_SECS > now {
        return Err(TokenError::NotYetValid);
    }
    if claims.iss != issuer {
        return Err(TokenError::Issuer {
            found: claims.iss,
            expected: issuer.to_owned(),
        });
    }
    Ok(claims)
}

/// The usable keys of a JWKS by `kid` (Ed25519 keys only; others are skipped).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    pub fn from_jwks(jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"))
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == ALG))
            .filter_map(|k| {
                let x = URL_SAFE_NO_PAD.decode(k.x.as_deref()?).ok()?;
                let key = VerifyingKey::from_bytes(&x.try_into().ok()?).ok()?;
                let kid = k.kid.clone().unwrap_or_else(|| thumbprint(&key));
                Some((kid, key))
            })
            .collect();
        Self { keys }
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Encodes a 32-byte seed as `IDENTITY_SIGNING_KEY_B64` expects it.
pub fn encode_seed(seed: &[u8; 32]) -> String {
    STANDARD.encode(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "rel-identity".into(),
            sub: "smoke".into(),
            class: TokenClass::ServiceAccount,
            iat: now,
            exp: now + 60,
            jti: "j1".into(),
        }
    }

    #[test]
    fn same_seed_gives_same_kid_and_jwks() {
        let seed = encode_seed(&[7; 32]);
        let a = Signer::from_seed_b64(&seed).unwrap();
        let b = Signer::from_seed_b64(&seed).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwks(), b.jwks());
        assert_ne!(a.kid(), Signer::from_seed(&[8; 32]).kid());
    }

    #[test]
    fn rfc8037_test_key_has_the_published_thumbprint() {
        // RFC 8037 appendix A.1/A.3: the Ed25519 example key and its RFC 7638 thumbprint.
        let seed = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let signer = Signer::from_seed(&seed.try_into().unwrap());
        assert_eq!(
            signer.jwk().x.as_deref(),
            Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        );
        assert_eq!(signer.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn round_trip_through_the_jwks() {
        let signer = Signer::from_seed(&[1; 32]);
        let token = signer.sign(&claims(1_000));
        let keys = KeySet::from_jwks(&signer.jwks());
        let kid = key_id(&token).unwrap();
        let got = verify(&token, keys.get(&kid).unwrap(), "rel-identity", 1_010).unwrap();
        assert_eq!(got, claims(1_000));
    }

    #[test]
    fn refuses_other_key_tampering_expiry_and_issuer() {
        let signer = Signer::from_seed(&[1; 32]);
        let other = Signer::from_seed(&[2; 32]);
        let token = signer.sign(&claims(1_000));
        let vk = signer.verifying_key();
        assert_eq!(
            verify(&token, &other.verifying_key(), "rel-identity", 1_000),
            Err(TokenError::Signature)
        );
        let forged = other.sign(&claims(1_000));
        assert_eq!(
            verify(&forged, &vk, "rel-identity", 1_000),
            Err(TokenError::Signature)
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(1_000);
        c.class = TokenClass::Node;
        let tampered_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        parts[1] = &tampered_payload;
        assert_eq!(
            verify(&parts.join("."), &vk, "rel-identity", 1_000),
            Err(TokenError::Signature)
        );
        assert_eq!(
            verify(&token, &vk, "rel-identity", 1_000 + 60 + LEEWAY_SECS),
            Err(TokenError::Expired)
        );
        assert!(matches!(
            verify(&token, &vk, "someone-else", 1_000),
            Err(TokenError::Issuer { .. })
        ));
    }

    #[test]
    fn refuses_alg_none_and_garbage() {
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(0)).unwrap())
        );
        assert_eq!(key_id(&none), Err(TokenError::Algorithm("none".into())));
        assert!(matches!(key_id("a.b"), Err(TokenError::Malformed(_))));
        assert!(matches!(key_id("a.b.c.d"), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn seed_errors_do_not_echo_the_value() {
        let err = Signer::from_seed_b64("c2hvcnQ=").unwrap_err().to_string();
        assert!(err.contains("5 bytes"), "{err}");
        assert!(!err.contains("c2hvcnQ"));
        assert!(matches!(
            Signer::from_seed_b64("!!!"),
            Err(KeyError::Base64)
        ));
    }

    #[test]
    fn signer_debug_shows_kid_only() {
        let s = format!("{:?}", Signer::from_seed(&[9; 32]));
        assert!(s.contains("kid"));
        assert!(!s.contains("key:"));
    }
}
