//! Azure Key Vault through its documented REST API (api-version 2025-07-01).
//!
//! - `PUT {vault}/secrets/{name}` sets a value (an existing name gets a new version);
//!   `GET {vault}/secrets/{name}[/{version}]` reads; `GET {vault}/secrets/{name}/versions` lists.
//! - Authentication follows Key Vault's challenge protocol: the first request goes without a token
//!   (and without its body); the 401 answer's `WWW-Authenticate: Bearer authorization="...",
//!   resource="..."` names the scope to ask a token for. The scope's host must be the vault's host
//!   or a parent domain of it (e.g. `vault.azure.net` for `x.vault.azure.net`), so a look-alike
//!   vault cannot harvest tokens; [`AzureOptions::disable_challenge_resource_verification`] turns
//!   that off (as the SDKs' option of the same name does).
//! - Tokens come from a [`Credential`]: client secret or workload identity (Entra ID token
//!   endpoint, client-credentials grant) or managed identity (IMDS, or App Service's
//!   `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`). Every endpoint is configurable, so tests point
//!   them at a local server.
//! - Each request has a timeout; 5xx, 429 and connection errors are retried a bounded number of
//!   times with exponential backoff. Errors name the endpoint (method and URL without query).
//!   Tokens and values never appear in errors or `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use retry::{Backoff, Verdict};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{
    SecretName, SecretStore, StoreError, StoredSecret, VersionId, VersionInfo, check_value,
};

/// The Key Vault REST API version this store speaks.
pub const API_VERSION: &str = "2025-07-01";
/// Entra ID's public-cloud authority host.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Azure's instance metadata service token endpoint.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const MAX_PAGES: usize = 100;
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Network behaviour of the store.
#[derive(Debug, Clone)]
pub struct AzureOptions {
    pub api_version: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of connection errors, timeouts, 429 and 5xx: 4 attempts, waits doubling from
    /// 500 ms, at most 8 s.
    pub retry: Backoff,
    /// Accept any scope from the 401 challenge (see the module docs).
    pub disable_challenge_resource_verification: bool,
    /// Allow an `http://` vault URL whose host is this machine (`localhost`, `127.0.0.0/8`,
    /// `[::1]`): a local emulator or test server. Any other plain-http host is refused even so.
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates, PEM (each entry may hold several), besides the platform
    /// store (which honours `SSL_CERT_FILE`) and the bundled roots.
    pub ca_pem: Vec<Vec<u8>>,
}

impl AzureOptions {
    /// Also trust the CA certificate(s) in `pem` (the contents of a CA file).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }
}

/// Whether `url` is a plain-http URL to this machine (`localhost`, a loopback IP), with no user
/// info: the only plain-http vault [`AzureOptions::allow_insecure_http`] admits.
pub fn is_loopback_http(url: &str) -> bool {
    url::Url::parse(url.trim()).is_ok_and(|u| u.scheme() == "http" && is_loopback_url(&u))
}

/// The URL's real host (as parsed, not as written) is this machine, and it has no user info.
fn is_loopback_url(u: &url::Url) -> bool {
    let no_userinfo = u.username().is_empty() && u.password().is_none();
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    no_userinfo && loopback
}

impl Default for AzureOptions {
    fn default() -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: Backoff::exponential(4, Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(8)),
            disable_challenge_resource_verification: false,
            allow_insecure_http: false,
            ca_pem: Vec::new(),
        }
    }
}

/// Where a managed identity gets its tokens.
pub enum ManagedIdentitySource {
    /// The instance metadata service (VMs, AKS nodes): `GET {endpoint}?api-version=2018-02-01&resource=...`
    /// with `Metadata: true`.
    Imds { endpoint: String },
    /// App Service / Container Apps: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...`
    /// with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`.
    AppService {
        endpoint: String,
        header: SecretString,
    },
}

