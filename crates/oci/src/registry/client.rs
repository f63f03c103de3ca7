//! The HTTP side of a registry: base URL, trust, timeouts, retries with backoff, and
//! authentication (basic, or bearer tokens fetched from the challenge's realm and cached per
//! scope).
//!
//! Where credentials go:
//! - `Authorization` (basic or a bearer token) is sent only to the registry's own origin (scheme,
//!   host and port). An upload `Location` on another origin (a storage backend) gets none.
//! - A `Location` or redirect from an https registry to plain http is refused.
//! - Token requests (which carry the basic credentials) go only to an https realm; a plain-http
//!   realm only when the registry itself is spoken to over plain HTTP (loopback or listed
//!   insecure).
//!
//! Trust: the bundled webpki roots, the platform store (which honours `SSL_CERT_FILE`), and any
//! CA certificates the caller adds ([`ClientOptions::ca_pem`]). A certificate failure is not
//! retried and is reported with its cause.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use retry::{Backoff, Verdict};
use url::Url;

use super::challenge::{self, Challenge};
use super::credentials::{Credentials, Secret};
use super::error::RegistryError;
use super::tls;

/// The registry client's retry policy (5xx, 429, timeouts and dropped connections): 5 attempts,
/// waits doubling from 200 ms, at most 5 s.
pub const DEFAULT_RETRY: Backoff =
    Backoff::exponential(5, Duration::from_millis(200)).with_max_delay(Duration::from_secs(5));

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
    /// Retries of 5xx, 429, timeouts and dropped connections ([`DEFAULT_RETRY`]).
    pub retry: Backoff,
    /// Extra trusted CA certificates, PEM (each entry may hold several), trusted besides the
    /// platform store and the bundled roots: a registry behind a private CA.
    pub ca_pem: Vec<Vec<u8>>,
    /// Host names resolved to fixed addresses instead of DNS (as curl's `--resolve`).
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            min_upload_rate: 256 * 1024,
            retry: DEFAULT_RETRY,
            ca_pem: Vec::new(),
            resolve: Vec::new(),
        }
    }
}

impl ClientOptions {
    /// Also trust the CA certificate(s) in `pem` (the contents of a `--ca-file`).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }
}

/// Whether `registry` is spoken to over plain HTTP.
pub(crate) fn is_insecure(registry: &str, extra: &[String]) -> bool {
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
    /// Tokens per scope string.
    tokens: HashMap<String, Secret>,
}

/// Transport for one registry host.
pub(crate) struct Transport {
    pub(crate) registry: String,
    base: Url,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    pub(crate) options: ClientOptions,
    auth: Mutex<AuthState>,
    pub(crate) retries: AtomicU32,
}

/// One request to make: method, URL, what the token must allow, and the body maker.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// Token scopes, e.g. `repository:team/app:pull,push`.
    pub(crate) scopes: &'a [String],
    /// Extra time for a body of this many bytes.
    pub(crate) body_len: u64,
}

/// Builds the body of one attempt (`None`: no body).
pub(crate) type BodyFn<'a> = dyn Fn() -> Result<Option<reqwest::Body>, RegistryError> + Sync + 'a;

