//! Pull requests on a forge: GitHub (REST v3), Gitea/Forgejo (API v1), GitLab (merge requests).
//!
//! One operation: open the pull request for a branch, or update the one already open for it
//! (found by its head branch), so running `rel promote --open-pr` twice never makes two. The
//! token comes from the environment (`GITHUB_TOKEN`, `GITEA_TOKEN`, `GITLAB_TOKEN`), goes only
//! into a request header, and never into output, logs or errors.

use std::time::Duration;

use retry::{Backoff, Verdict};

use crate::config::{ForgeConfig, ForgeKind};

/// Forge calls: 3 attempts, waits of 0.5 s and 1 s.
const RETRY: Backoff = Backoff::exponential(3, Duration::from_millis(500));

/// What can go wrong finding the forge or talking to its API.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ForgeError {
    #[error("cannot tell which forge {remote} is")]
    #[diagnostic(
        code(rel::forge::kind),
        help(
            "say it in rel.toml: [forge] kind = \"github\" | \"gitea\" | \"gitlab\", api-url = \"...\", repo = \"owner/name\""
        )
    )]
    UnknownKind { remote: String },

    #[error("the git remote is not a forge URL, so rel cannot derive the API address")]
    #[diagnostic(
        code(rel::forge::api_url),
        help("set [forge] api-url = \"https://...\" and repo = \"owner/name\" in rel.toml")
    )]
    NoApiUrl,

    #[error("the git remote does not name a repository")]
    #[diagnostic(
        code(rel::forge::repo),
        help("set [forge] repo = \"owner/name\" in rel.toml")
    )]
    NoRepo,

    #[error("--open-pr on {forge} needs a token in {var}")]
    #[diagnostic(
        code(rel::forge::token),
        help(
            "export {var}=<token with pull request write access> (rel reads it from the environment only)"
        )
    )]
    NoToken {
        forge: &'static str,
        var: &'static str,
    },

    #[error("could not start an HTTP client")]
    #[diagnostic(
        code(rel::forge::client),
        help("the TLS setup failed: check --ca-file / REL_CA_FILE and SSL_CERT_FILE")
    )]
    Client(#[source] reqwest::Error),

    #[error("{endpoint}: the forge answered with something that is not JSON")]
    #[diagnostic(code(rel::forge::not_json), help("check [forge] api-url in rel.toml"))]
    NotJson {
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{forge} answered with {what}")]
    #[diagnostic(code(rel::forge::answer), help("check [forge] api-url in rel.toml"))]
    UnexpectedAnswer { forge: &'static str, what: String },

    #[error("{endpoint}: HTTP {status}: {detail}")]
    #[diagnostic(code(rel::forge::refused), help("{}", http_help(status.as_u16())))]
    Http {
        endpoint: String,
        status: reqwest::StatusCode,
        detail: String,
    },

    #[error("{last} (gave up after 3 attempts)")]
    #[diagnostic(
        code(rel::forge::unreachable),
        help("check the network and [forge] api-url; run again when the forge is reachable")
    )]
    Unreachable { last: String },
}

/// How to fix a forge's refusal with HTTP `status`.
fn http_help(status: u16) -> &'static str {
    match status {
        401 | 403 => "check that the token has pull request write access to this repository",
        404 => {
            "check [forge] api-url and repo in rel.toml (or the git remote), and that the token can see the repository"
        }
        422 | 409 => {
            "the forge refused the request: is the branch pushed, and the base branch right ([forge] base)?"
        }
        _ => "read the forge's answer in the message",
    }
}

type Error = ForgeError;

pub(crate) mod body;
mod gitea;
mod github;
mod gitlab;

/// Where to open pull requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub kind: ForgeKind,
    /// The API base, e.g. `https://api.github.com`.
    pub api_url: String,
    /// `owner/name` (GitLab: the full project path).
    pub repo: String,
    /// The branch pull requests target.
    pub base: String,
}

/// An open pull request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PullRequest {
    pub number: u64,
    pub url: String,
    /// Whether rel created it now (else it updated an open one).
    pub created: bool,
}

/// What the pull request says.
#[derive(Debug, Clone)]
pub(crate) struct Proposal<'a> {
    pub head: &'a str,
    pub title: &'a str,
    pub body: &'a str,
}

impl ForgeKind {
    pub fn name(self) -> &'static str {
        match self {
            ForgeKind::Github => "GitHub",
            ForgeKind::Gitea => "Gitea",
            ForgeKind::Gitlab => "GitLab",
        }
    }

    /// The variable holding the token.
    pub fn token_var(self) -> &'static str {
        match self {
            ForgeKind::Github => crate::env_vars::GITHUB_TOKEN,
            ForgeKind::Gitea => crate::env_vars::GITEA_TOKEN,
            ForgeKind::Gitlab => crate::env_vars::GITLAB_TOKEN,
        }
    }

    /// The longest pull request body the forge accepts, in characters.
    pub fn body_limit(self) -> usize {
        match self {
            // GitHub rejects bodies over 65,536 characters.
            ForgeKind::Github => 65_536,
            // Gitea stores TEXT but its UI and some proxies choke well before; stay at GitHub's.
            ForgeKind::Gitea => 65_536,
            // GitLab: descriptions up to 1,048,576 characters.
            ForgeKind::Gitlab => 1_048_576,
        }
    }
}

