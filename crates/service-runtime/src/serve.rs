//! The HTTP serve loop and its shutdown sequence (seed 001 §4.3):
//!
//! 1. SIGTERM (or SIGINT) arrives: flip to draining, so `/healthz` and `/readyz` answer 503.
//! 2. Keep serving, new requests included, for the drain delay: the load balancer and the
//!    EndpointSlice controller need that long to stop routing here.
//! 3. Close the listener; requests in flight get the shutdown budget to finish.
//! 4. Return `Ok` (exit 0) when they have, or [`ServeError::BudgetExceeded`] when they have not.
//!
//! The manifests' `terminationGracePeriodSeconds` must exceed preStop + drain delay + budget.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Health;
use crate::config::DrainArgs;
use crate::tls::TlsConfig;

/// A TLS handshake that takes longer than this is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(help(
        "set LISTEN_ADDR (or --listen-addr) to a free `host:port` of this host (`0.0.0.0:8080` listens on all interfaces); `address in use` means another process or sidecar already has the port, and ports below 1024 need privileges the container usually lacks"
    ))]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the SIGTERM handler: {0}")]
    #[diagnostic(help(
        "the operating system refused to register the signal handlers, most often for lack of file descriptors: check the container's open-file limit (`ulimit -n`) and restart; without them the service could not drain on SIGTERM, so it does not start"
    ))]
    Signal(std::io::Error),
    #[error("server failed: {0}")]
    #[diagnostic(help(
        "the listener stopped serving; look at the log lines before this one for the cause (`too many open files`: raise the open-file limit), then restart the service"
    ))]
    Io(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    #[diagnostic(help(
        "the process could not start its worker threads or I/O driver: check the container's limits on threads (pids limit), open files and memory"
    ))]
    Runtime(std::io::Error),
    #[error(
        "shutdown budget of {budget:?} ran out with {in_flight} request(s) still in flight; raise SHUTDOWN_BUDGET_MS (and terminationGracePeriodSeconds with it)"
    )]
    #[diagnostic(help(
        "raise SHUTDOWN_BUDGET_MS (or --shutdown-budget-ms) above the slowest request, keeping terminationGracePeriodSeconds above preStop + DRAIN_DELAY_MS + SHUTDOWN_BUDGET_MS, or find why requests are slow (on the gateway, calls to the worker wait up to WORKER_TIMEOUT_MS per attempt)"
    ))]
    BudgetExceeded { budget: Duration, in_flight: usize },
}

/// A service's whole serving life, from a plain (non-async) `main`: start the multi-threaded
/// runtime, bind `addr`, serve `app` until SIGTERM or SIGINT, drain, return.
pub fn run(
    addr: std::net::SocketAddr,
    app: Router,
    health: Health,
    drain: DrainArgs,
    tls: Option<TlsConfig>,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = bind(addr).await?;
        serve(listener, app, health, drain, tls).await
    })
}

/// Binds the listen address and logs the address it got (`listening addr=HOST:PORT`), so a
/// supervisor that asked for port 0 learns the port without racing for a free one.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "listening");
    Ok(listener)
}

/// Serves `app` (over HTTPS when `tls` is given) until SIGTERM or SIGINT, then drains (see the
/// module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    health: Health,
    drain: DrainArgs,
    tls: Option<TlsConfig>,
) -> Result<(), ServeError> {
    let signal = shutdown_signal()?;
    serve_until(listener, app, health, drain, tls, signal).await
}

/// As [`serve`], with the shutdown trigger given by the caller.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    health: Health,
    drain: DrainArgs,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sequence_health = health.clone();
    tokio::spawn(async move {
        shutdown.await;
        sequence_health.start_draining();
        tracing::info!(
            drain_delay_ms = drain.drain_delay_ms,
            in_flight = sequence_health.in_flight(),
            "shutdown requested: draining (healthz now 503)"
        );
        tokio::time::sleep(drain.drain_delay()).await;
        tracing::info!(
            shutdown_budget_ms = drain.shutdown_budget_ms,
            in_flight = sequence_health.in_flight(),
            "drain delay over: closing the listener, finishing in-flight requests"
        );
        let _ = stop_tx.send(true);
    });

    let mut stop_for_server = stop_rx.clone();
    let mut stop_for_budget = stop_rx;
    let app = health.track(app);
    let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => Box::pin(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_for_server.wait_for(|stop| *stop).await;
                })
                .into_future(),
        ),
        Some(tls) => Box::pin(serve_tls(listener, app, tls, stop_for_server)),
    };
    let budget = drain.shutdown_budget();
    let budget_timer = async move {
        if stop_for_budget.wait_for(|stop| *stop).await.is_err() {
            // The sequence task ended without stopping: never time out.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(budget).await;
    };
    tokio::select! {
        result = server => {
            result.map_err(ServeError::Io)?;
            tracing::info!("drained: exiting");
            Ok(())
        }
        () = budget_timer => Err(ServeError::BudgetExceeded { budget, in_flight: health.in_flight() }),
    }
}

/// The HTTPS accept loop: like `axum::serve` with graceful shutdown, behind a TLS handshake.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: TlsConfig,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed now, so a signal that
/// arrives before the future is polled is not lost (nor does it kill the process).
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
