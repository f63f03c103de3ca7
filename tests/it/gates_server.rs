//! In-test services for the gate tests: a fake of identity + gateway + SPA (healthz, readyz,
//! version, JWKS, token-checked query, WebSocket upgrade, SPA index and assets) over plain HTTP or
//! TLS, and a runner of `rel` with chosen environment variables.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_rustls::rustls;

use crate::support::{Run, rel_command};

/// The token the fake gateway accepts.
pub const GOOD_TOKEN: &str = "eyJ0ZXN0IjoidG9rZW4ifQ.s3cret-smoke-token";
/// The version the fake services report.
pub const RUNNING: &str = "0.4.0";

/// How the fake services behave.
#[derive(Clone)]
pub struct Behavior {
    pub ready: bool,
    pub jwks_keys: bool,
    pub missing_asset: bool,
    /// How long `/slow` takes.
    pub slow: Duration,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            ready: true,
            jwks_keys: true,
            missing_asset: false,
            slow: Duration::from_secs(5),
        }
    }
}

const INDEX: &str = r#"<!doctype html><html><head><title>console</title>
<link rel="stylesheet" href="/assets/index-4f2a.css">
<script type="module" crossorigin src="/assets/index-9c1e.js"></script>
</head><body><div id="root"></div></body></html>"#;

/// An Ed25519 public key (RFC 8037 test vector).
const JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"identity-1","use":"sig","alg":"EdDSA"}"#;

pub fn app(b: Behavior) -> Router {
    let b = Arc::new(b);
    let ready = b.ready;
    let keys = b.jwks_keys;
    let missing = b.missing_asset;
    let slow = b.slow;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready {
                    (StatusCode::OK, "ready").into_response()
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "schema not migrated: table automation_execution_claims missing",
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/version",
            get(|| async { json(&format!(r#"{{"version":"{RUNNING}","service":"gateway"}}"#)) }),
        )
        .route(
            "/.well-known/jwks.json",
            get(move || async move {
                json(&if keys {
                    format!(r#"{{"keys":[{JWK}]}}"#)
                } else {
                    r#"{"keys":[]}"#.to_owned()
                })
            }),
        )
        .route(
            "/api/query",
            post(|headers: HeaderMap, body: String| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if auth != format!("Bearer {GOOD_TOKEN}") {
                    // Echo what was sent, as a careless service might: rel must not print it.
                    return (StatusCode::UNAUTHORIZED, format!("invalid token: {auth}"))
                        .into_response();
                }
                json(&format!(r#"{{"data":{{"answer":42}},"echo":{body}}}"#))
            }),
        )
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|_socket| async {}) }),
        )
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], INDEX) }),
        )
        .route(
            "/assets/index-4f2a.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], "body{margin:0}") }),
        )
        .route(
            "/assets/index-9c1e.js",
            get(move || async move {
                if missing {
                    (StatusCode::NOT_FOUND, "not found").into_response()
                } else {
                    (
                        [(header::CONTENT_TYPE, "text/javascript")],
                        "console.log(1)",
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(slow).await;
                "late"
            }),
        )
}

fn json(body: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}

/// A server running on a thread of its own until the test process ends.
pub struct Server {
    pub addr: SocketAddr,
}

impl Server {
    pub fn http(router: Router) -> Server {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, router).await.unwrap();
            });
        });
        Server { addr }
    }

    /// Serve `router` over TLS with `cert`.
    pub fn tls(router: Router, cert: &TestCert) -> Server {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone().into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tcp = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(TlsListener { tcp, acceptor }, router)
                    .await
                    .unwrap();
            });
        });
        Server { addr }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
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

/// A self-signed certificate for `127.0.0.1` and `localhost`.
pub struct TestCert {
    pub pem: String,
    pub der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl TestCert {
    /// Valid from 2020 to `until_year`-01-01 (a past year makes it expired).
    pub fn new(until_year: i32) -> TestCert {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCert {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("the bound address").port();
    ClosedPort {
        _socket: socket,
        port,
    }
}

/// A loopback port that refuses connections for as long as this value lives: the socket is bound
/// (so nothing else can take the port) but never listens.
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.port.fmt(f)
    }
}

/// Run `rel ARGS` in `dir` with a clean environment plus `envs`.
pub fn rel_env(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    rel_full(dir, args, envs, None)
}

/// Run `rel ARGS` in `dir` with `stdin` as its standard input.
pub fn rel_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    rel_full(dir, args, &[], Some(stdin))
}

