//! The smoke gate: the checks `rel.toml` declares for an environment, run concurrently against its
//! front door, each under its own timeout.
//!
//! Two profiles (seed 001 §5.5). `baseline`: a check whose input is missing (no base URL, no
//! token) is SKIP, and a SKIP never fails. `deep`, the promotion gate: every check must run and
//! pass, so a missing input is FAIL; deep-only checks (the authenticated query) run only here, and
//! the report must name the version it validated. The report's JSON, with `context` entries for
//! `env`, `profile`, `version` and `base-url`, is the evidence `rel record` accepts.
//!
//! The token never reaches the report: it is only put in an `Authorization` header, and every
//! detail is scrubbed of it before the report is returned.

pub mod assets;
mod cert;
mod jwks;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use retry::{Backoff, Verdict};
use serde_json::Value;
use sha1::Digest as _;

use crate::config::{JsonExpect, Smoke, SmokeCheck, SmokeKind, SmokeTarget};
use crate::report::{Check, Report};
use crate::version::Version;

/// Which checks run and how a missing input counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Front-door reachability; a check without its input is SKIP and never fails.
    Baseline,
    /// The promotion gate: every check runs and passes; a missing input is FAIL.
    Deep,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Deep => "deep",
        }
    }
}

/// A bearer token. Its `Debug` shows nothing, and it has no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// `None` for an empty or blank value: that is a missing token, not a token.
    pub fn new(value: String) -> Option<Token> {
        let v = value.trim();
        (!v.is_empty()).then(|| Token(v.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// Everything one smoke run needs.
#[derive(Debug, Clone)]
pub struct Input {
    pub env: String,
    pub profile: Profile,
    /// `--base-url`, else the environment's `base-url`.
    pub base_url: Option<String>,
    pub token: Option<Token>,
    /// Extra trust roots (PEM), e.g. a staging CA or a self-signed certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// The version being validated (`--version`).
    pub version: Option<Version>,
    pub smoke: Smoke,
}

/// Why the gate could not run at all (exit 2), as opposed to a check failing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SmokeError {
    #[error("the CA file holds no usable PEM certificate: {0}")]
    #[diagnostic(help(
        "--ca-file takes PEM: one or more `-----BEGIN CERTIFICATE-----` blocks (convert DER with `openssl x509 -inform der -in ca.cer -out ca.pem`)"
    ))]
    Ca(String),
    #[error("could not set up the HTTP client: {0}")]
    #[diagnostic(help(
        "this is a broken TLS setup or a bug: run with RUST_LOG=rel=debug and report it"
    ))]
    Client(String),
}

/// What one check found, before the profile decides what a missing input means.
enum Outcome {
    Pass(String),
    Fail(String),
    Missing(String),
}

struct Runner {
    client: reqwest::Client,
    input: Input,
}

/// Run every declared check concurrently and collect the report, in declaration order.
pub async fn run(input: Input) -> Result<Report, SmokeError> {
    let client = client(&input)?;
    let runner = Arc::new(Runner { client, input });
    let input = &runner.input;
    let mut report = Report::new("smoke", input.env.clone())
        .with_context("env", input.env.clone())
        .with_context("profile", input.profile.as_str());
    if let Some(base) = &input.base_url {
        report = report.with_context("base-url", base.clone());
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (i, check) in input.smoke.checks.iter().enumerate() {
        let runner = Arc::clone(&runner);
        let check = check.clone();
        tasks.spawn(async move { (i, runner.check(&check).await) });
    }
    let mut results: Vec<Option<(Check, Option<String>)>> = vec![None; input.smoke.checks.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, result)) => results[i] = Some(result),
            Err(e) => return Err(SmokeError::Client(format!("a check task died: {e}"))),
        }
    }

    if input.smoke.checks.is_empty() {
        report.push(Check::fail(
            "checks",
            format!("[environments.{}.smoke] declares no checks; a gate that checks nothing proves nothing: add [[environments.{}.smoke.checks]]", input.env, input.env),
        ));
    }
    let mut observed: Vec<String> = Vec::new();
    for (check, version) in results.into_iter().flatten() {
        observed.extend(version);
        report.push(check);
    }

    // The version this run validated: the one asked for, else the one every `version` check saw.
    observed.dedup();
    let validated = match (&input.version, observed.as_slice()) {
        (Some(v), _) => Some(v.to_string()),
        (None, [one]) => Some(one.clone()),
        _ => None,
    };
    match validated {
        Some(v) => report = report.with_context("version", v),
        None if input.profile == Profile::Deep => report.push(Check::fail(
            "evidence/version",
            if observed.len() > 1 {
                format!("the services report different versions ({}); a deep run validates one version: pass --version V", observed.join(", "))
            } else {
                "a deep run must name the version it validates: pass --version V (or declare a `version` check)".to_owned()
            },
        )),
        None => {}
    }

    // Last line of defence (bodies are already scrubbed as they are read): any length of token.
    if let Some(token) = &input.token {
        scrub(&mut report, &token.0);
    }
    Ok(report)
}

