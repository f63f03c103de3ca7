//! Secret stores: where sealed genesis envelopes (and the master key) live.
//!
//! - [`FileStore`]: the embedded default. One directory, files mode 0600, atomic writes, every
//!   version kept, version ids that sort in creation order.
//! - [`AzureKeyVaultStore`]: Azure Key Vault through its REST API (see the crate README for why not
//!   the SDK), with client-secret, workload-identity and managed-identity credentials.
//!
//! The [`SecretStore`] trait is synchronous (blocking): call it from plain threads or from
//! `tokio::task::spawn_blocking`, never directly on an async runtime thread. Values go in and
//! come out as [`SecretString`]; no error or `Debug` output carries a value or a token.

pub mod azure;
pub mod file;

use std::fmt;

pub use azure::{
    AzureError, AzureKeyVaultStore, AzureOptions, Credential, ManagedIdentitySource,
    is_loopback_http,
};
pub use file::FileStore;
pub use retry::Backoff;
pub use secrecy::{ExposeSecret, SecretString};

/// Largest value a store accepts: Key Vault's limit of 25 KB (25,600 bytes), applied to every
/// store so that what fits in the file store also fits in Key Vault.
pub const MAX_VALUE_LEN: usize = 25 * 1024;
/// Longest secret name (Key Vault's limit).
pub const MAX_NAME_LEN: usize = 127;

/// A secret name as Key Vault accepts it: `^[0-9a-zA-Z-]+$`, 1 to 127 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(StoreError::InvalidName {
                name: name
                    .chars()
                    .take(MAX_NAME_LEN + 1)
                    .flat_map(char::escape_debug)
                    .collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretName({:?})", self.0)
    }
}

impl std::str::FromStr for SecretName {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A version id. File store: 20 zero-padded decimal digits, sorting in creation order.
/// Key Vault: the 32-hex-digit id it assigns.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(String);

impl VersionId {
    /// Accepts 1 to 64 ASCII letters and digits (covers both stores' forms).
    pub fn new(id: &str) -> Result<Self, StoreError> {
        if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(id.to_owned()))
        } else {
            Err(StoreError::InvalidVersion {
                version: id.chars().take(65).flat_map(char::escape_debug).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionId({:?})", self.0)
    }
}

/// A secret read back from a store. `Debug` redacts the value.
#[derive(Debug)]
pub struct StoredSecret {
    pub name: SecretName,
    pub version: VersionId,
    pub value: SecretString,
}

/// One version of a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: VersionId,
    /// Creation time in Unix seconds, when the store knows it.
    pub created: Option<u64>,
    /// Whether the version is enabled (Key Vault); `None` when the store has no such notion.
    pub enabled: Option<bool>,
}

/// Put, get and list versions of named secrets.
pub trait SecretStore {
    /// Store `value` as a new version of `name`; returns the new version's id.
    fn put(&self, name: &SecretName, value: &SecretString) -> Result<VersionId, StoreError>;
    /// Read the latest version (`None`) or the given version of `name`.
    fn get(
        &self,
        name: &SecretName,
        version: Option<&VersionId>,
    ) -> Result<StoredSecret, StoreError>;
    /// All versions of `name`, oldest first. Empty when the secret does not exist.
    fn versions(&self, name: &SecretName) -> Result<Vec<VersionInfo>, StoreError>;
    /// Where the store is, for messages (a directory or a vault URL).
    fn location(&self) -> String;
}

/// Check a value against [`MAX_VALUE_LEN`] before sending or writing it.
pub fn check_value(name: &SecretName, value: &SecretString) -> Result<(), StoreError> {
    let len = value.expose_secret().len();
    if len > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge {
            name: name.clone(),
            len,
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

/// Why a store operation failed. Never carries a secret value or a token.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("`{name}` is not a valid secret name")]
    #[diagnostic(
        code(secret_store::invalid_name),
        help(
            "secret names are 1 to 127 characters of letters, digits and `-` (Key Vault's rule), e.g. `genesis-staging`"
        )
    )]
    InvalidName { name: String },
    #[error("the value for `{name}` is {len} bytes; the limit is {max} bytes (25 KB)")]
    #[diagnostic(
        code(secret_store::value_too_large),
        help(
            "Key Vault holds at most 25 KB per secret: move large, non-secret config out of the envelope"
        )
    )]
    ValueTooLarge {
        name: SecretName,
        len: usize,
        max: usize,
    },
    #[error("`{version}` is not a valid version id")]
    #[diagnostic(
        code(secret_store::invalid_version),
        help(
            "a version id is the last segment of a secret id: list the secret's versions to find it"
        )
    )]
    InvalidVersion { version: String },
    #[error("secret `{name}`{} not found in {location}", version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default())]
    #[diagnostic(
        code(secret_store::not_found),
        help("check the name and version, or store the secret first")
    )]
    NotFound {
        name: SecretName,
        version: Option<VersionId>,
        location: String,
    },
    #[error("{op} {}: {source}", path.display())]
    #[diagnostic(
        code(secret_store::io),
        help("check that the store directory exists and is writable by this user")
    )]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the stored value of `{name}` version {version} is not UTF-8")]
    #[diagnostic(
        code(secret_store::not_utf8),
        help("the stored file was changed by something else; store the secret again")
    )]
    NotUtf8 {
        name: SecretName,
        version: VersionId,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Azure(#[from] AzureError),
}
