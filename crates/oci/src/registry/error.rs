//! Registry errors: each names the endpoint it is about (redacted: no user info, no query) and
//! never holds a secret.

use std::path::PathBuf;

use image_ref::Digest;

use super::credentials::CredentialError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error("registry `{registry}` is not a valid host: {reason}")]
    #[diagnostic(help("name the registry as `host` or `host:port`, without scheme or path"))]
    InvalidRegistry { registry: String, reason: String },
    #[error("cannot build the HTTP client: {cause}")]
    #[diagnostic(help(
        "this is usually a bad CA certificate given to trust; check the PEM files passed"
    ))]
    Client { cause: String },
    #[error("the CA certificate given to trust is not usable: {reason}")]
    #[diagnostic(help(
        "give PEM text with one or more `-----BEGIN CERTIFICATE-----` blocks (the CA that signed the registry's certificate)"
    ))]
    CaCertificate { reason: String },
    #[error("{endpoint}: TLS failed: {cause}")]
    #[diagnostic(help(
        "the registry's certificate is not trusted or not valid for its name; if it is signed by a private CA, give that CA's certificate (PEM) to trust, or install it in the system trust store"
    ))]
    Tls { endpoint: String, cause: String },
    #[error("{endpoint}: failed after {attempts} attempt(s): {cause}")]
    #[diagnostic(help(
        "check that the registry is up and reachable; plain-HTTP registries other than loopback must be listed as insecure"
    ))]
    Transport {
        endpoint: String,
        attempts: u32,
        cause: String,
    },
    #[error(
        "registry `{registry}` is spoken to over https but sent us to plain http ({location}); refusing to downgrade"
    )]
    #[diagnostic(help(
        "fix the registry's external URL (it must keep https), or list the registry as insecure if it really is plain HTTP"
    ))]
    Downgrade { registry: String, location: String },
    #[error(
        "registry `{registry}` asks for a token from a plain-http realm ({realm}); refusing to send credentials there"
    )]
    #[diagnostic(help(
        "configure the registry's token service with an https realm; plain-http realms are accepted only for loopback or insecure-listed registries"
    ))]
    InsecureRealm { registry: String, realm: String },
    #[error("the registry answered with an unusable URL `{location}`: {reason}")]
    #[diagnostic(help(
        "the registry's Location header or token realm is malformed; check the registry's configuration"
    ))]
    BadLocation { location: String, reason: String },
    #[error("{endpoint}: registry answered {status}: {detail}")]
    #[diagnostic(help(
        "the registry refused the request; its error codes above say why (e.g. NAME_UNKNOWN, MANIFEST_INVALID, DENIED)"
    ))]
    Status {
        endpoint: String,
        status: u16,
        detail: String,
    },
    #[error("{endpoint}: unauthorized: {detail}")]
    #[diagnostic(help(
        "give registry credentials that may push to this repository, or log in (`docker login`) so that the Docker config has them"
    ))]
    Unauthorized { endpoint: String, detail: String },
    #[error("token endpoint {endpoint}: {detail}")]
    #[diagnostic(help(
        "the registry's token service refused or answered badly: check the credentials and that they may pull and push this repository"
    ))]
    Token { endpoint: String, detail: String },
    #[error("{endpoint}: {detail}")]
    #[diagnostic(help(
        "the registry does not follow the distribution API here; check that the URL is a registry and try again"
    ))]
    BadResponse { endpoint: String, detail: String },
    #[error("tag `{reference}` already points at {existing}, not at {ours}")]
    #[diagnostic(help(
        "tags are immutable: push under a new tag, or allow overwriting to move it"
    ))]
    TagExists {
        reference: String,
        existing: Digest,
        ours: Digest,
    },
    #[error("{endpoint}: registry reports digest {got}, expected {expected}")]
    #[diagnostic(help(
        "the registry stored other bytes than were sent (a proxy rewriting bodies?); push again, and check what sits between here and the registry"
    ))]
    DigestMismatch {
        endpoint: String,
        expected: Digest,
        got: String,
    },
    #[error(
        "image reference `{reference}` is for registry `{reference_registry}`, but this client talks to `{registry}`"
    )]
    #[diagnostic(help(
        "make a client for the reference's registry, or push to a reference on this one"
    ))]
    WrongRegistry {
        reference: String,
        reference_registry: String,
        registry: String,
    },
    #[error("cannot read blob `{path}`: {source}")]
    #[diagnostic(help(
        "the layer cache may have been cleaned meanwhile; build again to recreate it"
    ))]
    ReadBlob {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{reference}` kept losing our entries to concurrent writers ({rounds} writes, each read back without them)"
    )]
    #[diagnostic(help(
        "other builders are attaching to the same image at this moment; run again (a rerun adds what is missing and keeps the rest)"
    ))]
    Contended { reference: String, rounds: u32 },
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
