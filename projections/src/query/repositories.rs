//! The repositories connected without the App, from the `repository_connections` read model:
//! newest connected first, and one by id. No secret is in the read model to answer.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::paging::{Page, PageRequest};
use super::{one_of, QueryError};

/// The statuses of a repository connection in the read model.
pub const CONNECTION_STATUSES: &[&str] = &[
    "pending",
    "active",
    "failed",
    "disconnecting",
    "delete_failed",
    "disconnected",
];
pub const PROVIDERS: &[&str] = &["github", "gitlab"];

/// One repository connected through a webhook hooklog created.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ConnectionView {
    pub connection_id: Uuid,
    /// github or gitlab.
    pub provider: String,
    /// `OWNER/NAME` (GitHub), a project path or id (GitLab).
    pub repository: String,
    pub branch: String,
    /// pending, active, failed, disconnecting, delete_failed or disconnected.
    pub status: String,
    /// Where the provider posts this connection's deliveries.
    pub hook_url: String,
    /// The id (never the value) of the webhook's secret, as each stored delivery names it.
    pub secret_id: String,
    /// The provider's id of the webhook, once it exists.
    pub hook_id: Option<i64>,
    /// The provider's id of the repository.
    pub repository_id: Option<i64>,
    /// The webhook was there already (for this URL) and was taken over.
    pub adopted: bool,
    /// Creation attempts made.
    pub attempt: i32,
    pub delete_attempts: i32,
    /// Why the last creation or deletion failed.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub connected_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disconnected_at: Option<OffsetDateTime>,
    /// HOOKLOG_EVENTS sequence of its RepositoryConnected (the cursor's key).
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Default, Clone)]
pub struct ConnectionFilter {
    /// One of [`CONNECTION_STATUSES`].
    pub status: Option<String>,
    /// One of [`PROVIDERS`].
    pub provider: Option<String>,
}

/// Connections, newest connected first (the cursor is the position of the last item).
pub async fn connections(
    pool: &PgPool,
    filter: &ConnectionFilter,
    page: &PageRequest,
) -> Result<Page<ConnectionView>, QueryError> {
    one_of("status", &filter.status, CONNECTION_STATUSES)?;
    one_of("provider", &filter.provider, PROVIDERS)?;
    let (before, limit) = page.bounds_descending()?;
    let rows = sqlx::query_as::<_, ConnectionView>(
        "SELECT * FROM repository_connections WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::text IS NULL OR provider = $2) AND position < $3 \
         ORDER BY position DESC LIMIT $4",
    )
    .bind(&filter.status)
    .bind(&filter.provider)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |c| c.position))
}

/// One connection by id.
pub async fn connection(pool: &PgPool, id: Uuid) -> Result<Option<ConnectionView>, QueryError> {
    Ok(sqlx::query_as::<_, ConnectionView>(
        "SELECT * FROM repository_connections WHERE connection_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

pub const INCIDENT_STATUSES: &[&str] = &["open", "resolved"];
pub const PULL_REQUEST_STATES: &[&str] = &["open", "closed", "merged"];

/// A failing streak of a CI workflow on a connection's branch.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct IncidentView {
    pub incident_id: Uuid,
    pub connection_id: Uuid,
    pub provider: String,
    pub repository: String,
    pub branch: String,
    pub workflow_id: i64,
    /// The workflow's name (may be empty).
    pub workflow: String,
    /// open or resolved.
    pub status: String,
    /// The last failing run's conclusion: failure, timed_out or startup_failure.
    pub conclusion: String,
    /// Runs that failed in the streak.
    pub failures: i32,
    /// The run that opened it.
    pub run_id: i64,
    pub run_url: String,
    pub head_sha: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub failed_at: OffsetDateTime,
    /// The last run that failed.
    pub last_run_id: i64,
    pub last_run_url: String,
    pub last_head_sha: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_failed_at: OffsetDateTime,
    /// The run whose success resolved it.
    pub resolved_by_run_id: Option<i64>,
    pub resolved_by_run_url: Option<String>,
    pub resolved_head_sha: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// HOOKLOG_EVENTS sequence of its IncidentOpened (the cursor's key).
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    /// One of [`INCIDENT_STATUSES`].
    pub status: Option<String>,
    pub connection: Option<Uuid>,
}

/// Incidents, newest opened first.
pub async fn incidents(
    pool: &PgPool,
    filter: &IncidentFilter,
    page: &PageRequest,
) -> Result<Page<IncidentView>, QueryError> {
    one_of("status", &filter.status, INCIDENT_STATUSES)?;
    let (before, limit) = page.bounds_descending()?;
    let rows = sqlx::query_as::<_, IncidentView>(
        "SELECT * FROM incidents WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR connection_id = $2) AND position < $3 \
         ORDER BY position DESC LIMIT $4",
    )
    .bind(&filter.status)
    .bind(filter.connection)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |i| i.position))
}

