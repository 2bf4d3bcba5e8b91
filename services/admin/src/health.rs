//! `/healthz` (the process is up) and `/readyz` (NATS and PostgreSQL are reachable). Both are
//! open: orchestrators probe them without a token.

use std::time::Duration;

use async_nats::connection::State as NatsState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AdminState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok` or `unreachable`.
    pub nats: &'static str,
    /// `ok` or `unreachable`.
    pub postgres: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// NATS and PostgreSQL are reachable.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unreachable", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AdminState>) -> (StatusCode, Json<Readiness>) {
    let nats = match state.nats.connection_state() {
        NatsState::Connected => "ok",
        _ => "unreachable",
    };
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.db);
    let postgres = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: PostgreSQL check failed");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness: PostgreSQL check timed out");
            "unreachable"
        }
    };
    let ready = nats == "ok" && postgres == "ok";
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
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
