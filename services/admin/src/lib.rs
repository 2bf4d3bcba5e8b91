//! hooklog's admin listener. Today it serves `/healthz` (the process is up) and `/readyz` (NATS
//! and PostgreSQL are reachable); the token-protected admin API under `/v1/admin` joins it here.
//! There is no `/v1/admin` route yet, so nothing on this listener reads or changes data.
#![forbid(unsafe_code)]

use std::time::Duration;

use async_nats::connection::State as NatsState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Cheap handles to what readiness checks. A dependency the process does not use is `None` and
/// is not checked.
#[derive(Clone, Default)]
pub struct AdminState {
    pub nats: Option<async_nats::Client>,
    pub db: Option<PgPool>,
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<&'static str>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, Json<Readiness>) {
    let nats = state
        .nats
        .as_ref()
        .map(|client| match client.connection_state() {
            NatsState::Connected => "ok",
            _ => "unreachable",
        });
    let postgres = match &state.db {
        None => None,
        Some(pool) => {
            let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
            Some(match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
                Ok(Ok(_)) => "ok",
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "readiness: PostgreSQL check failed");
                    "unreachable"
                }
                Err(_) => {
                    tracing::warn!("readiness: PostgreSQL check timed out");
                    "unreachable"
                }
            })
        }
    };
    let ready = nats.is_none_or(|s| s == "ok") && postgres.is_none_or(|s| s == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            nats,
            postgres,
        }),
    )
}

/// Serves the admin listener until `shutdown` fires, then finishes in-flight requests.
pub async fn run(
    state: AdminState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "admin listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