/// Replace every occurrence of the token in the report with `[redacted]`.
fn scrub(report: &mut Report, secret: &str) {
    for c in &mut report.checks {
        if c.detail.contains(secret) {
            c.detail = c.detail.replace(secret, "[redacted]");
        }
        if c.name.contains(secret) {
            c.name = c.name.replace(secret, "[redacted]");
        }
    }
    for v in report.context.values_mut() {
        if v.contains(secret) {
            *v = v.replace(secret, "[redacted]");
        }
    }
}

fn client(input: &Input) -> Result<reqwest::Client, SmokeError> {
    let mut builder = crate::trust::client(reqwest::Client::builder())
        .use_rustls_tls()
        .tls_info(true)
        .connect_timeout(input.smoke.timeout)
        .user_agent(concat!("rel-smoke/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(pem) = &input.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| SmokeError::Ca(e.to_string()))?;
        if certs.is_empty() {
            return Err(SmokeError::Ca(
                "no `-----BEGIN CERTIFICATE-----` block".to_owned(),
            ));
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|e| SmokeError::Client(crate::error::chain(&e)))
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn json_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer)
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `(host, port)` of an absolute URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = if matches!(scheme, "https" | "wss") {
        443
    } else {
        80
    };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let port = rest
            .strip_prefix(':')
            .map_or(Some(default), |p| p.parse().ok())?;
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

/// `scheme://authority` of an absolute URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

impl Runner {
    fn missing(&self, what: String) -> Outcome {
        Outcome::Missing(what)
    }

    fn url(&self, target: &SmokeTarget) -> Result<String, Outcome> {
        match target {
            SmokeTarget::Url(u) => Ok(u.clone()),
            SmokeTarget::Path(p) => match &self.input.base_url {
                Some(base) => Ok(format!("{}{p}", base.trim_end_matches('/'))),
                None => Err(self.missing(format!(
                    "no base URL: set `base-url` in [environments.{}.smoke] or pass --base-url",
                    self.input.env
                ))),
            },
        }
    }

    /// One check under its timeout, mapped through the profile.
    async fn check(&self, check: &SmokeCheck) -> (Check, Option<String>) {
        let profile = self.input.profile;
        if check.deep_only && profile == Profile::Baseline {
            return (
                Check::skip(&check.name, "runs in the deep profile only"),
                None,
            );
        }
        let timeout = check.timeout.unwrap_or(self.input.smoke.timeout);
        let endpoint = match &check.kind {
            SmokeKind::Dns { host: Some(h) } => h.clone(),
            _ => self.url(&check.target).unwrap_or_default(),
        };
        let (outcome, observed) = match tokio::time::timeout(timeout, self.run_kind(check)).await {
            Ok(result) => result,
            Err(_) => (
                Outcome::Fail(format!(
                    "timed out after {} ({endpoint})",
                    show_duration(timeout)
                )),
                None,
            ),
        };
        let row = match outcome {
            Outcome::Pass(d) => Check::pass(&check.name, d),
            Outcome::Fail(d) => Check::fail(&check.name, d),
            Outcome::Missing(d) if profile == Profile::Deep => Check::fail(
                &check.name,
                format!(
                    "missing input: {d}; the deep profile runs every check, so a missing input fails"
                ),
            ),
            Outcome::Missing(d) => Check::skip(&check.name, d),
        };
        (row, observed)
    }

    async fn run_kind(&self, check: &SmokeCheck) -> (Outcome, Option<String>) {
        let url = match (&check.kind, self.url(&check.target)) {
            (SmokeKind::Dns { host: Some(_) }, _) => String::new(),
            (_, Ok(u)) => u,
            (_, Err(missing)) => return (missing, None),
        };
        let outcome = match &check.kind {
            SmokeKind::Dns { host } => self.dns(host.clone(), &url).await,
            SmokeKind::Tls { min_days } => self.tls(&url, *min_days).await,
            SmokeKind::Http {
                status,
                body_contains,
                json,
            } => {
                self.http(&url, *status, body_contains.as_deref(), json.as_ref())
                    .await
            }
            SmokeKind::Readyz => self.readyz(&url).await,
            SmokeKind::Jwks => self.jwks(&url).await,
            SmokeKind::WebSocket => self.websocket(&url).await,
            SmokeKind::Spa => self.spa(&url).await,
            SmokeKind::Query { body, status, json } => {
                self.query(&url, body, *status, json.as_ref()).await
            }
            SmokeKind::Version { pointer } => return self.version(&url, pointer).await,
        };
        (outcome, None)
    }

    /// Send a request, retrying (with backoff) only when the connection itself failed.
    async fn send(
        &self,
        what: &str,
        url: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        // `retries` more attempts after the first, waits doubling from 100 ms.
        let policy = Backoff::exponential(
            self.input.smoke.retries.saturating_add(1),
            Duration::from_millis(100),
        );
        let make = &make;
        retry::retry_async(
            &policy,
            |attempt| async move { make().send().await.map_err(|e| (e, attempt)) },
            |sent, _| match sent {
                Err((e, _)) if e.is_connect() => {
                    tracing::debug!("{what} {url}: {}; retrying", crate::error::chain(e));
                    Verdict::Retry
                }
                _ => Verdict::Stop,
            },
        )
        .await
        .map_err(|(e, attempts)| {
            let tries = if attempts > 1 {
                format!(" (after {attempts} attempts)")
            } else {
                String::new()
            };
            format!("{what} {url} failed{tries}: {}", crate::error::chain(&e))
        })
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        self.send("GET", url, || self.client.get(url)).await
    }

    /// A response body, with the token scrubbed out *before* anything cuts or quotes it (a
    /// server that reflects the token must not leak any part of it into the report).
    async fn body(&self, url: &str, r: reqwest::Response) -> Result<String, String> {
        let text = r.text().await.map_err(|e| {
            format!(
                "GET {url}: reading the body failed: {}",
                crate::error::chain(&e)
            )
        })?;
        Ok(self.scrubbed(text))
    }

    fn scrubbed(&self, text: String) -> String {
        match &self.input.token {
            Some(token) if text.contains(&token.0) => text.replace(&token.0, "[redacted]"),
            _ => text,
        }
    }

    async fn dns(&self, host: Option<String>, url: &str) -> Outcome {
        let (host, port) = match host {
            Some(h) => (h, 443),
            None => match host_port(url) {
                Some(hp) => hp,
                None => return Outcome::Fail(format!("cannot read a host from `{url}`")),
            },
        };
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(addrs) => {
                let mut ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                ips.dedup();
                if ips.is_empty() {
                    Outcome::Fail(format!("{host} resolves to no address"))
                } else {
                    Outcome::Pass(format!("{host} resolves to {}", ips.join(", ")))
                }
            }
            Err(e) => Outcome::Fail(format!("{host} does not resolve: {e}")),
        }
    }

    async fn tls(&self, url: &str, min_days: u32) -> Outcome {
        if !url.starts_with("https://") {
            return self.missing(format!(
                "{url} is plain http: there is no TLS to check (use an https base URL)"
            ));
        }
        let resp = match self.get(url).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(format!("TLS handshake: {e}")),
        };
        let Some(der) = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        else {
            return Outcome::Fail(format!("{url}: the server presented no certificate"));
        };
        let Some(expires) = cert::not_after(&der) else {
            return Outcome::Fail(format!("{url}: cannot read the certificate's expiry"));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let days = (expires - now).div_euclid(86_400);
        if days < i64::from(min_days) {
            Outcome::Fail(format!(
                "{url}: the certificate expires in {days} days, fewer than the {min_days} required; renew it"
            ))
        } else {
            Outcome::Pass(format!(
                "{url}: handshake ok, certificate valid for {days} more days (>= {min_days})"
            ))
        }
    }

    async fn http(
        &self,
        url: &str,
        want: u16,
        contains: Option<&str>,
        json: Option<&JsonExpect>,
    ) -> Outcome {
        let resp = match self.get(url).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let status = resp.status();
        let body = match self.body(url, resp).await {
            Ok(b) => b,
            Err(e) => return Outcome::Fail(e),
        };
        if status.as_u16() != want {
            return Outcome::Fail(format!(
                "GET {url} → {status} (expected {want}): {}",
                truncate(&body, 200)
            ));
        }
        let mut detail = format!("GET {url} → {status}");
        if let Some(needle) = contains {
            if !body.contains(needle) {
                return Outcome::Fail(format!(
                    "GET {url} → {status} but the body does not contain `{needle}`: {}",
                    truncate(&body, 200)
                ));
            }
            detail.push_str(&format!("; body contains `{needle}`"));
        }
        if let Some(expect) = json {
            match check_json(&body, expect) {
                Ok(found) => detail.push_str(&format!("; {found}")),
                Err(e) => return Outcome::Fail(format!("GET {url} → {status}: {e}")),
            }
        }
        Outcome::Pass(detail)
    }

    async fn readyz(&self, url: &str) -> Outcome {
        let resp = match self.get(url).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let status = resp.status();
        let body = self.body(url, resp).await.unwrap_or_default();
        if status.is_success() {
            Outcome::Pass(format!("GET {url} → {status}"))
        } else {
            Outcome::Fail(format!(
                "GET {url} → {status}: {} (not ready: /readyz answers 503 until the schema is migrated and dependencies are up)",
                truncate(&body, 200)
            ))
        }
    }

    /// GET `url` and read its body; a transport error or a status other than 2xx is the failure.
    async fn get_success(&self, url: &str) -> Result<(reqwest::StatusCode, String), String> {
        let resp = self.get(url).await?;
        let status = resp.status();
        let body = self.body(url, resp).await?;
        if !status.is_success() {
            return Err(format!("GET {url} → {status}: {}", truncate(&body, 200)));
        }
        Ok((status, body))
    }

    async fn jwks(&self, url: &str) -> Outcome {
        let (_, body) = match self.get_success(url).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let doc: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Fail(format!(
                    "GET {url}: not JSON ({e}): {}",
                    truncate(&body, 120)
                ));
            }
        };
        match jwks::inspect(&doc) {
            Err(e) => Outcome::Fail(format!("GET {url}: {e}")),
            Ok(v) if !v.private.is_empty() => Outcome::Fail(format!(
                "GET {url}: the JWKS publishes private key material ({}); rotate those keys now",
                v.private.join(", ")
            )),
            Ok(v) if v.usable.is_empty() => {
                let why = if v.unusable.is_empty() {
                    "the `keys` array is empty".to_owned()
                } else {
                    v.unusable.join("; ")
                };
                Outcome::Fail(format!(
                    "GET {url}: no usable signing key: {why}; tokens cannot be verified"
                ))
            }
            Ok(v) => Outcome::Pass(format!(
                "GET {url}: {} usable key(s): {}",
                v.usable.len(),
                v.usable.join(", ")
            )),
        }
    }

    async fn websocket(&self, url: &str) -> Outcome {
        let http_url = if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            url.to_owned()
        };
        let key = websocket_key();
        let resp = self
            .send("WebSocket upgrade", url, || {
                self.client
                    .get(&http_url)
                    .header("Connection", "Upgrade")
                    .header("Upgrade", "websocket")
                    .header("Sec-WebSocket-Version", "13")
                    .header("Sec-WebSocket-Key", &key)
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let status = resp.status();
        if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            let body = self.body(url, resp).await.unwrap_or_default();
            return Outcome::Fail(format!(
                "WebSocket upgrade {url} → {status} (expected 101 Switching Protocols): {}",
                truncate(&body, 200)
            ));
        }
        let accept = resp
            .headers()
            .get("sec-websocket-accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept != websocket_accept(&key) {
            return Outcome::Fail(format!(
                "WebSocket upgrade {url} → 101 but `Sec-WebSocket-Accept` is wrong (`{accept}`): not a WebSocket server"
            ));
        }
        Outcome::Pass(format!("WebSocket upgrade {url} → 101 Switching Protocols"))
    }

    async fn spa(&self, url: &str) -> Outcome {
        let (status, html) = match self.get_success(url).await {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let refs = assets::referenced(&html);
        if refs.is_empty() {
            return Outcome::Fail(format!(
                "GET {url} → {status} but the page references no script or stylesheet: is this the SPA index?"
            ));
        }
        let base_dir = match url.rfind('/') {
            Some(i) if i > origin(url).len() => &url[..=i],
            _ => "",
        };
        let mut fetches = tokio::task::JoinSet::new();
        for r in &refs {
            let asset = if r.starts_with('/') {
                format!("{}{r}", origin(url))
            } else if base_dir.is_empty() {
                format!("{}/{}", origin(url), r.trim_start_matches("./"))
            } else {
                format!("{base_dir}{}", r.trim_start_matches("./"))
            };
            let client = self.client.clone();
            fetches.spawn(async move {
                let result = match client.get(&asset).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) if !b.is_empty() => Ok(()),
                        Ok(_) => Err("empty body".to_owned()),
                        Err(e) => Err(crate::error::chain(&e)),
                    },
                    Ok(r) => Err(r.status().to_string()),
                    Err(e) => Err(crate::error::chain(&e)),
                };
                (asset, result)
            });
        }
        let mut broken = Vec::new();
        while let Some(Ok((asset, result))) = fetches.join_next().await {
            if let Err(e) = result {
                broken.push(format!("{asset} → {e}"));
            }
        }
        broken.sort();
        if broken.is_empty() {
            Outcome::Pass(format!(
                "GET {url} → {status}; all {} referenced assets load",
                refs.len()
            ))
        } else {
            Outcome::Fail(format!(
                "GET {url} → {status} but {} of {} assets do not load: {}",
                broken.len(),
                refs.len(),
                broken.join("; ")
            ))
        }
    }

    async fn query(&self, url: &str, body: &str, want: u16, json: Option<&JsonExpect>) -> Outcome {
        let Some(token) = &self.input.token else {
            return self.missing(
                "no token for the authenticated query: pass --token or set REL_SMOKE_TOKEN"
                    .to_owned(),
            );
        };
        let resp = self
            .send("POST", url, || {
                self.client
                    .post(url)
                    .bearer_auth(&token.0)
                    .header("content-type", "application/json")
                    .body(body.to_owned())
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(e),
        };
        let status = resp.status();
        let text = self.scrubbed(resp.text().await.unwrap_or_default());
        if matches!(status.as_u16(), 401 | 403) && want != status.as_u16() {
            return Outcome::Fail(format!(
                "POST {url} → {status}: the gateway refused the token (expired, wrong issuer, or identity's JWKS not reachable from the gateway)"
            ));
        }
        if status.as_u16() != want {
            return Outcome::Fail(format!(
                "POST {url} → {status} (expected {want}): {}",
                truncate(&text, 200)
            ));
        }
        let mut detail = format!("authenticated POST {url} → {status}");
        if let Some(expect) = json {
            match check_json(&text, expect) {
                Ok(found) => detail.push_str(&format!("; {found}")),
                Err(e) => return Outcome::Fail(format!("POST {url} → {status}: {e}")),
            }
        }
        Outcome::Pass(detail)
    }

    async fn version(&self, url: &str, pointer: &str) -> (Outcome, Option<String>) {
        let (_, body) = match self.get_success(url).await {
            Ok(r) => r,
            Err(e) => return (Outcome::Fail(e), None),
        };
        let running = match serde_json::from_str::<Value>(&body)
            .ok()
            .as_ref()
            .and_then(|v| json_at(v, pointer))
        {
            Some(v) => json_text(v),
            None => {
                return (
                    Outcome::Fail(format!(
                        "GET {url}: no JSON field `{pointer}` in {}",
                        truncate(&body, 200)
                    )),
                    None,
                );
            }
        };
        match &self.input.version {
            Some(want) if running.strip_prefix('v').unwrap_or(&running) != want.to_string() => (
                Outcome::Fail(format!(
                    "GET {url}: runs version {running}, not {want}: the rollout has not converged, or the wrong version is deployed"
                )),
                Some(running),
            ),
            Some(want) => (
                Outcome::Pass(format!("GET {url}: runs version {want}")),
                Some(running),
            ),
            None => (
                Outcome::Pass(format!("GET {url}: runs version {running}")),
                Some(running),
            ),
        }
    }
}

