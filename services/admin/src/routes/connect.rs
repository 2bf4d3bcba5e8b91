//! Connect GitHub: the link to the App's install page with a `state` hooklog issued (stored as
//! its SHA-256, with who asked, for one hour, usable once), the setup callback GitHub sends the
//! admin back to (`crate::dashboard::setup`), and the repositories an installation gave the App,
//! for the dashboard's repository picker.

use axum::extract::State;
use axum::{Extension, Json};
use hooklog_domain::ids::InstallationId;
use hooklog_syncer::source::SourceError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::params::instance_id;
use crate::state::AdminState;

/// How long an install link's `state` may be brought back.
pub(crate) const STATE_LIFETIME: time::Duration = time::Duration::hours(1);

/// A link to the App's install page.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallLink {
    /// `<github>/apps/<slug>/installations/new?state=…`: open it in the browser.
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// One repository an installation gave the App.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallationRepositoryView {
    pub id: u64,
    pub full_name: String,
    pub default_branch: String,
    pub private: bool,
}

/// The SHA-256 a `state` is stored as.
pub(crate) fn state_digest(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// A link to install the App, with a new `state` for its setup callback.
#[utoipa::path(post, path = "/v1/admin/github/install", tag = "github",
    responses(
        (status = 200, description = "The link, valid for one hour, once", body = InstallLink),
        (status = 503, description = "HOOKLOG_GITHUB_APP_SLUG is not set", body = ErrorBody),
    ))]
pub async fn install(
    State(state): State<AdminState>,
    Extension(operator): Extension<Operator>,
) -> Result<Json<InstallLink>, ApiError> {
    let page = state
        .install_page
        .clone()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "github_app_slug_not_configured",
            message:
                "Connect GitHub needs the App's slug: set HOOKLOG_GITHUB_APP_SLUG (the name in \
                  https://github.com/apps/<slug>)"
                    .to_owned(),
        })?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = OffsetDateTime::now_utc();
    let expires_at = now + STATE_LIFETIME;
    sqlx::query(
        "INSERT INTO github_setup_states (state_sha256, issued_by, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(state_digest(&secret))
    .bind(&operator.name)
    .bind(now)
    .bind(expires_at)
    .execute(&state.db)
    .await
    .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    Ok(Json(InstallLink {
        url: format!("{page}?state={secret}"),
        expires_at,
    }))
}

/// The repositories the installation gave the App, from GitHub, for choosing what to track.
#[utoipa::path(get, path = "/v1/admin/instances/{id}/repositories", tag = "instances",
    params(("id" = String, Path, description = "`github-installation-<id>`")),
    responses(
        (status = 200, description = "The installation's repositories", body = [InstallationRepositoryView]),
        (status = 404, description = "GitHub does not know the installation", body = ErrorBody),
        (status = 503, description = "The GitHub App is not configured, or GitHub is unreachable", body = ErrorBody),
    ))]
pub async fn repositories(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<InstallationRepositoryView>>, ApiError> {
    let instance = instance_id(&id)?;
    let app = state
        .github_source
        .clone()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "github_app_not_configured",
            message: "listing an installation's repositories needs the GitHub App: set \
                  HOOKLOG_GITHUB_APP_ID and HOOKLOG_GITHUB_APP_PRIVATE_KEY (or \
                  HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE)"
                .to_owned(),
        })?;
    let InstallationId(installation) = instance.0;
    let listed = app
        .installation_repositories(InstallationId(installation))
        .await
        .map_err(|err| match err {
            SourceError::NotFound(_) | SourceError::Auth(_) => ApiError::not_found(
                "installation_not_found",
                format!("GitHub installation {installation} of this App"),
            ),
            other => ApiError::Unavailable(other.to_string()),
        })?;
    Ok(Json(
        listed
            .into_iter()
            .map(|r| InstallationRepositoryView {
                id: r.id,
                full_name: r.full_name,
                default_branch: r.default_branch,
                private: r.private,
            })
            .collect(),
    ))
}
