//! `GET /github/setup`: where GitHub sends an admin back after installing the App (its "Setup
//! URL"), with `installation_id`, `setup_action` and the `state` the install link carried. A
//! browser navigation, so no bearer token: the `state` is the credential. It is checked first
//! (issued here, not expired, not used; taken once, atomically), and only then is the
//! installation verified with GitHub as the App (`GET /app/installations/{id}`) and connected,
//! as the admin who asked for the link. The answer is a redirect to the dashboard, or a short
//! page that says what went wrong.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::{usecases, ErrorClass};
use serde::Deserialize;

use crate::routes::connect::state_digest;
use crate::state::AdminState;

#[derive(Debug, Deserialize)]
pub struct Setup {
    installation_id: Option<String>,
    setup_action: Option<String>,
    state: Option<String>,
}

pub async fn setup(State(state): State<AdminState>, Query(q): Query<Setup>) -> Response {
    let Some(secret) = q.state.filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This link carries no state. Start again with Connect GitHub on the dashboard.",
        );
    };
    let taken: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
        "UPDATE github_setup_states SET used_at = now() WHERE state_sha256 = $1 \
         AND used_at IS NULL AND expires_at > now() RETURNING issued_by",
    )
    .bind(state_digest(&secret))
    .fetch_optional(&state.db)
    .await;
    let issued_by = match taken {
        Ok(Some(name)) => name,
        Ok(None) => {
            return page(
                StatusCode::BAD_REQUEST,
                "This setup link was not issued by this hooklog, was already used, or has \
                 expired. Start again with Connect GitHub on the dashboard.",
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot check a GitHub setup state");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "hooklog's database is unreachable right now; try again.",
            );
        }
    };
    if q.setup_action.as_deref() == Some("request") {
        return page(
            StatusCode::OK,
            "GitHub is waiting for an organization owner to approve the installation. Once \
             approved, GitHub's installation webhook connects it.",
        );
    }
    let Some(installation) = q.installation_id.and_then(|id| id.parse::<u64>().ok()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "GitHub sent no installation id (installation_id).",
        );
    };
    let Some(client) = state.github.clone() else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "hooklog cannot check the installation: set HOOKLOG_GITHUB_APP_ID and \
             HOOKLOG_GITHUB_APP_PRIVATE_KEY (or HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE).",
        );
    };
    let found = match client.installation(installation).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return page(
                StatusCode::BAD_REQUEST,
                &format!("GitHub does not know installation {installation} of this App."),
            )
        }
        Err(err) => {
            tracing::warn!(installation, error = %err, "cannot verify a GitHub installation");
            return page(
                StatusCode::BAD_GATEWAY,
                &format!("GitHub could not confirm installation {installation}: {err}"),
            );
        }
    };
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let meta = CommandMetadata::from_operator(&issued_by, &correlation_id);
    match usecases::connect(&state.bus, installation, Some(found.account), None, &meta).await {
        Ok(instance) => {
            // The dashboard lists instances as soon as it loads: wait for the read model to
            // show this one first (the page's live feed starts after its event).
            let shown = state
                .shown(
                    ConnectorInstance::TYPE,
                    instance.to_string(),
                    &correlation_id,
                )
                .await;
            if !shown {
                tracing::warn!(installation, "the instances read model did not show the new installation in time; the dashboard may need a reload");
            }
        }
        // Connected before (by GitHub's webhook, say): the dashboard shows it either way.
        Err(err) if err.class == ErrorClass::Refused => {
            tracing::info!(installation, reason = %err.message, "installation already known")
        }
        Err(err) => {
            tracing::error!(installation, error = %err.message, "cannot connect an installation");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "hooklog could not record the installation right now; try again.",
            );
        }
    }
    tracing::info!(installation, by = %issued_by, "installation connected from the dashboard");
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/#instances"));
    response
}

/// A one-paragraph page, its text escaped, with a link back to the dashboard.
fn page(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hooklog: \
         Connect GitHub</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" \
         href=\"/dashboard/app.css\"></head><body><main><h1>Connect GitHub</h1><p \
         id=\"setup-message\">{escaped}</p><p><a href=\"/#instances\">Back to the \
         dashboard</a></p></main></body></html>"
    );
    let mut response = (status, body).into_response();
    super::secure(&mut response, "text/html; charset=utf-8");
    response
}
