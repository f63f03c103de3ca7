//! The gateway role, the front door: `POST /api/query` with a bearer JWT from identity, verified
//! against identity's JWKS, forwarded to a worker over HTTP.
//!
//! The JWKS is fetched on first use and cached; a token naming a `kid` the cache does not know
//! triggers one refresh (at most one per [`JWKS_MIN_REFRESH`], so tokens signed by a stranger
//! cannot make the gateway hammer identity), and keys older than [`JWKS_MAX_AGE`] are refreshed.
//! Calls to identity and to the worker have timeouts and bounded retries with backoff, and a
//! failure names the endpoint.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use retry::{Backoff, Verdict};
use serde_json::json;
use service_runtime::config::ServeArgs;
use service_runtime::database::{DatabaseUrl, rusqlite};
use service_runtime::schema::{QUERY_AUDIT, SchemaRequirement};
use service_runtime::token::{self, Claims, Jwks, KeySet, TokenError};
use tokio::sync::{Mutex, RwLock};

use crate::protocol::{MAX_QUERY_BYTES, QueryRequest, QueryResponse, WorkRequest, WorkResponse};

/// What the gateway's `/readyz` asserts.
pub const SCHEMA: SchemaRequirement = SchemaRequirement {
    tables: &[QUERY_AUDIT],
};
/// The JWKS is refreshed on an unknown `kid` at most this often, by default
/// (`--jwks-min-refresh-ms` / `JWKS_MIN_REFRESH_MS`).
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(2);
/// Cached keys older than this are refreshed on the next request.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// Attempts per upstream call (identity's JWKS, the worker).
pub const ATTEMPTS: u32 = 3;
/// Upstream calls: [`ATTEMPTS`] tries, waits doubling from 100 ms.
const RETRY: Backoff = Backoff::exponential(ATTEMPTS, Duration::from_millis(100));

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "The platform's front door: POST /api/query, bearer JWT from identity"
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// identity's JWKS, e.g. http://identity:8080/.well-known/jwks.json
    #[arg(long, env = "IDENTITY_JWKS_URL")]
    pub identity_jwks_url: reqwest::Url,

    /// The worker's base URL, e.g. http://worker:8080
    #[arg(long, env = "WORKER_URL")]
    pub worker_url: reqwest::Url,

    /// The `iss` claim tokens must carry.
    #[arg(long, env = "IDENTITY_ISSUER", default_value = "rel-identity")]
    pub issuer: String,

    /// Extra PEM CA certificates to trust for https identity and worker URLs (besides the
    /// built-in web PKI roots), e.g. a cluster-internal CA.
    #[arg(long, env = "UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<std::path::PathBuf>,

    /// Per-attempt timeout of a call to the worker, in milliseconds.
    #[arg(long, env = "WORKER_TIMEOUT_MS", default_value_t = 10_000)]
    pub worker_timeout_ms: u64,

    /// At most one JWKS refresh per this many milliseconds when tokens carry an unknown `kid`
    /// (so tokens signed by a stranger cannot make the gateway hammer identity).
    #[arg(long, env = "JWKS_MIN_REFRESH_MS", default_value_t = JWKS_MIN_REFRESH.as_millis() as u64)]
    pub jwks_min_refresh_ms: u64,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GatewayError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tls(#[from] service_runtime::tls::TlsError),
    #[error("cannot build the HTTP client: {0}")]
    #[diagnostic(help(
        "the client's TLS setup failed, most often on a certificate from UPSTREAM_CA_FILE: check that the file holds CA certificates (not a server certificate or a key) in PEM form, or unset UPSTREAM_CA_FILE to rely on the built-in roots"
    ))]
    Client(reqwest::Error),
    #[error("UPSTREAM_CA_FILE {path}: {reason}")]
    #[diagnostic(help(
        "UPSTREAM_CA_FILE (or --upstream-ca-file) must name a readable file of PEM CA certificates (`-----BEGIN CERTIFICATE-----` blocks), such as the cluster CA that signed identity's and the worker's certificates; check the path and that the secret or config map is mounted there"
    ))]
    CaFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serve(#[from] service_runtime::serve::ServeError),
}

/// An upstream call that failed after its retries; names the endpoint.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{endpoint}: {reason}")]
#[diagnostic(help(
    "check that the service behind {endpoint} is running and ready (its /readyz) and reachable from the gateway, and that the gateway's URL for it is right (IDENTITY_JWKS_URL for identity's keys, WORKER_URL for the worker); a timeout from the worker may need a larger WORKER_TIMEOUT_MS"
))]
pub struct UpstreamError {
    pub endpoint: String,
    pub reason: String,
}