/// How the store gets an access token.
pub enum Credential {
    /// A service principal's client secret.
    ClientSecret {
        authority_host: String,
        tenant_id: String,
        client_id: String,
        client_secret: SecretString,
    },
    /// AKS workload identity: the projected service-account token in `token_file` (re-read for
    /// each token request, as it rotates) is the client assertion.
    WorkloadIdentity {
        authority_host: String,
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// A managed identity; `client_id` picks a user-assigned one.
    ManagedIdentity {
        source: ManagedIdentitySource,
        client_id: Option<String>,
    },
}

impl fmt::Debug for ManagedIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Imds { endpoint } => f.debug_struct("Imds").field("endpoint", endpoint).finish(),
            Self::AppService { endpoint, .. } => f
                .debug_struct("AppService")
                .field("endpoint", endpoint)
                .field("header", &"[REDACTED]")
                .finish(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret {
                authority_host,
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("authority_host", authority_host)
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
            Self::WorkloadIdentity {
                authority_host,
                tenant_id,
                client_id,
                token_file,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("authority_host", authority_host)
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            Self::ManagedIdentity { source, client_id } => f
                .debug_struct("ManagedIdentity")
                .field("source", source)
                .field("client_id", client_id)
                .finish(),
        }
    }
}

impl Credential {
    /// Pick a credential from the standard Azure variables, read through `lookup` (pass
    /// `|k| std::env::var(k).ok()`), in this order:
    /// `AZURE_CLIENT_SECRET` (+ `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`) → client secret;
    /// `AZURE_FEDERATED_TOKEN_FILE` (+ tenant, client) → workload identity;
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` → App Service managed identity;
    /// otherwise the IMDS managed identity (`AZURE_CLIENT_ID` picks a user-assigned one).
    /// `AZURE_AUTHORITY_HOST` overrides the Entra ID host.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AzureError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let authority_host =
            get("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned());
        let need = |k: &'static str, why: &'static str| {
            get(k).ok_or(AzureError::Config {
                detail: format!("{k} is not set (needed for {why})"),
            })
        };
        if let Some(secret) = lookup("AZURE_CLIENT_SECRET").filter(|v| !v.is_empty()) {
            return Ok(Self::ClientSecret {
                authority_host,
                tenant_id: need("AZURE_TENANT_ID", "a client secret credential")?,
                client_id: need("AZURE_CLIENT_ID", "a client secret credential")?,
                client_secret: SecretString::from(secret),
            });
        }
        if let Some(file) = get("AZURE_FEDERATED_TOKEN_FILE") {
            return Ok(Self::WorkloadIdentity {
                authority_host,
                tenant_id: need("AZURE_TENANT_ID", "workload identity")?,
                client_id: need("AZURE_CLIENT_ID", "workload identity")?,
                token_file: PathBuf::from(file),
            });
        }
        let client_id = get("AZURE_CLIENT_ID");
        if let (Some(endpoint), Some(header)) =
            (get("IDENTITY_ENDPOINT"), lookup("IDENTITY_HEADER"))
        {
            return Ok(Self::ManagedIdentity {
                source: ManagedIdentitySource::AppService {
                    endpoint,
                    header: SecretString::from(header),
                },
                client_id,
            });
        }
        Ok(Self::ManagedIdentity {
            source: ManagedIdentitySource::Imds {
                endpoint: DEFAULT_IMDS_ENDPOINT.to_owned(),
            },
            client_id,
        })
    }
}

struct CachedToken {
    token: SecretString,
    expires: Instant,
}

#[derive(Default)]
struct AuthState {
    scope: Option<String>,
    token: Option<CachedToken>,
}

/// Azure Key Vault as a [`SecretStore`]. Blocking: see the crate docs.
pub struct AzureKeyVaultStore {
    vault: String,
    vault_host: String,
    credential: Credential,
    options: AzureOptions,
    http: Client,
    auth: Mutex<AuthState>,
}

impl fmt::Debug for AzureKeyVaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultStore")
            .field("vault", &self.vault)
            .field("credential", &self.credential)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVaultStore {
    /// A store for the vault at `vault_url` (e.g. `https://kv-app-staging.vault.azure.net`).
    pub fn new(
        vault_url: &str,
        credential: Credential,
        options: AzureOptions,
    ) -> Result<Self, AzureError> {
        let vault = vault_url.trim().trim_end_matches('/').to_owned();
        let bad = |reason: &str| AzureError::InvalidVaultUrl {
            url: image_ref::redact_url(&vault),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(&vault).map_err(|e| bad(&e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("a vault URL has no user info (`user@`)"));
        }
        match url.scheme() {
            "https" => {}
            "http" if options.allow_insecure_http && is_loopback_url(&url) => {}
            "http" if options.allow_insecure_http => {
                return Err(bad(
                    "plain http is allowed only to this machine (localhost or a loopback IP)",
                ));
            }
            "http" => return Err(bad("the vault must be reached over https")),
            _ => return Err(bad("expected an https:// URL")),
        }
        if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
            return Err(bad(
                "expected just scheme and host, like https://NAME.vault.azure.net",
            ));
        }
        let vault_host = url
            .host_str()
            .ok_or_else(|| bad("no host"))?
            .to_ascii_lowercase();
        let mut builder = Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rel-secret-store/", env!("CARGO_PKG_VERSION")));
        for pem in &options.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or(AzureError::CaCertificate)?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| AzureError::Connection {
            endpoint: vault.clone(),
            attempts: 0,
            detail: error_chain(&e),
        })?;
        Ok(Self {
            vault,
            vault_host,
            credential,
            options,
            http,
            auth: Mutex::new(AuthState::default()),
        })
    }

