//! The HTTP side of a registry: base URL, timeouts, retries with backoff, and authentication
//! (basic, or bearer tokens fetched from the challenge's realm and cached per scope).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use super::challenge::{self, Challenge};
use super::credentials::{Credentials, Secret};
use super::error::RegistryError;

/// Bounded exponential backoff for 5xx, 429, timeouts and dropped connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (≥ 1).
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// How to talk to a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) spoken to over plain HTTP, besides `localhost`,
    /// `127.0.0.1` and `[::1]`, which always are.
    pub insecure: Vec<String>,
    pub connect_timeout: Duration,
    /// Timeout of one request without a large body; blob uploads add time per byte.
    pub timeout: Duration,
    /// The slowest upload rate tolerated before a blob upload times out, bytes per second.
    pub min_upload_rate: u64,
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            min_upload_rate: 256 * 1024,
            retry: RetryPolicy::default(),
        }
    }
}

/// Whether `registry` is spoken to over plain HTTP.
pub fn is_insecure(registry: &str, extra: &[String]) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
        || extra.iter().any(|e| e == registry || e == host)
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for basic auth.
    basic: bool,
    /// Bearer realm and service, from the last challenge.
    bearer: Option<(String, Option<String>)>,
    /// Tokens per scope string.
    tokens: HashMap<String, Secret>,
}

/// Transport for one registry host.
pub(crate) struct Transport {
    pub registry: String,
    pub base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    pub options: ClientOptions,
    auth: Mutex<AuthState>,
    pub retries: AtomicU32,
}

/// One request to make: method, URL, what the token must allow, and the body maker.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: String,
    /// Token scopes, e.g. `repository:team/app:pull,push`.
    pub scopes: &'a [String],
    /// Extra time for a body of this many bytes.
    pub body_len: u64,
}

impl Transport {
    pub fn new(
        registry: &str,
        credentials: Option<Credentials>,
        options: ClientOptions,
    ) -> Result<Self, RegistryError> {
        let scheme = if is_insecure(registry, &options.insecure) {
            "http"
        } else {
            "https"
        };
        let api_host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("rel-oci/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|source| RegistryError::Client { source })?;
        Ok(Transport {
            registry: registry.to_owned(),
            base: format!("{scheme}://{api_host}"),
            http,
            credentials,
            options,
            auth: Mutex::new(AuthState::default()),
            retries: AtomicU32::new(0),
        })
    }

    /// Absolute URL for a path or for a `Location` header (which may be relative).
    pub fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    fn authorization(&self, scopes: &[String]) -> Option<String> {
        let state = self.auth.lock().expect("auth state lock");
        if let Some(token) = state.tokens.get(&scopes.join(" ")) {
            return Some(format!("Bearer {}", token.expose()));
        }
        if state.basic {
            return self.credentials.as_ref().map(basic_header);
        }
        None
    }

    /// Send a call: retries on transport errors, 5xx and 429 with backoff; answers a 401 by
    /// authenticating once (basic, or a bearer token for the call's scopes) and sending again.
    pub async fn send(
        &self,
        call: &Call<'_>,
        body: &(dyn Fn() -> Result<Option<reqwest::Body>, RegistryError> + Sync),
        headers: &[(header::HeaderName, String)],
    ) -> Result<Response, RegistryError> {
        let endpoint = endpoint(&call.method, &call.url);
        let timeout = self.options.timeout
            + Duration::from_secs(call.body_len / self.options.min_upload_rate.max(1));
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            let mut req: RequestBuilder = self
                .http
                .request(call.method.clone(), &call.url)
                .timeout(timeout);
            for (name, value) in headers {
                req = req.header(name, value);
            }
            if let Some(auth) = self.authorization(call.scopes) {
                req = req.header(header::AUTHORIZATION, auth);
            }
            if let Some(b) = body()? {
                req = req.body(b);
            }
            match req.send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !authenticated => {
                    authenticated = true;
                    self.authenticate(&resp, call.scopes, &endpoint).await?;
                    attempt -= 1; // answering a challenge is not a fault
                    continue;
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    let status = resp.status();
                    if attempt >= self.options.retry.attempts {
                        return Err(RegistryError::from_response(&endpoint, resp).await);
                    }
                    tracing::debug!(%endpoint, %status, attempt, "retrying");
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    if attempt >= self.options.retry.attempts
                        || !(e.is_timeout() || e.is_connect() || e.is_request() || e.is_body())
                    {
                        return Err(RegistryError::Transport {
                            endpoint,
                            attempts: attempt,
                            source: e,
                        });
                    }
                    tracing::debug!(%endpoint, error = %e, attempt, "retrying");
                }
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let policy = &self.options.retry;
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        policy
            .initial_backoff
            .saturating_mul(factor)
            .min(policy.max_backoff)
    }

    /// Answer the 401 in `resp`.
    async fn authenticate(
        &self,
        resp: &Response,
        scopes: &[String],
        endpoint: &str,
    ) -> Result<(), RegistryError> {
        let challenge = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(challenge::parse)
            .ok_or_else(|| RegistryError::Unauthorized {
                endpoint: endpoint.to_owned(),
                detail: "401 without a Basic or Bearer challenge".into(),
            })?;
        match challenge {
            Challenge::Basic => {
                if self.credentials.is_none() {
                    return Err(RegistryError::Unauthorized {
                        endpoint: endpoint.to_owned(),
                        detail: "the registry asks for credentials and none were found".into(),
                    });
                }
                self.auth.lock().expect("auth state lock").basic = true;
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    if !wanted.contains(&s) {
                        wanted.push(s);
                    }
                }
                let token = self
                    .fetch_token(&realm, service.as_deref(), &wanted)
                    .await?;
                let mut state = self.auth.lock().expect("auth state lock");
                state.bearer = Some((realm, service));
                state.tokens.insert(scopes.join(" "), token);
                Ok(())
            }
        }
    }