/// Host and `owner/name` path of a git remote URL (https, ssh, scp-like). `None` for file paths.
pub(crate) fn parse_remote(url: &str) -> Option<(String, String)> {
    let (host, path) = if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        if url.starts_with("file:") {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?.to_owned();
        (host, path.to_owned())
    } else if let Some((user_host, path)) = url.split_once(':') {
        if user_host.contains('/') {
            return None;
        }
        (user_host.rsplit('@').next()?.to_owned(), path.to_owned())
    } else {
        return None;
    };
    let path = path.trim_matches('/').trim_end_matches(".git").to_owned();
    if !path.contains('/') {
        return None;
    }
    Some((host, path))
}

/// The forge for a remote URL and the optional `[forge]` of rel.toml (which wins, field by field).
pub(crate) fn detect(
    remote_url: Option<&str>,
    config: Option<&ForgeConfig>,
) -> Result<Target, Error> {
    let cfg = config.cloned().unwrap_or_default();
    let parsed = remote_url.and_then(parse_remote);
    let host = parsed
        .as_ref()
        .map(|(h, _)| h.split(':').next().unwrap_or(h).to_owned());
    let kind = cfg.kind.or_else(|| {
        let h = host.as_deref()?.to_ascii_lowercase();
        if h == "github.com" || h.starts_with("github.") {
            Some(ForgeKind::Github)
        } else if h.contains("gitlab") {
            Some(ForgeKind::Gitlab)
        } else if h.contains("gitea") || h.contains("forgejo") || h == "codeberg.org" {
            Some(ForgeKind::Gitea)
        } else {
            None
        }
    });
    let Some(kind) = kind else {
        return Err(ForgeError::UnknownKind {
            remote: crate::redact::urls(remote_url.unwrap_or("the remote")),
        });
    };
    let api_url = match (cfg.api_url, host.as_deref()) {
        (Some(u), _) => u,
        (None, Some(h)) => match kind {
            ForgeKind::Github if h.eq_ignore_ascii_case("github.com") => {
                "https://api.github.com".to_owned()
            }
            ForgeKind::Github => format!("https://{h}/api/v3"),
            ForgeKind::Gitea => format!("https://{h}/api/v1"),
            ForgeKind::Gitlab => format!("https://{h}/api/v4"),
        },
        (None, None) => {
            return Err(ForgeError::NoApiUrl);
        }
    };
    let repo = match (cfg.repo, parsed) {
        (Some(r), _) => r,
        (None, Some((_, p))) => p,
        (None, None) => {
            return Err(ForgeError::NoRepo);
        }
    };
    Ok(Target {
        kind,
        api_url,
        repo,
        base: cfg.base.unwrap_or_else(|| "main".to_owned()),
    })
}

/// The token for `kind`, from its environment variable.
pub(crate) fn token_from_env(kind: ForgeKind) -> Result<String, Error> {
    match std::env::var(kind.token_var()) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(ForgeError::NoToken {
            forge: kind.name(),
            var: kind.token_var(),
        }),
    }
}

/// Open the pull request for `proposal.head`, or update the open one.
pub(crate) fn open_or_update(
    target: &Target,
    token: &str,
    proposal: &Proposal<'_>,
) -> Result<PullRequest, Error> {
    let client = Client::new(target, token)?;
    match target.kind {
        ForgeKind::Github => github::open_or_update(&client, target, proposal),
        ForgeKind::Gitea => gitea::open_or_update(&client, target, proposal),
        ForgeKind::Gitlab => gitlab::open_or_update(&client, target, proposal),
    }
}

