//! The worker role: `POST /work` answers deterministically (see [`crate::protocol::answer`]).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use serde_json::json;
use service_runtime::config::ServeArgs;
use service_runtime::schema::SchemaRequirement;

use crate::protocol::{MAX_QUERY_BYTES, WorkRequest, WorkResponse, answer};

/// What the worker's `/readyz` asserts: the schema is at this build's version.
pub const SCHEMA: SchemaRequirement = SchemaRequirement { tables: &[] };

#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version,
    about = "The platform's worker role: answers POST /work"
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// The id this worker reports (default: $HOSTNAME, the pod name on Kubernetes).
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,

    /// The largest `delay_ms` a request may ask for; 0 ignores `delay_ms` (test-only slow path).
    #[arg(long, env = "WORKER_MAX_DELAY_MS", default_value_t = 0)]
    pub max_delay_ms: u64,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WorkerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tls(#[from] service_runtime::tls::TlsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serve(#[from] service_runtime::serve::ServeError),
}

#[derive(Clone)]
struct AppState {
    worker_id: Arc<str>,
    max_delay: Duration,
}

/// The worker's routes (without the probes).
pub fn router(worker_id: &str, max_delay: Duration) -> Router {
    Router::new()
        .route("/work", post(work))
        .with_state(AppState {
            worker_id: Arc::from(worker_id),
            max_delay,
        })
}

async fn work(State(state): State<AppState>, Json(request): Json<WorkRequest>) -> Response {
    if request.query.trim().is_empty() || request.query.len() > MAX_QUERY_BYTES {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("query must be 1 to {MAX_QUERY_BYTES} bytes and not blank")})),
        )
            .into_response();
    }
    let delay = Duration::from_millis(request.delay_ms.unwrap_or(0)).min(state.max_delay);
    tracing::debug!(delay_ms = delay.as_millis() as u64, "work started");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = WorkResponse {
        answer: answer(&request.query),
        worker_id: state.worker_id.to_string(),
    };
    tracing::debug!(delay_ms = delay.as_millis() as u64, "work answered");
    Json(response).into_response()
}

fn default_worker_id() -> String {
    std::env::var(service_runtime::env::HOSTNAME)
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("worker-{}", std::process::id()))
}

/// Runs the worker. Call after `service_runtime::startup::bootstrap_process`.
pub fn run(cli: Cli) -> Result<(), WorkerError> {
    let worker_id = cli
        .worker_id
        .filter(|w| !w.is_empty())
        .unwrap_or_else(default_worker_id);
    let db = cli.serve.database.database_url.clone();
    let health = service_runtime::Health::new(
        service_runtime::build_info!("worker", "worker"),
        db.clone(),
        SCHEMA,
    );
    tracing::info!(%worker_id, database = %db, listen = %cli.serve.listen_addr, "worker starting");
    let app = router(&worker_id, Duration::from_millis(cli.max_delay_ms)).merge(health.routes());
    let tls = cli.serve.tls.load()?;
    service_runtime::serve::run(cli.serve.listen_addr, app, health, cli.serve.drain, tls)?;
    Ok(())
}

/// `main` of the `worker` binary.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "worker failed");
            ExitCode::FAILURE
        }
    }
}
