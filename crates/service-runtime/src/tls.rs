//! Optional HTTPS for the services: a PEM certificate chain and key, served with rustls (ring).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// A loaded server certificate, ready to accept TLS connections.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TlsError {
    #[error("TLS certificate {path}: {reason}")]
    #[diagnostic(help(
        "TLS_CERT_FILE (or --tls-cert-file) must name a file this process can read holding the PEM certificate chain (`-----BEGIN CERTIFICATE-----` blocks, the server's own first); check the path and that the TLS secret is mounted there"
    ))]
    Certificate { path: PathBuf, reason: String },
    #[error("TLS key {path}: {reason}; expected a PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    #[diagnostic(help(
        "TLS_KEY_FILE (or --tls-key-file) must name a readable file holding the unencrypted private key (`BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`); check that the certificate and key files are not swapped, and decrypt an encrypted key first (`openssl pkey -in KEY -out KEY.pem`)"
    ))]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate {cert} and key {key} do not form a usable server identity: {reason}")]
    #[diagnostic(help(
        "check that TLS_KEY_FILE holds the key of the first certificate in TLS_CERT_FILE (`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key) and that it is an RSA, ECDSA P-256/P-384 or Ed25519 key"
    ))]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl TlsConfig {
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_err = |reason: String| TlsError::Certificate {
            path: cert.to_owned(),
            reason,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| cert_err(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_err("no PEM certificate in the file".to_owned()));
        }
        let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config_err = |reason: String| TlsError::Config {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|e| config_err(e.to_string()))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            server: Arc::new(server),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../services/node/tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn loads_the_test_certificate() {
        TlsConfig::from_pem_files(&fixture("cert.pem"), &fixture("key.pem")).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let missing = fixture("absent.pem");
        let err = TlsConfig::from_pem_files(&missing, &fixture("key.pem")).unwrap_err();
        assert!(
            matches!(&err, TlsError::Certificate { path, .. } if *path == missing),
            "{err}"
        );
        let err =
            TlsConfig::from_pem_files(&fixture("cert.pem"), &fixture("cert.pem")).unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
        let err = TlsConfig::from_pem_files(&fixture("key.pem"), &fixture("key.pem")).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
