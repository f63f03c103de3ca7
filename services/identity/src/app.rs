//! identity's HTTP routes: the JWKS and the token endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use service_runtime::database::{DatabaseUrl, rusqlite};
use service_runtime::token::{Claims, Signer};

use crate::clients::ClientRegistry;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub signer: Arc<Signer>,
    pub clients: Arc<ClientRegistry>,
    pub token_ttl_secs: i64,
    pub issuer: Arc<str>,
    pub db: DatabaseUrl,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/token", post(token))
        .with_state(state)
}

async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signer.jwks()),
    )
        .into_response()
}

/// `POST /token` body: form-encoded (OAuth2 client credentials) or JSON.
#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    grant_type: Option<String>,
    client_id: String,
    client_secret: String,
}

impl Drop for TokenRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.client_secret);
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parsed: Result<TokenRequest, String> = if content_type.starts_with("application/json") {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string())
    } else {
        Err("send application/x-www-form-urlencoded or application/json".to_owned())
    };
    let request = match parsed {
        Ok(r) => r,
        Err(reason) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("expected client_id and client_secret: {reason}"),
            );
        }
    };
    if let Some(grant) = request
        .grant_type
        .as_deref()
        .filter(|g| *g != "client_credentials")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type `{grant}` is not supported; use client_credentials"),
        );
    }
    let Some(client) = state
        .clients
        .authenticate(&request.client_id, &request.client_secret)
    else {
        tracing::warn!(client_id = %request.client_id, "token refused: unknown client or wrong secret");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let now = unix_now();
    let claims = Claims {
        iss: state.issuer.to_string(),
        sub: client.id.clone(),
        class: client.class,
        iat: now,
        exp: now + state.token_ttl_secs,
        jti: new_jti(),
    };
    if let Err(reason) = record_issue(&state.db, &claims).await {
        tracing::error!(%reason, "cannot record the issued token");
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "token store unavailable; is the schema migrated (identity migrate)?",
        );
    }
    let access_token = state.signer.sign(&claims);
    tracing::info!(client_id = %claims.sub, class = %claims.class, jti = %claims.jti, "token issued");
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.token_ttl_secs,
            "class": claims.class,
        })),
    )
        .into_response()
}

async fn record_issue(db: &DatabaseUrl, claims: &Claims) -> Result<(), String> {
    let db = db.clone();
    let (jti, sub, class, iat, exp) = (
        claims.jti.clone(),
        claims.sub.clone(),
        claims.class.as_str(),
        claims.iat,
        claims.exp,
    );
    tokio::task::spawn_blocking(move || {
        let conn = db.open_existing().map_err(|e| e.to_string())?;
        conn.execute(
            "INSERT INTO issued_tokens (jti, client_id, class, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![jti, sub, class, iat, exp],
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
