//! An in-test server speaking Azure Key Vault's REST shape and the three token endpoints:
//! Entra ID's `/{tenant}/oauth2/v2.0/token`, IMDS and App Service managed identity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;
use tokio_rustls::rustls;

pub const TENANT: &str = "tenant-0001";
pub const CLIENT_ID: &str = "app-client-id";
pub const CLIENT_SECRET: &str = "cs-secret-value-91f0";
pub const FEDERATED_TOKEN: &str = "federated-jwt-value-5a5a";
pub const IDENTITY_HEADER: &str = "id-header-value-77c3";
pub const RESOURCE: &str = "https://vault.azure.net";

/// name -> versions: (version id, value, created).
type Secrets = HashMap<String, Vec<(String, String, u64)>>;

#[derive(Default)]
pub struct Vault {
    pub secrets: Mutex<Secrets>,
    pub issued: Mutex<Vec<String>>,
    pub token_forms: Mutex<Vec<HashMap<String, String>>>,
    pub msi_queries: Mutex<Vec<HashMap<String, String>>>,
    /// Answer the next N authorized vault requests with 503.
    pub fail_next: AtomicU32,
    /// Every vault request, authorized or not.
    pub vault_requests: AtomicU32,
    /// Body lengths of requests that came without a valid token (challenge probes).
    pub unauthorized_body_lens: Mutex<Vec<usize>>,
    pub challenge_resource: Mutex<String>,
    /// Misbehave: answer requests without a token with 200 and a secret bundle.
    pub probe_ok: std::sync::atomic::AtomicBool,
    /// TCP connections accepted by the TLS server (handshakes tried).
    pub connections: AtomicU32,
    pub base: Mutex<String>,
    counter: AtomicU32,
}

pub struct Server {
    pub url: String,
    pub state: Arc<Vault>,
}

pub fn start() -> Server {
    start_with(None)
}

/// The same server over TLS, presenting `chain` (leaf first) with `key` (PKCS#8 DER), at
/// `https://localhost:PORT`.
pub fn start_tls(chain: Vec<Vec<u8>>, key: Vec<u8>) -> Server {
    start_with(Some((chain, key)))
}

fn start_with(tls: Option<(Vec<Vec<u8>>, Vec<u8>)>) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let state = Arc::new(Vault::default());
    *state.challenge_resource.lock().unwrap() = RESOURCE.to_owned();
    *state.base.lock().unwrap() = url.clone();
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/msi/token", get(msi))
        .route("/appsvc/token", get(appsvc))
        .route("/secrets/{name}", put(put_secret).get(get_latest))
        .route("/secrets/{name}/versions", get(list_versions))
        .route("/secrets/{name}/{version}", get(get_version))
        .with_state(state.clone());
    let tls_state = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tcp = tokio::net::TcpListener::from_std(listener).unwrap();
            match tls {
                None => axum::serve(tcp, app).await.unwrap(),
                Some((chain, key)) => {
                    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        chain.into_iter().map(Into::into).collect(),
                        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
                    )
                    .unwrap();
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                    axum::serve(
                        TlsListener {
                            tcp,
                            acceptor,
                            state: tls_state,
                        },
                        app,
                    )
                    .await
                    .unwrap()
                }
            }
        });
    });
    Server { url, state }
}

fn issue(v: &Vault) -> String {
    let t = format!("kv-token-{}", v.counter.fetch_add(1, Ordering::SeqCst));
    v.issued.lock().unwrap().push(t.clone());
    t
}

async fn token(State(v): State<Arc<Vault>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form: HashMap<String, String> = serde_urlencoded(&body);
    v.token_forms.lock().unwrap().push(form.clone());
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let authenticated = f("client_secret") == CLIENT_SECRET
        || (f("client_assertion") == FEDERATED_TOKEN
            && f("client_assertion_type")
                == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    if tenant != TENANT
        || f("grant_type") != "client_credentials"
        || f("client_id") != CLIENT_ID
        || !authenticated
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    if f("scope") != format!("{RESOURCE}/.default") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_scope"})),
        )
            .into_response();
    }
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": issue(&v)}))
        .into_response()
}

async fn msi(
    State(v): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    v.msi_queries.lock().unwrap().push(q.clone());
    if headers.get("Metadata").map(|h| h.as_bytes()) != Some(b"true") {
        return (
            StatusCode::BAD_REQUEST,
            "Required metadata header not specified",
        )
            .into_response();
    }
    if q.get("resource").map(String::as_str) != Some(RESOURCE)
        || q.get("api-version").map(String::as_str) != Some("2018-02-01")
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_resource"})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": issue(&v), "expires_in": "86399", "expires_on": "1999999999", "resource": RESOURCE, "token_type": "Bearer"}))
        .into_response()
}

async fn appsvc(
    State(v): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    v.msi_queries.lock().unwrap().push(q.clone());
    if headers.get("X-IDENTITY-HEADER").map(|h| h.as_bytes()) != Some(IDENTITY_HEADER.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "bad identity header").into_response();
    }
    if q.get("resource").map(String::as_str) != Some(RESOURCE)
        || q.get("api-version").map(String::as_str) != Some("2019-08-01")
    {
        return (StatusCode::BAD_REQUEST, "bad query").into_response();
    }
    axum::Json(json!({"access_token": issue(&v), "expires_on": "4102444800", "resource": RESOURCE, "token_type": "Bearer"}))
        .into_response()
}

