//! Which certificate authorities rel's HTTPS clients trust: the platform's trust store (honouring
//! `SSL_CERT_FILE`), the bundled webpki roots, and — for a private CA — the PEM file given once with
//! `--ca-file` / `REL_CA_FILE`. One option for every client rel has: the registry, the forge, Key
//! Vault, the Kubernetes API and the smoke gate.

use std::path::Path;
use std::sync::OnceLock;

use crate::Error;

/// A CA file rel cannot use.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(
    "{}: the CA file holds no usable PEM certificate (`-----BEGIN CERTIFICATE-----`)",
    path.display()
)]
#[diagnostic(
    code(rel::trust::ca_file),
    help(
        "give --ca-file / REL_CA_FILE a PEM bundle of the private CA (convert DER with `openssl x509 -inform der -in ca.cer -out ca.pem`)"
    )
)]
pub struct CaFileError {
    pub path: std::path::PathBuf,
}

static EXTRA_CA: OnceLock<Vec<u8>> = OnceLock::new();

/// Read and check the extra CA file, once per process (before any client is built).
pub(crate) fn load_ca_file(path: &Path) -> Result<(), Error> {
    let pem = std::fs::read(path).map_err(|e| Error::io("read the CA file", path, e))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
    if certs.is_empty() {
        return Err(CaFileError {
            path: path.to_owned(),
        }
        .into());
    }
    let _ = EXTRA_CA.set(pem);
    Ok(())
}

/// The extra CA bundle (PEM), when one was given.
pub(crate) fn extra_ca_pem() -> Option<&'static [u8]> {
    EXTRA_CA.get().map(Vec::as_slice)
}

fn certificates() -> Vec<reqwest::Certificate> {
    extra_ca_pem()
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok())
        .unwrap_or_default()
}

/// An async client builder that trusts the extra CA too.
pub(crate) fn client(mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    for c in certificates() {
        builder = builder.add_root_certificate(c);
    }
    builder
}

/// A blocking client builder that trusts the extra CA too.
pub(crate) fn blocking_client(
    mut builder: reqwest::blocking::ClientBuilder,
) -> reqwest::blocking::ClientBuilder {
    for c in certificates() {
        builder = builder.add_root_certificate(c);
    }
    builder
}