impl Transport {
    pub(crate) fn new(
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
        let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
            RegistryError::InvalidRegistry {
                registry: registry.to_owned(),
                reason: e.to_string(),
            }
        })?;
        if !base.username().is_empty() || base.password().is_some() || base.path() != "/" {
            return Err(RegistryError::InvalidRegistry {
                registry: registry.to_owned(),
                reason: "expected `host` or `host:port`".into(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("rel-oci/", env!("CARGO_PKG_VERSION")))
            .redirect(no_downgrade_redirects());
        for pem in &options.ca_pem {
            for cert in tls::certificates(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        for (host, addr) in &options.resolve {
            builder = builder.resolve(host, *addr);
        }
        let http = builder.build().map_err(|source| RegistryError::Client {
            cause: tls::chain(&source),
        })?;
        Ok(Transport {
            registry: registry.to_owned(),
            base,
            http,
            credentials,
            options,
            auth: Mutex::new(AuthState::default()),
            retries: AtomicU32::new(0),
        })
    }

    /// Whether the registry is spoken to over plain HTTP.
    fn plain_http(&self) -> bool {
        self.base.scheme() == "http"
    }

    /// Absolute URL for a path or for a `Location` header (which may be relative). A `Location`
    /// that would take an https registry's requests to plain http is refused.
    pub(crate) fn url(&self, location: &str) -> Result<Url, RegistryError> {
        self.resolve(&self.base, location)
    }

    /// `location` resolved against `against` (the URL that answered with it), checked as
    /// [`Transport::url`] does.
    pub(crate) fn resolve(&self, against: &Url, location: &str) -> Result<Url, RegistryError> {
        let url = against
            .join(location)
            .map_err(|e| RegistryError::BadLocation {
                location: image_ref::redact_url(location),
                reason: e.to_string(),
            })?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.plain_http() => Ok(url),
            "http" => Err(RegistryError::Downgrade {
                registry: self.registry.clone(),
                location: image_ref::redact_url(url.as_str()),
            }),
            other => Err(RegistryError::BadLocation {
                location: image_ref::redact_url(url.as_str()),
                reason: format!("scheme `{other}` is neither https nor http"),
            }),
        }
    }

    /// The `Authorization` value for a request to `url`: only for the registry's own origin.
    fn authorization(&self, url: &Url, scopes: &[String]) -> Option<String> {
        if url.origin() != self.base.origin() {
            return None;
        }
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
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        body: &BodyFn<'_>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Response, RegistryError> {
        let endpoint = endpoint(&call.method, &call.url);
        let timeout = self.options.timeout
            + Duration::from_secs(call.body_len / self.options.min_upload_rate.max(1));
        let mut authenticated = false;
        loop {
            let resp = self
                .with_retry(&endpoint, || {
                    let mut req: RequestBuilder = self
                        .http
                        .request(call.method.clone(), call.url.clone())
                        .timeout(timeout);
                    for (name, value) in headers {
                        req = req.header(name, value);
                    }
                    if let Some(auth) = self.authorization(&call.url, call.scopes) {
                        req = req.header(header::AUTHORIZATION, sensitive(&auth));
                    }
                    if let Some(b) = body()? {
                        req = req.body(b);
                    }
                    Ok(req)
                })
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && !authenticated
                && call.url.origin() == self.base.origin()
            {
                authenticated = true;
                self.authenticate(&resp, call.scopes, &endpoint).await?;
                continue;
            }
            if is_retryable_status(resp.status()) {
                return Err(RegistryError::from_response(&endpoint, resp).await);
            }
            return Ok(resp);
        }
    }

    /// Sends what `build` makes under the retry policy until it gets an answer that is not a 5xx
    /// or 429, or the policy's attempts are spent (then the last answer is returned). Transport
    /// errors are retried too, except TLS failures, which no retry fixes.
    async fn with_retry(
        &self,
        endpoint: &str,
        build: impl Fn() -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        let build = &build;
        let sent = retry::retry_async(
            &self.options.retry,
            |attempt| async move { Ok::<_, RegistryError>((build()?.send().await, attempt)) },
            |sent, attempt| {
                let retrying = match sent {
                    Ok((Ok(resp), _)) if is_retryable_status(resp.status()) => {
                        tracing::debug!(%endpoint, status = %resp.status(), attempt, "retrying");
                        true
                    }
                    Ok((Err(e), _)) if tls::failure(e).is_none() && is_retryable_error(e) => {
                        tracing::debug!(%endpoint, error = %tls::chain(e), attempt, "retrying");
                        true
                    }
                    _ => false,
                };
                if retrying {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    Verdict::Retry
                } else {
                    Verdict::Stop
                }
            },
        )
        .await?;
        match sent {
            (Ok(resp), _) => Ok(resp),
            (Err(e), attempts) => Err(match tls::failure(&e) {
                Some(cause) => RegistryError::Tls {
                    endpoint: endpoint.to_owned(),
                    cause,
                },
                None => RegistryError::Transport {
                    endpoint: endpoint.to_owned(),
                    attempts,
                    cause: tls::chain(&e),
                },
            }),
        }
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
                        detail: "the registry asks for credentials and none were given".into(),
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
                let realm = self.token_realm(&realm)?;
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    if !wanted.contains(&s) {
                        wanted.push(s);
                    }
                }
                let token = self.fetch_token(realm, service.as_deref(), &wanted).await?;
                let mut state = self.auth.lock().expect("auth state lock");
                state.tokens.insert(scopes.join(" "), token);
                Ok(())
            }
        }
    }

    /// The realm of a bearer challenge, if credentials may be sent there: https, or plain http
    /// when the registry itself is plain HTTP.
    fn token_realm(&self, realm: &str) -> Result<Url, RegistryError> {
        let url = Url::parse(realm).map_err(|e| RegistryError::BadLocation {
            location: image_ref::redact_url(realm),
            reason: format!("token realm: {e}"),
        })?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.plain_http() => Ok(url),
            _ => Err(RegistryError::InsecureRealm {
                registry: self.registry.clone(),
                realm: image_ref::redact_url(url.as_str()),
            }),
        }
    }

    /// GET the token endpoint (with basic credentials when we have them).
    async fn fetch_token(
        &self,
        mut realm: Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Secret, RegistryError> {
        {
            let mut query = realm.query_pairs_mut();
            if let Some(s) = service {
                query.append_pair("service", s);
            }
            for s in scopes {
                query.append_pair("scope", s);
            }
        }
        let endpoint = endpoint(&Method::GET, &realm);
        let resp = self
            .with_retry(&endpoint, || {
                let mut req = self.http.get(realm.clone()).timeout(self.options.timeout);
                if let Some(c) = &self.credentials {
                    req = req.header(header::AUTHORIZATION, sensitive(&basic_header(c)));
                }
                Ok(req)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(RegistryError::Token {
                endpoint,
                detail: format!(
                    "{} (are the credentials right, and allowed {}?)",
                    resp.status(),
                    scopes.join(" ")
                ),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = resp.json().await.map_err(|e| RegistryError::Token {
            endpoint: endpoint.clone(),
            detail: format!("invalid token answer: {}", tls::chain(&e)),
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| RegistryError::Token {
                endpoint: endpoint.clone(),
                detail: "the answer has no `token`".into(),
            })?;
        Ok(Secret::new(token))
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn is_retryable_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

/// Follow up to 5 redirects, never from https to plain http. (reqwest drops `Authorization`
/// itself when a redirect changes host, port or scheme.)
fn no_downgrade_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            let to = image_ref::redact_url(attempt.url().as_str());
            attempt.error(format!(
                "refusing a redirect from https to plain http ({to})"
            ))
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

fn sensitive(value: &str) -> header::HeaderValue {
    let mut v = header::HeaderValue::from_str(value)
        .unwrap_or_else(|_| header::HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn basic_header(c: &Credentials) -> String {
    let raw = zeroize::Zeroizing::new(format!("{}:{}", c.username, c.password.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// `METHOD url-without-query`, redacted, for errors and logs: upload URLs carry state in their
/// query.
pub(crate) fn endpoint(method: &Method, url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    format!("{method} {}", image_ref::redact_url(shown.as_str()))
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

    fn transport(registry: &str) -> Transport {
        Transport::new(registry, None, ClientOptions::default()).unwrap()
    }

    #[test]
    fn a_location_may_not_downgrade_an_https_registry() {
        let t = transport("registry.test");
        assert_eq!(
            t.url("/v2/x/blobs/uploads/1?_state=a").unwrap().as_str(),
            "https://registry.test/v2/x/blobs/uploads/1?_state=a"
        );
        let err = t
            .url("http://registry.test/v2/x/blobs/uploads/1")
            .unwrap_err();
        assert!(matches!(err, RegistryError::Downgrade { .. }), "{err}");
        assert!(err.to_string().contains("plain http"), "{err}");
        let plain = transport("127.0.0.1:5000");
        assert!(plain.url("http://127.0.0.1:5000/v2/").is_ok());
    }

    #[test]
    fn credentials_go_only_to_the_registry_origin() {
        let t = Transport::new(
            "registry.test",
            Some(Credentials {
                username: "u".into(),
                password: Secret::new("p"),
            }),
            ClientOptions::default(),
        )
        .unwrap();
        t.auth.lock().unwrap().basic = true;
        let same = Url::parse("https://registry.test/v2/x").unwrap();
        let other_port = Url::parse("https://registry.test:8443/v2/x").unwrap();
        let other_host = Url::parse("https://storage.test/v2/x").unwrap();
        assert!(t.authorization(&same, &[]).is_some());
        assert!(t.authorization(&other_port, &[]).is_none());
        assert!(t.authorization(&other_host, &[]).is_none());
    }

    #[test]
    fn a_plain_http_realm_is_refused_for_an_https_registry() {
        let t = transport("registry.test");
        assert!(t.token_realm("https://auth.test/token").is_ok());
        let err = t.token_realm("http://auth.test/token").unwrap_err();
        assert!(matches!(err, RegistryError::InsecureRealm { .. }), "{err}");
        assert!(
            transport("127.0.0.1:5000")
                .token_realm("http://127.0.0.1:5001/token")
                .is_ok()
        );
    }

    #[test]
    fn endpoints_in_errors_are_redacted() {
        let url = Url::parse("https://u:pw@registry.test/v2/x/blobs/uploads/1?_state=s").unwrap();
        assert_eq!(
            endpoint(&Method::PUT, &url),
            "PUT https://REDACTED@registry.test/v2/x/blobs/uploads/1"
        );
    }
}
