//! In-test HTTP(S) servers that answer with a closure and record what they were sent: for what a
//! real registry will not do (a `Location` on another origin, a plain-http realm) and for TLS
//! with a private CA. Each binds port 0 and says where it is.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use tokio_rustls::rustls;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
}

/// What the server answers: status and headers for (method, path and query, authorization).
pub type Answer =
    Arc<dyn Fn(&Method, &str, Option<&str>) -> (u16, Vec<(String, String)>) + Send + Sync>;

#[derive(Clone)]
struct AppState {
    answer: Answer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct Fake {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections accepted (TLS handshakes tried, for a TLS server).
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// A plain HTTP server on a free loopback port.
    pub async fn http(answer: Answer) -> Fake {
        Self::start(answer, None).await
    }

    /// A TLS server presenting `cert` (chain, leaf first) with `key` (PKCS#8 DER).
    pub async fn https(answer: Answer, cert: Vec<Vec<u8>>, key: Vec<u8>) -> Fake {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            cert.into_iter().map(Into::into).collect(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
        Self::start(
            answer,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start(answer: Answer, tls: Option<tokio_rustls::TlsAcceptor>) -> Fake {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let app = Router::new().fallback(handle).with_state(AppState {
            answer,
            seen: seen.clone(),
        });
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            match tls {
                None => axum::serve(Counting { tcp, counted }, app).await.unwrap(),
                Some(acceptor) => axum::serve(
                    TlsListener {
                        tcp: Counting { tcp, counted },
                        acceptor,
                    },
                    app,
                )
                .await
                .unwrap(),
            }
        });
        Fake {
            addr,
            seen,
            connections,
            task,
        }
    }
}

async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers: &HeaderMap = req.headers();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        target: target.clone(),
        authorization: authorization.clone(),
    });
    // Read the whole body so that the client's upload completes.
    let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
    let (status, headers) = (state.answer)(&method, &target, authorization.as_deref());
    let mut resp = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        resp = resp.header(k, v);
    }
    resp.body(Body::empty()).unwrap()
}

struct Counting {
    tcp: tokio::net::TcpListener,
    counted: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(pair) = self.tcp.accept().await {
                self.counted.fetch_add(1, Ordering::SeqCst);
                return pair;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

struct TlsListener {
    tcp: Counting,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
            // A client that rejects the certificate aborts the handshake: serve the next one.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.tcp.local_addr()
    }
}

/// A private CA and a server certificate it signed for `host`.
pub struct PrivateCa {
    pub ca_pem: String,
    pub chain: Vec<Vec<u8>>,
    pub key: Vec<u8>,
}

impl PrivateCa {
    pub fn new(host: &str) -> PrivateCa {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rel test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        PrivateCa {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().to_vec()],
            key: leaf_key.serialize_der(),
        }
    }
}