fn check_json(body: &str, expect: &JsonExpect) -> Result<String, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("the body is not JSON ({e}): {}", truncate(body, 120)))?;
    let found = json_at(&v, &expect.pointer).ok_or_else(|| {
        format!(
            "no JSON field `{}` in {}",
            expect.pointer,
            truncate(body, 200)
        )
    })?;
    let text = json_text(found);
    match &expect.equals {
        Some(want) if &text != want => Err(format!(
            "JSON `{}` is `{text}`, expected `{want}`",
            expect.pointer
        )),
        Some(want) => Ok(format!("`{}` = `{want}`", expect.pointer)),
        None => Ok(format!("`{}` present", expect.pointer)),
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes, base64. Uniqueness matters, unpredictability does not.
fn websocket_key() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&t.to_le_bytes());
    bytes[8..].copy_from_slice(&(n ^ u64::from(std::process::id())).to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `Sec-WebSocket-Accept` a server must answer to `key` (RFC 6455 §4.2.2).
pub fn websocket_accept(key: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_matches_the_rfc_example() {
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            host_port("https://a.example.com/x"),
            Some(("a.example.com".into(), 443))
        );
        assert_eq!(
            host_port("http://127.0.0.1:8080"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(host_port("http://[::1]:9/x"), Some(("::1".into(), 9)));
        assert_eq!(
            origin("https://a.example.com:8443/app/index.html"),
            "https://a.example.com:8443"
        );
        assert_eq!(origin("http://h"), "http://h");
    }

    #[test]
    fn the_token_is_scrubbed() {
        let mut r = Report::new("smoke", "staging");
        r.push(Check::fail("query", "echoed: Bearer s3cret-token"));
        scrub(&mut r, "s3cret-token");
        assert_eq!(r.checks[0].detail, "echoed: Bearer [redacted]");
        assert_eq!(
            format!("{:?}", Token::new("abc".into()).unwrap()),
            "Token([redacted])"
        );
        assert!(Token::new("  ".into()).is_none());
    }
}