/// identity's keys, fetched on demand and cached.
pub struct JwksCache {
    http: reqwest::Client,
    url: reqwest::Url,
    min_refresh: Duration,
    cache: RwLock<Cached>,
    refresh: Mutex<()>,
}

#[derive(Default)]
struct Cached {
    keys: KeySet,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    attempted: Option<Instant>,
}

/// Why a request's token was not accepted.
#[derive(Debug)]
pub enum AuthError {
    Missing,
    Invalid(TokenError),
    KeysUnavailable(UpstreamError),
}

impl JwksCache {
    /// A cache of `url`'s keys, refreshed on an unknown `kid` at most once per `min_refresh`.
    pub fn new(http: reqwest::Client, url: reqwest::Url, min_refresh: Duration) -> Self {
        Self {
            http,
            url,
            min_refresh,
            cache: RwLock::new(Cached::default()),
            refresh: Mutex::new(()),
        }
    }

    /// Verifies `token`: picks the key by `kid`, refreshing the JWKS once when the `kid` is
    /// unknown, and in passing when the cached keys are older than [`JWKS_MAX_AGE`] (so a
    /// rotated-out key stops verifying; if identity cannot be reached then, the cached keys stay).
    pub async fn verify(&self, token: &str, issuer: &str) -> Result<Claims, AuthError> {
        let kid = token::key_id(token).map_err(AuthError::Invalid)?;
        let (known, stale) = {
            let cache = self.cache.read().await;
            (
                cache.keys.get(&kid).is_some(),
                cache.fetched.is_some_and(|at| at.elapsed() > JWKS_MAX_AGE),
            )
        };
        if stale {
            if let Err(error) = self.refresh(&kid, true).await {
                tracing::warn!(%error, "JWKS refresh failed; keeping the cached keys");
            }
        } else if !known {
            self.refresh(&kid, false)
                .await
                .map_err(AuthError::KeysUnavailable)?;
        }
        let cache = self.cache.read().await;
        let key = cache
            .keys
            .get(&kid)
            .ok_or_else(|| AuthError::Invalid(TokenError::UnknownKey(kid.clone())))?;
        token::verify(token, key, issuer, unix_now()).map_err(AuthError::Invalid)
    }

    /// Fetches the JWKS unless another request just did (at most one attempt per
    /// `min_refresh`) or, when not `force`d, `kid` is known by now.
    async fn refresh(&self, kid: &str, force: bool) -> Result<(), UpstreamError> {
        let _one_at_a_time = self.refresh.lock().await;
        {
            let cache = self.cache.read().await;
            if !force && cache.keys.get(kid).is_some() {
                return Ok(());
            }
            if cache
                .attempted
                .is_some_and(|at| at.elapsed() < self.min_refresh)
            {
                return match cache.fetched {
                    Some(_) => Ok(()),
                    None => Err(UpstreamError {
                        endpoint: self.url.to_string(),
                        reason: "JWKS not fetched yet (the last attempt failed); retrying shortly"
                            .to_owned(),
                    }),
                };
            }
        }
        self.cache.write().await.attempted = Some(Instant::now());
        let jwks: Jwks = with_retries(&self.url, || self.http.get(self.url.clone()).send()).await?;
        let keys = KeySet::from_jwks(&jwks);
        tracing::info!(endpoint = %self.url, keys = keys.len(), "JWKS refreshed");
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }
}

/// Sends (via `send`) up to [`ATTEMPTS`] times with doubling backoff, retrying connection
/// failures, timeouts and 5xx; decodes a 2xx JSON body.
async fn with_retries<T, F, Fut>(endpoint: &reqwest::Url, send: F) -> Result<T, UpstreamError>
where
    T: serde::de::DeserializeOwned,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    /// Why an attempt failed, and whether another may help.
    enum Failure {
        Retryable(String),
        Final(String),
    }
    let fail = |reason: String| UpstreamError {
        endpoint: endpoint.to_string(),
        reason,
    };
    let send = &send;
    let answer = retry::retry_async(
        &RETRY,
        |attempt| async move {
            let reason = match send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().is_server_error() => format!("HTTP {}", resp.status()),
                Ok(resp) => return Err(Failure::Final(format!("HTTP {}", resp.status()))),
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                    if e.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        format!("{e}")
                    }
                }
                Err(e) => return Err(Failure::Final(e.to_string())),
            };
            tracing::warn!(%endpoint, attempt, %reason, "upstream call failed");
            Err(Failure::Retryable(reason))
        },
        |answer, _| match answer {
            Err(Failure::Retryable(_)) => Verdict::Retry,
            _ => Verdict::Stop,
        },
    )
    .await;
    match answer {
        Ok(resp) => resp
            .json::<T>()
            .await
            .map_err(|e| fail(format!("unexpected response body: {e}"))),
        Err(Failure::Final(reason)) => Err(fail(reason)),
        Err(Failure::Retryable(reason)) => {
            Err(fail(format!("{reason} (after {ATTEMPTS} attempts)")))
        }
    }
}

