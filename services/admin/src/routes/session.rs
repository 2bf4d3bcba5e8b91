//! `GET /v1/admin/session`: who the presented token is and what it may do, so a client (the
//! dashboard) can tell a wrong token at login and show write controls only to a write token.

use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Access, Operator};

/// The token's holder and its access.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The token's name: commands sent with it are stored with the actor `operator:<name>`.
    pub name: String,
    /// `read` or `write`.
    pub access: String,
}

#[utoipa::path(get, path = "/v1/admin/session", tag = "session",
    responses(
        (status = 200, description = "The token's holder and access", body = SessionView),
        (status = 401, description = "No token, or a wrong one", body = crate::error::ErrorBody),
    ))]
pub async fn get(Extension(operator): Extension<Operator>) -> Json<SessionView> {
    Json(SessionView {
        name: operator.name,
        access: match operator.access {
            Access::Read => "read",
            Access::Write => "write",
        }
        .to_owned(),
    })
}
