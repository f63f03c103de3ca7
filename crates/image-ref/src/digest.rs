use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A content digest: `sha256:` followed by exactly 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    hex: String,
}

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum DigestError {
    #[error("digest `{0}` has no algorithm: expected `sha256:<64 hex>`")]
    #[diagnostic(help("write a digest as `sha256:` followed by 64 lowercase hex characters"))]
    MissingAlgorithm(String),
    #[error("digest `{input}` uses algorithm `{algorithm}`: only `sha256` is supported")]
    #[diagnostic(help("only sha256 digests are supported: use the image's sha256 digest"))]
    UnknownAlgorithm { input: String, algorithm: String },
    #[error("digest `{input}` has {len} hex characters after `sha256:`: expected 64")]
    #[diagnostic(help("a sha256 digest has exactly 64 hex characters; copy it whole"))]
    WrongLength { input: String, len: usize },
    #[error("digest `{input}` has uppercase hex at position {position}: digests are lowercase")]
    #[diagnostic(help("write the digest's hex in lowercase"))]
    Uppercase { input: String, position: usize },
    #[error("digest `{input}` has a non-hex character `{found}` at position {position}")]
    #[diagnostic(help("a digest's hex has only 0-9 and a-f; copy it again"))]
    NotHex {
        input: String,
        found: char,
        position: usize,
    },
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// A digest from a raw 32-byte sha256 output.
    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        Digest { hex }
    }

    /// The algorithm name, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 lowercase hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, for human output.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm(input.to_owned()));
        };
        if algorithm != "sha256" {
            return Err(DigestError::UnknownAlgorithm {
                input: input.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        let offset = algorithm.len() + 1;
        for (i, c) in hex.char_indices() {
            if c.is_ascii_hexdigit() && c.is_ascii_uppercase() {
                return Err(DigestError::Uppercase {
                    input: input.to_owned(),
                    position: offset + i,
                });
            }
            if !matches!(c, '0'..='9' | 'a'..='f') {
                return Err(DigestError::NotHex {
                    input: input.to_owned(),
                    found: c,
                    position: offset + i,
                });
            }
        }
        if hex.len() != 64 {
            return Err(DigestError::WrongLength {
                input: input.to_owned(),
                len: hex.len(),
            });
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 that yields a [`Digest`]; also counts the bytes it saw.
#[derive(Default, Clone)]
pub struct Sha256Hasher {
    inner: Sha256,
    len: u64,
}

impl Sha256Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.inner.finalize().into())
    }
}

impl std::io::Write for Sha256Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3d3eae79e9f97b2bc334410b07f340b6e279bb13b750401e5f11da8469313003";

    #[test]
    fn parses_valid_and_round_trips() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(d.hex(), HEX);
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        assert_eq!(d.short(), "3d3eae79e9f9");
    }

    #[test]
    fn table_of_bad_digests() {
        let upper = format!("sha256:{}", HEX.to_uppercase());
        let cases: Vec<(String, &str)> = vec![
            (HEX.to_owned(), "has no algorithm"),
            (format!("sha512:{HEX}"), "uses algorithm `sha512`"),
            (format!("md5:{HEX}"), "uses algorithm `md5`"),
            (format!("sha256:{}", &HEX[..63]), "has 63 hex characters"),
            (format!("sha256:{HEX}0"), "has 65 hex characters"),
            ("sha256:".to_owned(), "has 0 hex characters"),
            (upper, "uppercase hex at position 8"),
            (
                format!("sha256:{}g", &HEX[..63]),
                "non-hex character `g` at position 70",
            ),
            (format!("sha256: {}", &HEX[..63]), "non-hex character ` `"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Digest>().unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err} does not contain {want}");
        }
    }

    #[test]
    fn of_bytes_matches_known_sha256() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = Sha256Hasher::new();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.len(), 3);
        assert_eq!(h.finish(), Digest::of(b"abc"));
    }

    #[test]
    fn serde_validates() {
        let ok: Digest = serde_json::from_str(&format!("\"sha256:{HEX}\"")).unwrap();
        assert_eq!(ok.hex(), HEX);
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
    }
}
