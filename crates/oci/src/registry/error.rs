//! Registry errors: each names the endpoint it is about and never holds a secret.

use std::path::PathBuf;

use image_ref::Digest;

use super::credentials::CredentialError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error("cannot build the HTTP client: {source}")]
    Client { source: reqwest::Error },
    #[error("{endpoint}: failed after {attempts} attempt(s): {source}")]
    #[diagnostic(help(
        "check that the registry is up and reachable; plain-HTTP registries other than loopback must be listed as insecure"
    ))]
    Transport {
        endpoint: String,
        attempts: u32,
        source: reqwest::Error,
    },
    #[error("{endpoint}: registry answered {status}: {detail}")]
    Status {
        endpoint: String,
        status: u16,
        detail: String,
    },
    #[error("{endpoint}: unauthorized: {detail}")]
    #[diagnostic(help(
        "set REL_REGISTRY_USERNAME and REL_REGISTRY_PASSWORD, or log in so that ~/.docker/config.json has credentials"
    ))]
    Unauthorized { endpoint: String, detail: String },
    #[error("token endpoint {endpoint}: {detail}")]
    Token { endpoint: String, detail: String },
    #[error("{endpoint}: {detail}")]
    BadResponse { endpoint: String, detail: String },
    #[error("tag `{reference}` already points at {existing}, not at {ours}")]
    #[diagnostic(help(
        "tags are immutable: push under a new tag, or pass --allow-overwrite to move it"
    ))]
    TagExists {
        reference: String,
        existing: Digest,
        ours: Digest,
    },
    #[error("{endpoint}: registry reports digest {got}, expected {expected}")]
    DigestMismatch {
        endpoint: String,
        expected: Digest,
        got: String,
    },
    #[error(
        "image reference `{reference}` is for registry `{reference_registry}`, but this client talks to `{registry}`"
    )]
    WrongRegistry {
        reference: String,
        reference_registry: String,
        registry: String,
    },
    #[error("cannot read blob `{path}`: {source}")]
    ReadBlob {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Credentials(#[from] CredentialError),
}

impl RegistryError {
    /// A `Status` error from a non-success response, with the registry's error codes when given.
    pub(crate) async fn from_response(endpoint: &str, resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorItem>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorItem {
            code: String,
            #[serde(default)]
            message: String,
        }
        let detail = match serde_json::from_str::<Errors>(&body) {
            Ok(e) if !e.errors.is_empty() => e
                .errors
                .iter()
                .map(|i| format!("{}: {}", i.code, i.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => body.chars().take(300).collect::<String>().trim().to_owned(),
        };
        let detail = if detail.is_empty() {
            "(no body)".to_owned()
        } else {
            detail
        };
        if status == 401 || status == 403 {
            return RegistryError::Unauthorized {
                endpoint: endpoint.to_owned(),
                detail: format!("{status}: {detail}"),
            };
        }
        RegistryError::Status {
            endpoint: endpoint.to_owned(),
            status,
            detail,
        }
    }
}
