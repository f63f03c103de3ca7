//! The one place URLs are made safe to show: credentials in `user:password@` and in query
//! parameters that carry tokens are replaced by `***` before a URL reaches output, a log line, a
//! report or an error.

/// Query parameter names whose values are credentials (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "token",
    "private_token",
    "api_key",
    "apikey",
    "key",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "client_secret",
    "password",
    "secret",
    "code",
];

/// Every URL in `text` (anything after `scheme://`) with its credentials replaced by `***`.
pub(crate) fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '<' | '>' | ')'))
            .unwrap_or(rest.len());
        out.push_str(&redact_after_scheme(&rest[..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `host/path?query#frag` (the part after `scheme://`) with userinfo and secret parameters hidden.
fn redact_after_scheme(s: &str) -> String {
    let authority_end = s.find(['/', '?', '#']).unwrap_or(s.len());
    let (authority, tail) = s.split_at(authority_end);
    let mut out = String::with_capacity(s.len());
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***@");
            out.push_str(&authority[at + 1..]);
        }
        None => out.push_str(authority),
    }
    let Some(q) = tail.find('?') else {
        out.push_str(tail);
        return out;
    };
    out.push_str(&tail[..=q]);
    let query_and_fragment = &tail[q + 1..];
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(h) => query_and_fragment.split_at(h),
        None => (query_and_fragment, ""),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    out.push_str(&parts.join("&"));
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::urls;

    #[test]
    fn userinfo_and_token_parameters_are_hidden() {
        for (input, shown) in [
            (
                "https://x-access-token:ghp_abc123@github.com/org/repo.git",
                "https://***@github.com/org/repo.git",
            ),
            (
                "cannot tell which forge https://oauth2:glpat-SECRET@git.example.com/o/r is",
                "cannot tell which forge https://***@git.example.com/o/r is",
            ),
            (
                "server `https://admin:hunter2@10.0.0.1:6443`",
                "server `https://***@10.0.0.1:6443`",
            ),
            (
                "https://h/p?ref=main&access_token=s3cr3t#x",
                "https://h/p?ref=main&access_token=***#x",
            ),
            ("https://u@h", "https://***@h"),
            ("no url here", "no url here"),
            (
                "two: http://a:b@h1/x and ssh://git:pw@h2:22/r",
                "two: http://***@h1/x and ssh://***@h2:22/r",
            ),
            // An `@` in the path is not userinfo.
            ("https://h/p/@scope/pkg", "https://h/p/@scope/pkg"),
        ] {
            assert_eq!(urls(input), shown, "{input}");
        }
    }

    #[test]
    fn no_secret_survives_in_any_position() {
        let secret = "Zq9SECRETvalue";
        for input in [
            format!("https://user:{secret}@h/r"),
            format!("https://{secret}@h/r"),
            format!("http://h/r?token={secret}"),
            format!("(https://u:{secret}@h)"),
            format!("'https://u:{secret}@h'"),
        ] {
            assert!(
                !urls(&input).contains(secret),
                "{input} -> {}",
                urls(&input)
            );
        }
    }
}