fn rel_full(dir: &Path, args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    use std::io::Write as _;
    let mut cmd = rel_command(dir);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let output = match stdin {
        None => cmd.output().expect("run rel"),
        Some(bytes) => {
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("run rel");
            let mut pipe = child.stdin.take().unwrap();
            let bytes = bytes.to_vec();
            let writer = std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
            let output = child.wait_with_output().expect("wait for rel");
            writer.join().unwrap();
            output
        }
    };
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

/// The bearer token the fake API server accepts.
pub const KUBE_TOKEN: &str = "kube-test-token-7f3a";

/// How the fake Kubernetes API server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ApiMode {
    /// Serve the recorded objects, two pages per list (`limit`/`continue`) as the API server does.
    Serve,
    /// 403 with the API server's `Status` body.
    Forbidden,
    /// Answer only after 5 s.
    Slow,
}

/// A fake Kubernetes API server serving recorded objects: pods of namespace `platform` at
/// `/api/v1/namespaces/platform/pods`, all pods at `/api/v1/pods`, nodes at `/api/v1/nodes`.
pub fn kube_api(recorded: serde_json::Value, mode: ApiMode) -> Router {
    use axum::extract::{Path as UrlPath, Query};
    use std::collections::HashMap;
    let items: Vec<serde_json::Value> = recorded["items"].as_array().cloned().unwrap_or_default();
    let items = Arc::new(items);
    let list = move |kind: &'static str,
                     ns: Option<String>,
                     headers: HeaderMap,
                     q: HashMap<String, String>,
                     items: Arc<Vec<serde_json::Value>>| async move {
        if mode == ApiMode::Slow {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {KUBE_TOKEN}") {
            return status(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        if mode == ApiMode::Forbidden {
            let ns = ns.as_deref().unwrap_or("");
            return status(
                StatusCode::FORBIDDEN,
                &format!(
                    "pods is forbidden: User \"system:serviceaccount:ci:rel\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\""
                ),
            );
        }
        let selected: Vec<&serde_json::Value> = items
            .iter()
            .filter(|i| i["kind"] == kind)
            .filter(|i| {
                ns.as_deref()
                    .is_none_or(|ns| i["metadata"]["namespace"] == ns)
            })
            .filter(|i| {
                q.get("fieldSelector").is_none_or(|_| {
                    !matches!(i["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                })
            })
            .collect();
        // Two pages: the first `limit`/2 items, then the rest behind a continue token.
        let half = selected.len() / 2;
        let (page, cont) = match q.get("continue").map(String::as_str) {
            Some("page-2") => (&selected[half..], None),
            _ if half > 0 => (&selected[..half], Some("page-2")),
            _ => (&selected[..], None),
        };
        let mut meta = serde_json::json!({"resourceVersion": "12345"});
        if let Some(c) = cont {
            meta["continue"] = c.into();
        }
        let body = serde_json::json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": meta, "items": page});
        json(&body.to_string())
    };
    let (l1, l2, l3) = (list, list, list);
    let (i1, i2, i3) = (Arc::clone(&items), Arc::clone(&items), items);
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(
                move |UrlPath(ns): UrlPath<String>,
                      h: HeaderMap,
                      Query(q): Query<HashMap<String, String>>| {
                    l1("Pod", Some(ns), h, q, i1)
                },
            ),
        )
        .route(
            "/api/v1/pods",
            get(
                move |h: HeaderMap, Query(q): Query<HashMap<String, String>>| {
                    l2("Pod", None, h, q, i2)
                },
            ),
        )
        .route(
            "/api/v1/nodes",
            get(
                move |h: HeaderMap, Query(q): Query<HashMap<String, String>>| {
                    l3("Node", None, h, q, i3)
                },
            ),
        )
}

fn status(code: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code.as_u16()});
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A kubeconfig whose context `test` points at `server` with the test token, namespace `platform`.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\nusers:\n- name: ci\n  user:\n    token: {KUBE_TOKEN}\n- name: stranger\n  user:\n    token: not-the-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: ci\n    namespace: platform\n- name: stranger\n  context:\n    cluster: test\n    user: stranger\ncurrent-context: test\n"
    )
}
