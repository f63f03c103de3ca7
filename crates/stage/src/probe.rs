//! Readiness probes, as the kubelet runs them: an HTTP GET whose status is 200–399, or a TCP
//! connect, against the pod's own address, each with its timeout.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::plan::{ProbeAction, ProbePlan};

/// One probe attempt: true when it succeeded.
pub async fn probe_once(ip: Ipv4Addr, probe: &ProbePlan) -> bool {
    let attempt = async {
        match &probe.action {
            ProbeAction::Tcp { port } => TcpStream::connect(SocketAddr::from((ip, *port)))
                .await
                .is_ok(),
            ProbeAction::Http { port, path, .. } => http_ok(ip, *port, path).await.unwrap_or(false),
        }
    };
    tokio::time::timeout(probe.timeout, attempt)
        .await
        .unwrap_or(false)
}

async fn http_ok(ip: Ipv4Addr, port: u16, path: &str) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(SocketAddr::from((ip, port))).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/rel-stage\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 4096 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status: Option<u16> = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    Ok(status.is_some_and(|s| (200..400).contains(&s)))
}