#[allow(clippy::result_large_err)]
/// Auth and failure injection for vault routes: `Err(response)` to answer at once.
fn gate(
    v: &Vault,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    body_len: usize,
) -> Result<(), Response> {
    v.vault_requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ok = auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| v.issued.lock().unwrap().iter().any(|i| i == t));
    if !ok && v.probe_ok.load(Ordering::SeqCst) {
        let base = v.base.lock().unwrap().clone();
        return Err(axum::Json(bundle(&base, "x", "v1", "", 1)).into_response());
    }
    if !ok {
        v.unauthorized_body_lens.lock().unwrap().push(body_len);
        let challenge = format!(
            "Bearer authorization=\"{}/{TENANT}\", resource=\"{}\"",
            v.base.lock().unwrap(),
            v.challenge_resource.lock().unwrap()
        );
        let mut r = (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}))).into_response();
        r.headers_mut()
            .insert("www-authenticate", challenge.parse().unwrap());
        return Err(r);
    }
    if q.get("api-version").map(String::as_str) != Some("2025-07-01") {
        return Err((
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": "BadParameter", "message": "api-version"}})),
        )
            .into_response());
    }
    if v.fail_next.load(Ordering::SeqCst) > 0 {
        v.fail_next.fetch_sub(1, Ordering::SeqCst);
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": {"code": "ServiceUnavailable", "message": "try again"}})),
        )
            .into_response());
    }
    Ok(())
}

fn bundle(base: &str, name: &str, version: &str, value: &str, created: u64) -> serde_json::Value {
    json!({"value": value, "id": format!("{base}/secrets/{name}/{version}"), "attributes": {"enabled": true, "created": created, "updated": created}})
}

fn not_found(name: &str) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}}))).into_response()
}

async fn put_secret(
    State(v): State<Arc<Vault>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = gate(&v, &headers, &q, body.len()) {
        return r;
    }
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let Some(value) = parsed.get("value").and_then(|x| x.as_str()) else {
        return (StatusCode::BAD_REQUEST, "no value").into_response();
    };
    let n = v.counter.fetch_add(1, Ordering::SeqCst);
    let version = format!("{:032x}", 0xabc000 + n);
    let created = 1_700_000_000 + n as u64;
    v.secrets
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_default()
        .push((version.clone(), value.to_owned(), created));
    axum::Json(bundle(
        &v.base.lock().unwrap(),
        &name,
        &version,
        value,
        created,
    ))
    .into_response()
}

async fn get_latest(
    State(v): State<Arc<Vault>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&v, &headers, &q, 0) {
        return r;
    }
    let secrets = v.secrets.lock().unwrap();
    match secrets.get(&name).and_then(|vs| vs.last()) {
        Some((ver, val, created)) => {
            axum::Json(bundle(&v.base.lock().unwrap(), &name, ver, val, *created)).into_response()
        }
        None => not_found(&name),
    }
}

async fn get_version(
    State(v): State<Arc<Vault>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&v, &headers, &q, 0) {
        return r;
    }
    let secrets = v.secrets.lock().unwrap();
    match secrets
        .get(&name)
        .and_then(|vs| vs.iter().find(|(ver, _, _)| *ver == version))
    {
        Some((ver, val, created)) => {
            axum::Json(bundle(&v.base.lock().unwrap(), &name, ver, val, *created)).into_response()
        }
        None => not_found(&name),
    }
}

async fn list_versions(
    State(v): State<Arc<Vault>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&v, &headers, &q, 0) {
        return r;
    }
    let base = v.base.lock().unwrap().clone();
    let secrets = v.secrets.lock().unwrap();
    let Some(vs) = secrets.get(&name) else {
        return not_found(&name);
    };
    // Serve one version per page, newest first, to exercise nextLink paging and sorting.
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let newest_first: Vec<_> = vs.iter().rev().collect();
    let items: Vec<_> = newest_first
        .get(page)
        .map(|(ver, _, created)| {
            vec![json!({"id": format!("{base}/secrets/{name}/{ver}"), "attributes": {"enabled": true, "created": created}})]
        })
        .unwrap_or_default();
    let next = (page + 1 < newest_first.len()).then(|| {
        format!(
            "{base}/secrets/{name}/versions?api-version=2025-07-01&page={}",
            page + 1
        )
    });
    axum::Json(json!({"value": items, "nextLink": next})).into_response()
}

fn serde_urlencoded(body: &[u8]) -> HashMap<String, String> {
    url_decode_form(std::str::from_utf8(body).unwrap_or(""))
}

fn url_decode_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct(k), pct(v))
        })
        .collect()
}

fn pct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<Vault>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            self.state.connections.fetch_add(1, Ordering::SeqCst);
            // A client that rejects the certificate aborts the handshake: serve the next one.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A private CA (PEM) and a `localhost` certificate it signed: (CA PEM, chain, key).
pub fn private_ca() -> (String, Vec<Vec<u8>>, Vec<u8>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "secret-store test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    (
        ca.pem(),
        vec![leaf.der().to_vec()],
        leaf_key.serialize_der(),
    )
}
