//! A Service: a TCP listener on the Service's address per port, forwarding each connection to
//! one of the *ready* pods its selector picks (round robin), on the target port (a number, or a
//! container port name looked up in each pod). With no ready pod the connection is closed, as a
//! Service without endpoints refuses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::run::Inner;

/// Serve one Service port until the task is aborted.
pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    namespace: String,
    service: String,
    port: u16,
) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, service, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(backend) = pick(&inner, &namespace, &service, port, &next) else {
            drop(client);
            continue;
        };
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut upstream) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = upstream.set_nodelay(true);
            let mut client = client;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

fn pick(
    inner: &Inner,
    namespace: &str,
    service: &str,
    port: u16,
    next: &AtomicUsize,
) -> Option<SocketAddr> {
    let state = inner.state.lock().expect("state lock");
    let svc = state
        .services
        .iter()
        .find(|s| s.name == service && s.namespace == namespace)?;
    let target = &svc.ports.iter().find(|p| p.port == port)?.target;
    let endpoints: Vec<SocketAddr> = state
        .pods
        .iter()
        .filter(|p| {
            p.namespace == namespace
                && p.ready()
                && !svc.selector.is_empty()
                && svc.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        })
        .filter_map(|p| {
            let port = match target.parse::<u16>() {
                Ok(n) => n,
                Err(_) => {
                    p.ports
                        .iter()
                        .find(|(n, _)| n.as_deref() == Some(target))?
                        .1
                }
            };
            Some(SocketAddr::from((p.ip, port)))
        })
        .collect();
    if endpoints.is_empty() {
        return None;
    }
    let i = next.fetch_add(1, Ordering::Relaxed);
    Some(endpoints[i % endpoints.len()])
}