    pub fn vault_url(&self) -> &str {
        &self.vault
    }

    /// Send `method path` to the vault, doing the challenge and token dance. `body` is only sent
    /// with a token attached.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>, String), AzureError> {
        let url = self.api_url(path)?;
        self.call_url(method, url.as_str(), body)
    }

    /// `{vault}{path}?api-version=…`, built with the `url` crate (names and versions are
    /// validated to letters, digits and `-`, but nothing is pasted into a URL unencoded).
    fn api_url(&self, path: &str) -> Result<url::Url, AzureError> {
        let mut url = url::Url::parse(&self.vault)
            .and_then(|v| v.join(path))
            .map_err(|e| AzureError::InvalidVaultUrl {
                url: image_ref::redact_url(&self.vault),
                reason: e.to_string(),
            })?;
        url.query_pairs_mut()
            .append_pair("api-version", &self.options.api_version);
        Ok(url)
    }

    fn call_url(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>, String), AzureError> {
        let endpoint = endpoint_name(&method, url);
        for round in 0..2 {
            let token = self.current_token()?;
            let resp = self.send_with_retry(&endpoint, || {
                let mut rb = self.http.request(method.clone(), url);
                if let Some(t) = &token {
                    rb = rb.bearer_auth(t.expose_secret());
                    if let Some(b) = body {
                        rb = rb
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(b.to_vec());
                    }
                } else if body.is_some() {
                    // The challenge probe carries no body: the value is sent only with a token.
                    rb = rb.header(reqwest::header::CONTENT_LENGTH, "0");
                }
                rb
            })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && round == 0 {
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let Some(challenge) = challenge else {
                    return Err(AzureError::Challenge {
                        endpoint,
                        detail: "401 without a WWW-Authenticate header".into(),
                    });
                };
                let scope = self.scope_from_challenge(&endpoint, &challenge)?;
                let mut auth = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                auth.scope = Some(scope);
                auth.token = None;
                continue;
            }
            if token.is_none() && status.is_success() {
                // Key Vault answers every request without a token with a 401 challenge. A vault
                // that "succeeds" without one did not store or read anything we can trust.
                return Err(AzureError::Challenge {
                    endpoint,
                    detail: format!(
                        "the request without a token was answered {status} instead of a 401 challenge"
                    ),
                });
            }
            let bytes = read_body(resp, &endpoint)?;
            return Ok((status, bytes, endpoint));
        }
        Err(AzureError::Service {
            endpoint,
            status: 401,
            code: "Unauthorized".into(),
            message: "the vault refused the token it asked for".into(),
        })
    }

    fn scope_from_challenge(&self, endpoint: &str, header: &str) -> Result<String, AzureError> {
        let params = parse_challenge(header).ok_or_else(|| AzureError::Challenge {
            endpoint: endpoint.to_owned(),
            detail: "not a Bearer challenge".into(),
        })?;
        let find = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let scope = match (find("scope"), find("resource")) {
            (Some(s), _) => s,
            (None, Some(r)) => format!("{}/.default", r.trim_end_matches('/')),
            (None, None) => {
                return Err(AzureError::Challenge {
                    endpoint: endpoint.to_owned(),
                    detail: "the challenge names neither a resource nor a scope".into(),
                });
            }
        };
        if !self.options.disable_challenge_resource_verification {
            let host = reqwest::Url::parse(&scope)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            let ok = host.is_some_and(|h| {
                self.vault_host == h || self.vault_host.ends_with(&format!(".{h}"))
            });
            if !ok {
                return Err(AzureError::ChallengeResourceMismatch {
                    vault: self.vault.clone(),
                    scope,
                });
            }
        }
        Ok(scope)
    }

    /// The cached token, refreshed when near expiry; `None` before the first challenge.
    fn current_token(&self) -> Result<Option<SecretString>, AzureError> {
        let mut auth = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        let Some(scope) = auth.scope.clone() else {
            return Ok(None);
        };
        if let Some(t) = &auth.token {
            if t.expires > Instant::now() + TOKEN_REFRESH_MARGIN {
                return Ok(Some(t.token.clone()));
            }
        }
        let (token, lifetime) = self.fetch_token(&scope)?;
        auth.token = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + lifetime,
        });
        Ok(Some(token))
    }

    fn fetch_token(&self, scope: &str) -> Result<(SecretString, Duration), AzureError> {
        match &self.credential {
            Credential::ClientSecret {
                authority_host,
                tenant_id,
                client_id,
                client_secret,
            } => {
                let url = format!(
                    "{}/{}/oauth2/v2.0/token",
                    authority_host.trim_end_matches('/'),
                    tenant_id
                );
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose_secret()),
                    ("scope", scope),
                ];
                self.token_request(&url, Method::POST, |rb| rb.form(&form))
            }
            Credential::WorkloadIdentity {
                authority_host,
                tenant_id,
                client_id,
                token_file,
            } => {
                let assertion =
                    Zeroizing::new(std::fs::read_to_string(token_file).map_err(|source| {
                        AzureError::TokenFile {
                            path: token_file.clone(),
                            source,
                        }
                    })?);
                let url = format!(
                    "{}/{}/oauth2/v2.0/token",
                    authority_host.trim_end_matches('/'),
                    tenant_id
                );
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.trim()),
                    ("scope", scope),
                ];
                self.token_request(&url, Method::POST, |rb| rb.form(&form))
            }
            Credential::ManagedIdentity { source, client_id } => {
                let resource = scope.strip_suffix("/.default").unwrap_or(scope);
                let (endpoint, api_version) = match source {
                    ManagedIdentitySource::Imds { endpoint } => (endpoint, "2018-02-01"),
                    ManagedIdentitySource::AppService { endpoint, .. } => (endpoint, "2019-08-01"),
                };
                let mut query = vec![("api-version", api_version), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id.as_str()));
                }
                self.token_request(endpoint, Method::GET, |rb| {
                    let rb = rb.query(&query);
                    match source {
                        ManagedIdentitySource::Imds { .. } => rb.header("Metadata", "true"),
                        ManagedIdentitySource::AppService { header, .. } => {
                            let mut v =
                                reqwest::header::HeaderValue::from_str(header.expose_secret())
                                    .unwrap_or_else(|_| {
                                        reqwest::header::HeaderValue::from_static("")
                                    });
                            v.set_sensitive(true);
                            rb.header("X-IDENTITY-HEADER", v)
                        }
                    }
                })
            }
        }
    }

    fn token_request(
        &self,
        url: &str,
        method: Method,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<(SecretString, Duration), AzureError> {
        let endpoint = endpoint_name(&method, url);
        let resp =
            self.send_with_retry(&endpoint, || build(self.http.request(method.clone(), url)))?;
        let status = resp.status();
        let bytes = Zeroizing::new(read_body(resp, &endpoint)?);
        if !status.is_success() {
            #[derive(Deserialize)]
            struct TokenError {
                error: Option<serde_json::Value>,
                error_description: Option<String>,
            }
            let parsed: Option<TokenError> = serde_json::from_slice(&bytes).ok();
            let (code, description) = match parsed {
                Some(e) => (
                    e.error
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .unwrap_or_default(),
                    e.error_description.unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            return Err(AzureError::Token {
                endpoint,
                status: status.as_u16(),
                code,
                description,
            });
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            expires_in: Option<serde_json::Value>,
            expires_on: Option<serde_json::Value>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| AzureError::BadResponse {
                endpoint: endpoint.clone(),
                detail: format!("token response: {e}"),
            })?;
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| AzureError::BadResponse {
                endpoint: endpoint.clone(),
                detail: "no access_token".into(),
            })?;
        let as_u64 = |v: &serde_json::Value| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        };
        let lifetime = parsed
            .expires_in
            .as_ref()
            .and_then(as_u64)
            .or_else(|| {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
                parsed
                    .expires_on
                    .as_ref()
                    .and_then(as_u64)
                    .map(|on| on.saturating_sub(now))
            })
            .map(Duration::from_secs)
            .unwrap_or(TOKEN_REFRESH_MARGIN * 2);
        Ok((token, lifetime))
    }

    /// Send with bounded retries on connection errors, timeouts, 429 and 5xx; the last answer
    /// is returned when the attempts are spent.
    fn send_with_retry(
        &self,
        endpoint: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, AzureError> {
        let sent = retry::retry(
            &self.options.retry,
            |attempt| build().send().map_err(|e| (e, attempt)),
            |sent, attempt| match sent {
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    tracing::debug!(
                        endpoint,
                        status = resp.status().as_u16(),
                        attempt,
                        "retrying after a server error"
                    );
                    Verdict::Retry
                }
                Err((e, _))
                    if tls_failure(e, 0).is_none()
                        && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()) =>
                {
                    tracing::debug!(endpoint, attempt, error = %error_chain(e), "retrying after a connection error");
                    Verdict::Retry
                }
                _ => Verdict::Stop,
            },
        );
        sent.map_err(|(e, attempts)| match tls_failure(&e, 0) {
            Some(cause) => AzureError::Tls {
                endpoint: endpoint.to_owned(),
                cause: cause.to_string(),
            },
            None => AzureError::Connection {
                endpoint: endpoint.to_owned(),
                attempts,
                detail: error_chain(&e),
            },
        })
    }

    fn service_error(status: StatusCode, bytes: &[u8], endpoint: String) -> AzureError {
        #[derive(Deserialize)]
        struct Body {
            error: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: Option<String>,
            message: Option<String>,
        }
        let inner = serde_json::from_slice::<Body>(bytes)
            .ok()
            .and_then(|b| b.error);
        AzureError::Service {
            endpoint,
            status: status.as_u16(),
            code: inner
                .as_ref()
                .and_then(|i| i.code.clone())
                .unwrap_or_default(),
            message: inner.and_then(|i| i.message).unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct Attributes {
    enabled: Option<bool>,
    created: Option<u64>,
}

#[derive(Deserialize)]
struct SecretBundle {
    value: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct SecretItem {
    id: Option<String>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct SecretList {
    value: Vec<SecretItem>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

fn version_of(id: Option<&str>, endpoint: &str) -> Result<VersionId, AzureError> {
    id.and_then(|id| id.trim_end_matches('/').rsplit('/').next())
        .and_then(|v| VersionId::new(v).ok())
        .ok_or_else(|| AzureError::BadResponse {
            endpoint: endpoint.to_owned(),
            detail: "no version in the secret id".into(),
        })
}

impl SecretStore for AzureKeyVaultStore {
    fn put(&self, name: &SecretName, value: &SecretString) -> Result<VersionId, StoreError> {
        check_value(name, value)?;
        #[derive(serde::Serialize)]
        struct Put<'a> {
            value: &'a str,
            #[serde(rename = "contentType")]
            content_type: &'a str,
        }
        let body = Zeroizing::new(
            serde_json::to_vec(&Put {
                value: value.expose_secret(),
                content_type: "text/plain",
            })
            .expect("serializing a string cannot fail"),
        );
        let (status, bytes, endpoint) =
            self.call(Method::PUT, &format!("/secrets/{name}"), Some(&body))?;
        if !status.is_success() {
            return Err(Self::service_error(status, &bytes, endpoint).into());
        }
        let bundle: SecretBundle =
            serde_json::from_slice(&bytes).map_err(|e| AzureError::BadResponse {
                endpoint: endpoint.clone(),
                detail: e.to_string(),
            })?;
        drop(bundle.value.map(Zeroizing::new));
        Ok(version_of(bundle.id.as_deref(), &endpoint)?)
    }

    fn get(
        &self,
        name: &SecretName,
        version: Option<&VersionId>,
    ) -> Result<StoredSecret, StoreError> {
        let path = match version {
            Some(v) => format!("/secrets/{name}/{v}"),
            None => format!("/secrets/{name}"),
        };
        let (status, bytes, endpoint) = self.call(Method::GET, &path, None)?;
        let bytes = Zeroizing::new(bytes);
        if status == StatusCode::NOT_FOUND {
            return Err(StoreError::NotFound {
                name: name.clone(),
                version: version.cloned(),
                location: self.location(),
            });
        }
        if !status.is_success() {
            return Err(Self::service_error(status, &bytes, endpoint).into());
        }
        let bundle: SecretBundle =
            serde_json::from_slice(&bytes).map_err(|e| AzureError::BadResponse {
                endpoint: endpoint.clone(),
                detail: e.to_string(),
            })?;
        let version = version_of(bundle.id.as_deref(), &endpoint)?;
        let value =
            bundle
                .value
                .map(SecretString::from)
                .ok_or_else(|| AzureError::BadResponse {
                    endpoint: endpoint.clone(),
                    detail: "no value in the response".into(),
                })?;
        Ok(StoredSecret {
            name: name.clone(),
            version,
            value,
        })
    }

    fn versions(&self, name: &SecretName) -> Result<Vec<VersionInfo>, StoreError> {
        let mut out = Vec::new();
        let first = self.api_url(&format!("/secrets/{name}/versions"))?;
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let (status, bytes, endpoint) = self.call_url(Method::GET, &url, None)?;
            if status == StatusCode::NOT_FOUND {
                return Ok(Vec::new());
            }
            if !status.is_success() {
                return Err(Self::service_error(status, &bytes, endpoint).into());
            }
            let list: SecretList =
                serde_json::from_slice(&bytes).map_err(|e| AzureError::BadResponse {
                    endpoint: endpoint.clone(),
                    detail: e.to_string(),
                })?;
            for item in list.value {
                let version = version_of(item.id.as_deref(), &endpoint)?;
                let attrs = item.attributes.unwrap_or(Attributes {
                    enabled: None,
                    created: None,
                });
                out.push(VersionInfo {
                    version,
                    created: attrs.created,
                    enabled: attrs.enabled,
                });
            }
            if let Some(link) = list.next_link.filter(|l| !l.is_empty()) {
                // Follow only links into this vault: the token must not go anywhere else.
                let same_origin = url::Url::parse(&link)
                    .ok()
                    .zip(url::Url::parse(&self.vault).ok())
                    .is_some_and(|(l, v)| {
                        l.origin() == v.origin()
                            && l.username().is_empty()
                            && l.password().is_none()
                    });
                if !same_origin {
                    return Err(AzureError::BadResponse {
                        endpoint,
                        detail: "nextLink points outside the vault".into(),
                    }
                    .into());
                }
                if pages >= MAX_PAGES {
                    return Err(AzureError::BadResponse {
                        endpoint,
                        detail: format!("more than {MAX_PAGES} pages of versions"),
                    }
                    .into());
                }
                next = Some(link);
            }
        }
        out.sort_by(|a, b| {
            a.created
                .cmp(&b.created)
                .then_with(|| a.version.cmp(&b.version))
        });
        Ok(out)
    }

    fn location(&self) -> String {
        format!("Key Vault {}", self.vault)
    }
}

fn read_body(resp: Response, endpoint: &str) -> Result<Vec<u8>, AzureError> {
    resp.bytes()
        .map(|b| b.to_vec())
        .map_err(|e| AzureError::Connection {
            endpoint: endpoint.to_owned(),
            attempts: 1,
            detail: error_chain(&e),
        })
}

/// `METHOD scheme://host/path`, without the query (which may carry a client id) and with any
/// user info redacted.
fn endpoint_name(method: &Method, url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    format!("{method} {}", image_ref::redact_url(base))
}

/// The TLS failure (a certificate not trusted, expired, for another name...) in `e`'s source
/// chain, if any: no retry fixes it.
fn tls_failure<'a>(
    e: &'a (dyn std::error::Error + 'static),
    depth: u32,
) -> Option<&'a rustls::Error> {
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
        let inner: &(dyn std::error::Error + 'static) = inner;
        if let Some(t) = tls_failure(inner, depth + 1) {
            return Some(t);
        }
    }
    tls_failure(e.source()?, depth + 1)
}