pub async fn incident(pool: &PgPool, id: Uuid) -> Result<Option<IncidentView>, QueryError> {
    Ok(
        sqlx::query_as::<_, IncidentView>("SELECT * FROM incidents WHERE incident_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A pull request of a connection's repository, as its latest change left it.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct PullRequestView {
    pub connection_id: Uuid,
    pub repository: String,
    pub number: i64,
    pub title: String,
    /// open, closed or merged.
    pub state: String,
    /// The latest change's action (`opened`, `closed`, `synchronize`, …).
    pub action: String,
    pub head_branch: String,
    pub base_branch: String,
    pub head_sha: String,
    pub url: String,
    /// When the provider made the latest change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: OffsetDateTime,
    /// HOOKLOG_EVENTS sequence of the latest change (the cursor's key).
    pub position: i64,
}

#[derive(Debug, Default, Clone)]
pub struct PullRequestFilter {
    /// One of [`PULL_REQUEST_STATES`].
    pub state: Option<String>,
    pub connection: Option<Uuid>,
}

/// Pull requests, latest changed first.
pub async fn pull_requests(
    pool: &PgPool,
    filter: &PullRequestFilter,
    page: &PageRequest,
) -> Result<Page<PullRequestView>, QueryError> {
    one_of("state", &filter.state, PULL_REQUEST_STATES)?;
    let (before, limit) = page.bounds_descending()?;
    let rows = sqlx::query_as::<_, PullRequestView>(
        "SELECT connection_id, repository, number, title, state, action, head_branch, \
         base_branch, head_sha, url, updated_at, recorded_at, position FROM pull_requests \
         WHERE ($1::text IS NULL OR state = $1) AND ($2::uuid IS NULL OR connection_id = $2) \
         AND position < $3 ORDER BY position DESC LIMIT $4",
    )
    .bind(&filter.state)
    .bind(filter.connection)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |p| p.position))
}

/// A connection's webhook as the `repositories` role last read it from the provider.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct WebhookHealthView {
    pub connection_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: OffsetDateTime,
    /// Whether the provider's delivery log was read (GitHub's is; GitLab's is not yet).
    pub log_read: bool,
    /// Attempts in the log's newest page (up to 100), and how many of them failed.
    pub attempts: i32,
    pub failures: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_delivery_at: Option<OffsetDateTime>,
    /// What hooklog answered the last attempt (0: nothing answered).
    pub last_status_code: Option<i32>,
    pub last_status: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure_at: Option<OffsetDateTime>,
    /// Why the provider could not be read at the last check.
    pub error: Option<String>,
    /// The repository's webhooks posting under hooklog's path for no live connection.
    #[schema(value_type = Vec<Object>)]
    pub orphan_hooks: sqlx::types::Json<serde_json::Value>,
}

/// A connection's webhook health; None until first checked.
pub async fn webhook_health(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<WebhookHealthView>, QueryError> {
    Ok(sqlx::query_as::<_, WebhookHealthView>(
        "SELECT connection_id, checked_at, log_read, attempts, failures, last_delivery_at, \
         last_status_code, last_status, last_failure_at, error, orphan_hooks \
         FROM webhook_health WHERE connection_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}