/// A small JSON client: timeouts, bounded retries with backoff, errors that name the endpoint
/// and never the token.
pub(crate) struct Client {
    http: reqwest::blocking::Client,
    auth: (&'static str, String),
    extra: Vec<(&'static str, &'static str)>,
}

impl Client {
    fn new(target: &Target, token: &str) -> Result<Client, Error> {
        let http = crate::trust::blocking_client(reqwest::blocking::Client::builder())
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("rel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ForgeError::Client)?;
        let (auth, extra) = match target.kind {
            ForgeKind::Github => (
                ("Authorization", format!("Bearer {token}")),
                vec![
                    ("Accept", "application/vnd.github+json"),
                    ("X-GitHub-Api-Version", "2022-11-28"),
                ],
            ),
            ForgeKind::Gitea => (
                ("Authorization", format!("token {token}")),
                vec![("Accept", "application/json")],
            ),
            ForgeKind::Gitlab => (
                ("PRIVATE-TOKEN", token.to_owned()),
                vec![("Accept", "application/json")],
            ),
        };
        Ok(Client { http, auth, extra })
    }

    /// Send a request; retry connection errors, 429 and 5xx up to 3 attempts (0.5 s, 1 s backoff).
    pub(crate) fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        /// An attempt's failure: worth another try (the last one is reported), or not.
        enum Failure {
            Retryable(String),
            Final(ForgeError),
        }
        let endpoint = format!("{method} {}", url.split('?').next().unwrap_or(url));
        let answer = retry::retry(
            &RETRY,
            |attempt| {
                let mut req = self
                    .http
                    .request(method.clone(), url)
                    .header(self.auth.0, &self.auth.1);
                for (k, v) in &self.extra {
                    req = req.header(*k, *v);
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
                tracing::debug!("{endpoint} (attempt {attempt})");
                let resp = req
                    .send()
                    .map_err(|e| Failure::Retryable(format!("{endpoint}: {}", without_url(&e))))?;
                let status = resp.status();
                let text = resp.text().unwrap_or_default();
                if status.is_success() {
                    if text.trim().is_empty() {
                        return Ok(serde_json::Value::Null);
                    }
                    return serde_json::from_str(&text).map_err(|source| {
                        Failure::Final(ForgeError::NotJson {
                            endpoint: endpoint.clone(),
                            source,
                        })
                    });
                }
                let detail: String = text.chars().take(300).collect();
                if status.as_u16() == 429 || status.is_server_error() {
                    return Err(Failure::Retryable(format!(
                        "{endpoint}: HTTP {status}: {detail}"
                    )));
                }
                Err(Failure::Final(ForgeError::Http {
                    endpoint: endpoint.clone(),
                    status,
                    detail,
                }))
            },
            |answer, _| match answer {
                Err(Failure::Retryable(_)) => Verdict::Retry,
                _ => Verdict::Stop,
            },
        );
        match answer {
            Ok(value) => Ok(value),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Retryable(last)) => Err(ForgeError::Unreachable { last }),
        }
    }
}

/// A reqwest error without the URL part (the caller names the endpoint).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Percent-encode one path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_parse_in_every_spelling() {
        assert_eq!(
            parse_remote("https://github.com/org/repo.git"),
            Some(("github.com".into(), "org/repo".into()))
        );
        assert_eq!(
            parse_remote("git@github.com:org/repo.git"),
            Some(("github.com".into(), "org/repo".into()))
        );
        assert_eq!(
            parse_remote("ssh://git@gitlab.example.com:2222/group/sub/repo"),
            Some(("gitlab.example.com:2222".into(), "group/sub/repo".into()))
        );
        assert_eq!(
            parse_remote("https://user:secret@gitea.example.com/o/r"),
            Some(("gitea.example.com".into(), "o/r".into()))
        );
        assert_eq!(parse_remote("file:///tmp/remote.git"), None);
        assert_eq!(parse_remote("/tmp/remote.git"), None);
    }

    #[test]
    fn detection_from_the_remote_and_from_config() {
        let t = detect(Some("git@github.com:org/gitops.git"), None).unwrap();
        assert_eq!(
            t,
            Target {
                kind: ForgeKind::Github,
                api_url: "https://api.github.com".into(),
                repo: "org/gitops".into(),
                base: "main".into()
            }
        );
        let t = detect(Some("https://gitlab.example.com/g/s/gitops.git"), None).unwrap();
        assert_eq!(
            (t.kind, t.api_url.as_str(), t.repo.as_str()),
            (
                ForgeKind::Gitlab,
                "https://gitlab.example.com/api/v4",
                "g/s/gitops"
            )
        );
        let t = detect(Some("https://codeberg.org/o/r"), None).unwrap();
        assert_eq!(
            (t.kind, t.api_url.as_str()),
            (ForgeKind::Gitea, "https://codeberg.org/api/v1")
        );
        let e = detect(Some("https://git.example.com/o/r"), None).unwrap_err();
        assert!(e.to_string().contains("cannot tell which forge"), "{e}");
        let e = detect(
            Some("file:///tmp/r.git"),
            Some(&ForgeConfig {
                kind: Some(ForgeKind::Github),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a forge URL"), "{e}");
        let cfg = ForgeConfig {
            kind: Some(ForgeKind::Gitea),
            api_url: Some("http://127.0.0.1:1/api/v1".into()),
            repo: Some("o/r".into()),
            base: Some("trunk".into()),
            remote: None,
        };
        let t = detect(Some("file:///tmp/r.git"), Some(&cfg)).unwrap();
        assert_eq!(
            t,
            Target {
                kind: ForgeKind::Gitea,
                api_url: "http://127.0.0.1:1/api/v1".into(),
                repo: "o/r".into(),
                base: "trunk".into()
            }
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("group/sub repo"), "group%2Fsub%20repo");
        assert_eq!(
            encode("rel/promote/prod/0.4.0"),
            "rel%2Fpromote%2Fprod%2F0.4.0"
        );
    }
}
