//! The clients allowed to get tokens: `id:class:secret` entries, from `IDENTITY_CLIENTS`
//! (comma-separated) and/or a file (one a line, `#` comments).
//!
//! Only SHA-256 digests of the secrets are kept, compared in constant time. No secret reaches a
//! log, an error message or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use service_runtime::token::TokenClass;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// One configured client.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub class: TokenClass,
    secret_sha256: [u8; 32],
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("class", &self.class)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientsError {
    #[error(
        "{source_name} entry {entry}: expected `id:class:secret` (class = service_account | node, secret non-empty)"
    )]
    #[diagnostic(help(
        "rewrite entry {entry} of {source_name} as `id:class:secret` with a non-empty id and secret (the secret may itself contain `:`); entries are separated by commas or newlines, and a line starting with `#` is a comment"
    ))]
    Shape { source_name: String, entry: usize },
    #[error("{source_name} entry {entry}: {reason}")]
    #[diagnostic(help(
        "give entry {entry} of {source_name} the class `service_account` or `node` (lowercase), and an id that no other entry of {source_name} uses"
    ))]
    Invalid {
        source_name: String,
        entry: usize,
        reason: String,
    },
    #[error("cannot read clients file {path}: {source}")]
    #[diagnostic(help(
        "check that IDENTITY_CLIENTS_FILE (or --clients-file) names an existing file identity's user can read (on Kubernetes, the secret mounted at that path), or unset it and give the clients in IDENTITY_CLIENTS"
    ))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The configured clients by id.
#[derive(Debug, Default, Clone)]
pub struct ClientRegistry {
    clients: BTreeMap<String, Client>,
}

impl ClientRegistry {
    /// Parses `id:class:secret` entries separated by commas or newlines; blank entries and `#`
    /// comment lines are skipped. `source_name` names the origin in errors (never the content).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ClientsError> {
        let mut clients = BTreeMap::new();
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let entry_no = index + 1;
            let shape = || ClientsError::Shape {
                source_name: source_name.to_owned(),
                entry: entry_no,
            };
            let mut parts = entry.splitn(3, ':');
            let (Some(id), Some(class), Some(secret)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(shape());
            };
            if id.is_empty() || secret.is_empty() {
                return Err(shape());
            }
            let class: TokenClass =
                class
                    .parse()
                    .map_err(
                        |e: service_runtime::token::UnknownClass| ClientsError::Invalid {
                            source_name: source_name.to_owned(),
                            entry: entry_no,
                            reason: e.to_string(),
                        },
                    )?;
            if clients.contains_key(id) {
                return Err(ClientsError::Invalid {
                    source_name: source_name.to_owned(),
                    entry: entry_no,
                    reason: format!("client `{id}` is configured twice"),
                });
            }
            let client = Client {
                id: id.to_owned(),
                class,
                secret_sha256: Sha256::digest(secret.as_bytes()).into(),
            };
            clients.insert(id.to_owned(), client);
        }
        Ok(Self { clients })
    }

    pub fn from_file(path: &Path) -> Result<Self, ClientsError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| ClientsError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Self::parse(&text, &path.display().to_string())
    }

    /// Adds `other`'s clients; an id in both keeps `other`'s entry.
    pub fn extend(&mut self, other: ClientRegistry) {
        self.clients.extend(other.clients);
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.clients.keys().map(String::as_str).collect()
    }

    /// The client when `id` exists and `secret` matches. Takes the same time whether or not the
    /// id exists.
    pub fn authenticate(&self, id: &str, secret: &str) -> Option<&Client> {
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        match self.clients.get(id) {
            Some(client) if bool::from(client.secret_sha256.ct_eq(&given)) => Some(client),
            Some(_) => None,
            None => {
                let _ = [0u8; 32].ct_eq(&given);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inline_and_file_forms() {
        let reg = ClientRegistry::parse(
            "smoke:service_account:s3cr:et, node-a:node:n0de",
            "IDENTITY_CLIENTS",
        )
        .unwrap();
        assert_eq!(reg.ids(), vec!["node-a", "smoke"]);
        assert_eq!(
            reg.authenticate("smoke", "s3cr:et").unwrap().class,
            TokenClass::ServiceAccount
        );
        assert_eq!(
            reg.authenticate("node-a", "n0de").unwrap().class,
            TokenClass::Node
        );
        assert!(reg.authenticate("smoke", "wrong").is_none());
        assert!(reg.authenticate("nobody", "n0de").is_none());

        let file = ClientRegistry::parse("# clients\nsmoke:node:abc\n\n", "clients.txt").unwrap();
        assert_eq!(file.ids(), vec!["smoke"]);
    }

    #[test]
    fn errors_name_the_entry_not_the_secret() {
        let err = ClientRegistry::parse("ok:node:x, bad:admin:topsecret", "IDENTITY_CLIENTS")
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 2") && err.contains("admin"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
        let err = ClientRegistry::parse("nocolon", "IDENTITY_CLIENTS")
            .unwrap_err()
            .to_string();
        assert!(err.contains("id:class:secret"), "{err}");
        assert!(ClientRegistry::parse("a:node:x,a:node:y", "X").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret_digest() {
        let reg = ClientRegistry::parse("smoke:node:abc", "X").unwrap();
        let shown = format!("{reg:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
