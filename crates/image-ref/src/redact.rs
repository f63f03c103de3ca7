//! Redaction of URLs before they go into an error or a log line: user info and query values can
//! carry credentials (`https://user:token@host/`, presigned `?X-Amz-Signature=…`, upload `_state`).

/// Query parameters whose values are known to be harmless and useful in an error.
const SHOWN_QUERY_KEYS: &[&str] = &["api-version", "digest", "mount", "from", "service", "n"];

/// What a redacted part is replaced with.
pub const REDACTED: &str = "REDACTED";

/// `url` fit for an error message or a log line: user name and password replaced by
/// [`REDACTED`], every query value except a few harmless ones (`digest`, `mount`, `from`,
/// `service`, `api-version`, `n`) replaced by [`REDACTED`], the fragment dropped.
///
/// Text that does not parse as an absolute URL is cut at the first `?` or `#` and anything before
/// an `@` in it is redacted, so a malformed URL cannot leak either.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    if parsed.cannot_be_a_base() {
        return redact_unparsed(url);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Both calls succeed on a URL that can be a base and has a host.
        let _ = parsed.set_username(REDACTED);
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if SHOWN_QUERY_KEYS.contains(&k.as_ref()) {
                    v.into_owned()
                } else {
                    REDACTED.to_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

fn redact_unparsed(text: &str) -> String {
    let cut = text.find(['?', '#']).unwrap_or(text.len());
    let (head, tail) = text.split_at(cut);
    let mut out = match head.rfind('@') {
        Some(at) => {
            // Keep a scheme prefix if there is one.
            let start = head.find("://").map_or(0, |i| i + 3).min(at);
            format!("{}{REDACTED}{}", &head[..start], &head[at..])
        }
        None => head.to_owned(),
    };
    if !tail.is_empty() {
        out.push_str("?REDACTED");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_query_tokens_are_redacted() {
        let shown = redact_url(
            "https://ci:hunter2@registry.test:5000/v2/app/blobs/uploads/abc?_state=s3cr3t&digest=sha256:00&X-Amz-Signature=sig#frag",
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("ci:"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("sig"), "{shown}");
        assert!(!shown.contains("frag"), "{shown}");
        assert!(shown.contains("digest=sha256%3A00"), "{shown}");
        assert!(shown.starts_with("https://REDACTED@registry.test:5000/v2/app/"));
    }

    #[test]
    fn plain_urls_are_unchanged() {
        assert_eq!(
            redact_url("https://registry.test/v2/app/manifests/v1"),
            "https://registry.test/v2/app/manifests/v1"
        );
        assert_eq!(
            redact_url("https://kv.vault.azure.net/secrets/x?api-version=2025-07-01"),
            "https://kv.vault.azure.net/secrets/x?api-version=2025-07-01"
        );
    }

    #[test]
    fn unparsable_text_is_cut_too() {
        let shown = redact_url("registry.test/v2/x?token=abc");
        assert_eq!(shown, "registry.test/v2/x?REDACTED");
        let shown = redact_url("user:pw@host/path");
        assert_eq!(shown, "REDACTED@host/path");
    }
}
