//! `/healthz`, `/readyz` and `/version`, and the state behind them: the draining flag and the
//! count of requests in flight.
//!
//! - `/healthz`: 200 `{"status":"ok"}`; 503 `{"status":"draining"}` once SIGTERM arrived.
//! - `/readyz`: 200 when the schema this service needs is present; 503 with the reason otherwise
//!   (and while draining). It asserts; it never migrates.
//! - `/version`: the [`BuildInfo`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::BuildInfo;
use crate::database::DatabaseUrl;
use crate::schema::SchemaRequirement;

/// Shared health state; cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    build: BuildInfo,
    db: DatabaseUrl,
    schema: SchemaRequirement,
}

impl Health {
    pub fn new(build: BuildInfo, db: DatabaseUrl, schema: SchemaRequirement) -> Self {
        Self {
            inner: Arc::new(Inner {
                draining: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                build,
                db,
                schema,
            }),
        }
    }

    pub fn build(&self) -> &BuildInfo {
        &self.inner.build
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Flips to draining: `/healthz` and `/readyz` answer 503 from now on.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Requests being served right now (probes included).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The probe and version routes, ready to merge into a service's router.
    pub fn routes<S>(&self) -> Router<S> {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/version", get(version))
            .with_state(self.clone())
    }

    /// Wraps a finished router so every request is counted while in flight.
    pub fn track(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            track_in_flight,
        ))
    }

    /// The `/readyz` assertion, for callers outside HTTP (and tests).
    pub async fn check_ready(&self) -> Result<(), String> {
        if self.is_draining() {
            return Err("draining".to_owned());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.schema.check(&inner.db))
            .await
            .map_err(|e| format!("readiness check did not finish: {e}"))?
            .map_err(|e| e.to_string())
    }
}

async fn track_in_flight(State(health): State<Health>, request: Request, next: Next) -> Response {
    struct Guard<'a>(&'a AtomicUsize);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    health.inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = Guard(&health.inner.in_flight);
    next.run(request).await
}

async fn healthz(State(health): State<Health>) -> Response {
    if health.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response()
    } else {
        (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
    }
}

async fn readyz(State(health): State<Health>) -> Response {
    match health.check_ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Err(reason) => {
            tracing::debug!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "reason": reason})),
            )
                .into_response()
        }
    }
}

async fn version(State(health): State<Health>) -> Json<BuildInfo> {
    Json(health.inner.build.clone())
}