/// `e` and its sources, `: `-separated, without reqwest's ` for url (...)` (the endpoint is
/// named, redacted, by the caller; the raw URL may carry a query).
fn error_chain(e: &reqwest::Error) -> String {
    let top = e.to_string();
    let mut s = match top.find(" for url (") {
        Some(i) => top[..i].to_owned(),
        None => top,
    };
    let mut cur = std::error::Error::source(e);
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

/// Parse `Bearer k="v", k2="v2"` into pairs; `None` if not a Bearer challenge.
fn parse_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = Vec::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// What went wrong talking to Key Vault or its token endpoints. Never carries a value or token.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AzureError {
    #[error("invalid Key Vault URL `{url}`: {reason}")]
    #[diagnostic(
        code(secret_store::azure::vault_url),
        help("pass the vault's URI, like https://kv-app-staging.vault.azure.net")
    )]
    InvalidVaultUrl { url: String, reason: String },
    #[error("Azure credential: {detail}")]
    #[diagnostic(
        code(secret_store::azure::config),
        help(
            "set AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or run where a managed identity is available"
        )
    )]
    Config { detail: String },
    #[error("{endpoint}: request failed after {attempts} attempt(s): {detail}")]
    #[diagnostic(
        code(secret_store::azure::connection),
        help("check the URL and the network path to it; the request was retried with backoff")
    )]
    Connection {
        endpoint: String,
        attempts: u32,
        detail: String,
    },
    #[error("{endpoint}: HTTP {status} {code}: {message}")]
    #[diagnostic(
        code(secret_store::azure::service),
        help(
            "403 means the identity lacks a data-plane role on the vault (e.g. Key Vault Secrets Officer to push, Secrets User to read)"
        )
    )]
    Service {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{endpoint}: bad authentication challenge: {detail}")]
    #[diagnostic(
        code(secret_store::azure::challenge),
        help("is this URL really a Key Vault?")
    )]
    Challenge { endpoint: String, detail: String },
    #[error(
        "the vault {vault} asked for a token for `{scope}`, which is not its domain; refusing to send a token"
    )]
    #[diagnostic(
        code(secret_store::azure::challenge_resource),
        help(
            "check the vault URL; for a private-link or custom domain set disable_challenge_resource_verification"
        )
    )]
    ChallengeResourceMismatch { vault: String, scope: String },
    #[error("{endpoint}: token request failed with HTTP {status} {code}: {description}")]
    #[diagnostic(
        code(secret_store::azure::token),
        help(
            "check the tenant id, client id and credential (secret, federated token or managed identity)"
        )
    )]
    Token {
        endpoint: String,
        status: u16,
        code: String,
        description: String,
    },
    #[error("cannot read the federated token file {}: {source}", path.display())]
    #[diagnostic(
        code(secret_store::azure::token_file),
        help("AZURE_FEDERATED_TOKEN_FILE must point at the projected service account token")
    )]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{endpoint}: unexpected response: {detail}")]
    #[diagnostic(
        code(secret_store::azure::bad_response),
        help(
            "the server does not answer as Key Vault does: check that the URL is the vault's URI"
        )
    )]
    BadResponse { endpoint: String, detail: String },
    #[error("{endpoint}: TLS failed: {cause}")]
    #[diagnostic(
        code(secret_store::azure::tls),
        help(
            "the server's certificate is not trusted or not valid for its name; behind a TLS-inspecting proxy or private CA, give that CA's certificate (PEM) to trust or install it in the system trust store"
        )
    )]
    Tls { endpoint: String, cause: String },
    #[error("the CA certificate given to trust holds no usable PEM certificate")]
    #[diagnostic(
        code(secret_store::azure::ca_certificate),
        help("give PEM text with one or more `-----BEGIN CERTIFICATE-----` blocks")
    )]
    CaCertificate,
}

#[cfg(test)]
mod tests {
    use super::parse_challenge;

    #[test]
    fn parses_key_vault_challenges() {
        let p = parse_challenge(r#"Bearer authorization="https://login.microsoftonline.com/t1", resource="https://vault.azure.net""#).unwrap();
        assert_eq!(
            p[0],
            (
                "authorization".into(),
                "https://login.microsoftonline.com/t1".into()
            )
        );
        assert_eq!(p[1], ("resource".into(), "https://vault.azure.net".into()));
        let p = parse_challenge(
            r#"Bearer authorization_uri="https://x/t", scope="https://vault.azure.net/.default""#,
        )
        .unwrap();
        assert_eq!(p[1].1, "https://vault.azure.net/.default");
        assert!(parse_challenge("Basic realm=\"x\"").is_none());
        assert!(parse_challenge("Bearer").unwrap().is_empty());
    }
}