#[derive(Clone)]
struct AppState {
    jwks: Arc<JwksCache>,
    http: reqwest::Client,
    work_url: reqwest::Url,
    issuer: Arc<str>,
    db: DatabaseUrl,
}

/// The gateway's routes (without the probes).
pub fn router(
    http: reqwest::Client,
    jwks: JwksCache,
    worker_url: &reqwest::Url,
    issuer: &str,
    db: DatabaseUrl,
) -> Router {
    let work_url = worker_url
        .join("work")
        .expect("a base URL joins a relative path");
    let state = AppState {
        jwks: Arc::new(jwks),
        http,
        work_url,
        issuer: Arc::from(issuer),
        db,
    };
    Router::new()
        .route("/api/query", post(query))
        .with_state(state)
}

fn unauthorized(error: &str, description: &str) -> Response {
    let challenge = format!(r#"Bearer error="{error}", error_description="{description}""#);
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<QueryRequest>,
) -> Response {
    let claims = match bearer(&headers) {
        None => Err(AuthError::Missing),
        Some(token) => state.jwks.verify(token, &state.issuer).await,
    };
    let claims = match claims {
        Ok(claims) => claims,
        Err(AuthError::Missing) => {
            return unauthorized(
                "invalid_request",
                "send Authorization: Bearer <token from identity>",
            );
        }
        Err(AuthError::Invalid(reason)) => {
            tracing::info!(%reason, "query refused");
            return unauthorized("invalid_token", &reason.to_string());
        }
        Err(AuthError::KeysUnavailable(error)) => {
            tracing::error!(%error, "cannot fetch identity's JWKS");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "identity unavailable", "detail": error.to_string()})),
            )
                .into_response();
        }
    };
    if request.query.trim().is_empty() || request.query.len() > MAX_QUERY_BYTES {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("query must be 1 to {MAX_QUERY_BYTES} bytes and not blank")})),
        )
            .into_response();
    }
    let work = WorkRequest {
        query: request.query,
        delay_ms: request.delay_ms,
    };
    let answer: WorkResponse = match with_retries(&state.work_url, || {
        state.http.post(state.work_url.clone()).json(&work).send()
    })
    .await
    {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(%error, "worker call failed");
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": "worker unavailable", "detail": error.to_string()})),
            )
                .into_response();
        }
    };
    if let Err(reason) = record_query(&state.db, &claims, &answer.worker_id).await {
        tracing::warn!(%reason, "cannot record the query in query_audit");
    }
    tracing::info!(subject = %claims.sub, class = %claims.class, worker_id = %answer.worker_id, "query answered");
    Json(QueryResponse {
        answer: answer.answer,
        worker_id: answer.worker_id,
    })
    .into_response()
}

async fn record_query(db: &DatabaseUrl, claims: &Claims, worker_id: &str) -> Result<(), String> {
    let db = db.clone();
    let (subject, class, worker_id) = (
        claims.sub.clone(),
        claims.class.as_str(),
        worker_id.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let conn = db.open_existing().map_err(|e| e.to_string())?;
        conn.execute(
            "INSERT INTO query_audit (subject, class, worker_id, answered_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![subject, class, worker_id, unix_now()],
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the gateway. Call after `service_runtime::startup::bootstrap_process`.
pub fn run(cli: Cli) -> Result<(), GatewayError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_millis(cli.worker_timeout_ms.max(1)))
        .user_agent(concat!("rel-gateway/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &cli.upstream_ca_file {
        let ca_err = |reason: String| GatewayError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in the file".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder.build().map_err(GatewayError::Client)?;
    let db = cli.serve.database.database_url.clone();
    let health = service_runtime::Health::new(
        service_runtime::build_info!("gateway", "gateway"),
        db.clone(),
        SCHEMA,
    );
    tracing::info!(
        identity_jwks_url = %cli.identity_jwks_url,
        worker_url = %cli.worker_url,
        database = %db,
        listen = %cli.serve.listen_addr,
        "gateway starting"
    );
    let jwks = JwksCache::new(
        http.clone(),
        cli.identity_jwks_url,
        Duration::from_millis(cli.jwks_min_refresh_ms),
    );
    let app = router(http, jwks, &cli.worker_url, &cli.issuer, db).merge(health.routes());
    let tls = cli.serve.tls.load()?;
    service_runtime::serve::run(cli.serve.listen_addr, app, health, cli.serve.drain, tls)?;
    Ok(())
}

/// `main` of the `gateway` binary.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "gateway failed");
            ExitCode::FAILURE
        }
    }
}