    /// GET the token endpoint (with basic credentials when we have them).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Secret, RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        let endpoint = endpoint(&Method::GET, realm);
        let mut last_error = None;
        for attempt in 1..=self.options.retry.attempts {
            let mut req = self
                .http
                .get(realm)
                .query(&query)
                .timeout(self.options.timeout);
            if let Some(c) = &self.credentials {
                req = req.header(header::AUTHORIZATION, basic_header(c));
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    #[derive(serde::Deserialize)]
                    struct TokenAnswer {
                        token: Option<String>,
                        access_token: Option<String>,
                    }
                    let answer: TokenAnswer =
                        resp.json().await.map_err(|e| RegistryError::Token {
                            endpoint: endpoint.clone(),
                            detail: format!("invalid token answer: {e}"),
                        })?;
                    let token = answer.token.or(answer.access_token).ok_or_else(|| {
                        RegistryError::Token {
                            endpoint: endpoint.clone(),
                            detail: "the answer has no `token`".into(),
                        }
                    })?;
                    return Ok(Secret::new(token));
                }
                Ok(resp) if resp.status().is_server_error() => {
                    last_error = Some(format!("{}", resp.status()))
                }
                Ok(resp) => {
                    return Err(RegistryError::Token {
                        endpoint,
                        detail: format!(
                            "{} (are the credentials right, and allowed {}?)",
                            resp.status(),
                            scopes.join(" ")
                        ),
                    });
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            if attempt < self.options.retry.attempts {
                self.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        Err(RegistryError::Token {
            endpoint,
            detail: last_error.unwrap_or_default(),
        })
    }
}

fn basic_header(c: &Credentials) -> String {
    let raw = zeroize::Zeroizing::new(format!("{}:{}", c.username, c.password.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// `METHOD url-without-query`, for errors: upload URLs carry state in their query.
pub(crate) fn endpoint(method: &Method, url: &str) -> String {
    format!("{method} {}", url.split('?').next().unwrap_or(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("localhost", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(!is_insecure("ghcr.io", &[]));
        assert!(is_insecure(
            "registry.lan:5000",
            &["registry.lan:5000".into()]
        ));
        assert!(is_insecure("registry.lan:5000", &["registry.lan".into()]));
    }
}
