//! A small HTTP proxy in front of a registry that injects faults (503 once, dropped connection)
//! or demands bearer tokens it hands out itself. It forces `Connection: close` upstream so that
//! every request is seen on its own connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer 503 without forwarding.
    Unavailable,
    /// Close the connection without answering.
    Drop,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    pub method: &'static str,
    pub path_contains: &'static str,
    /// How many matching requests fail (then they pass).
    pub times: usize,
}

/// Bearer mode: `/token` wants basic `user:password` and returns a token bound to the scopes asked;
/// other requests need `Authorization: Bearer <a token whose scopes cover the repository>`.
#[derive(Clone, Debug)]
pub struct BearerAuth {
    pub user: &'static str,
    pub password: &'static str,
}

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicUsize,
    pub faults: AtomicUsize,
    pub token_requests: AtomicUsize,
    pub log: Mutex<Vec<String>>,
}

pub struct Proxy {
    pub port: u16,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: u16, faults: Vec<Fault>, bearer: Option<BearerAuth>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let faults = Arc::new(Mutex::new(faults));
        let s = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (stats, faults, bearer) = (s.clone(), faults.clone(), bearer.clone());
                tokio::spawn(async move {
                    let _ = handle(conn, upstream, port, stats, faults, bearer).await;
                });
            }
        });
        Proxy { port, stats, task }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn handle(
    mut conn: TcpStream,
    upstream: u16,
    own_port: u16,
    stats: Arc<Stats>,
    faults: Arc<Mutex<Vec<Fault>>>,
    bearer: Option<BearerAuth>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        first.next().unwrap_or_default().to_owned(),
        first.next().unwrap_or_default().to_owned(),
    );
    stats.requests.fetch_add(1, Ordering::SeqCst);
    stats.log.lock().unwrap().push(format!("{method} {target}"));

    let fault = {
        let mut faults = faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && target.contains(f.path_contains))
            .map(|f| {
                f.times -= 1;
                f.kind
            })
    };
    if let Some(kind) = fault {
        stats.faults.fetch_add(1, Ordering::SeqCst);
        if kind == FaultKind::Unavailable {
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
        }
        return Ok(());
    }

    let header = |name: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    if let Some(auth) = &bearer {
        if target.starts_with("/token") {
            stats.token_requests.fetch_add(1, Ordering::SeqCst);
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", auth.user, auth.password))
            );
            if header("authorization").as_deref() != Some(expected.as_str()) {
                conn.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
                return Ok(());
            }
            // The token is the scopes themselves, encoded: the proxy checks them on use.
            let scopes: Vec<String> = target
                .split(['?', '&'])
                .filter_map(|kv| kv.strip_prefix("scope="))
                .map(|s| {
                    s.replace("%3A", ":")
                        .replace("%2F", "/")
                        .replace("%2C", ",")
                })
                .collect();
            let token = base64::engine::general_purpose::STANDARD.encode(scopes.join(" "));
            let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
            conn.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .as_bytes(),
            )
            .await?;
            return Ok(());
        }
        let repo = target.strip_prefix("/v2/").and_then(|rest| {
            ["/blobs/", "/manifests/"]
                .iter()
                .find_map(|m| rest.find(m).map(|i| rest[..i].to_owned()))
        });
        let granted = header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let allowed = match &repo {
            Some(r) => granted
                .split(' ')
                .any(|s| s.starts_with(&format!("repository:{r}:"))),
            None => !granted.is_empty(),
        };
        if !allowed {
            let scope = repo
                .map(|r| format!(",scope=\"repository:{r}:pull,push\""))
                .unwrap_or_default();
            conn.write_all(
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{own_port}/token\",service=\"rel-test\"{scope}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
            return Ok(());
        }
    }

    // Forward: drop hop-by-hop and auth headers, force one request per connection.
    let mut forwarded = String::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("authorization:")) {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.write_all(forwarded.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut up).await?;
    Ok(())
}
