//! Trust and TLS failures: extra CA certificates from PEM, and telling a certificate (or other
//! TLS) failure, which no retry fixes, from a network one.

use std::error::Error as StdError;

use super::error::RegistryError;

/// The certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks).
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| RegistryError::CaCertificate { reason: chain(&e) })?;
    if certs.is_empty() {
        return Err(RegistryError::CaCertificate {
            reason: "no `BEGIN CERTIFICATE` block found".into(),
        });
    }
    Ok(certs)
}

/// The TLS failure somewhere in `e`'s source chain, described with its cause (e.g. `invalid
/// peer certificate: UnknownIssuer`), or `None` when `e` is not a TLS failure.
pub(crate) fn failure(e: &(dyn StdError + 'static)) -> Option<String> {
    find_rustls(e, 0).map(|t| t.to_string())
}

fn find_rustls<'a>(e: &'a (dyn StdError + 'static), depth: u32) -> Option<&'a rustls::Error> {
    if depth > 16 {
        return None;
    }
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    // `io::Error::source` skips the error it wraps: look inside.
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        let inner: &(dyn StdError + 'static) = inner;
        if let Some(t) = find_rustls(inner, depth + 1) {
            return Some(t);
        }
    }
    find_rustls(e.source()?, depth + 1)
}

/// `e` and its sources, `: `-separated, without reqwest's URL (which may hold a query).
pub(crate) fn chain(e: &reqwest::Error) -> String {
    let top = e.to_string();
    // reqwest appends ` for url (...)` to its own message; the endpoint is named elsewhere.
    let mut s = match top.find(" for url (") {
        Some(i) => top[..i].to_owned(),
        None => top,
    };
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
