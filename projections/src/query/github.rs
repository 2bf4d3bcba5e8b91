//! What the GitHub reconciler found and did, from the `github_deliveries` read model: the
//! deliveries GitHub attempted that `GITHUB_DELIVERIES` lacked when a pass looked, newest found
//! first, and one by GUID.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::paging::{Page, PageRequest};
use super::{event_name, installation_id, one_of, QueryError};

/// The statuses of a GitHub-side delivery in the read model.
pub const GITHUB_DELIVERY_STATUSES: &[&str] = &["missing", "requested", "arrived", "unrecoverable"];
/// The statuses of a GitHub-side delivery that has not arrived (`missing=true`).
pub const GITHUB_DELIVERY_OPEN: &[&str] = &["missing", "requested", "unrecoverable"];

/// One delivery GitHub attempted that the stream lacked when the reconciler looked.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct GithubDeliveryView {
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// GitHub's id of the attempt first seen (what a redelivery asks for).
    pub github_id: i64,
    /// `X-GitHub-Event`.
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
    /// The repository connection whose webhook's log listed it; null: the App's.
    pub connection_id: Option<uuid::Uuid>,
    /// When GitHub attempted it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub delivered_at: OffsetDateTime,
    /// What GitHub's log said of that attempt (`OK`, `Invalid HTTP Response: 503`, …).
    pub github_status: String,
    /// The status code GitHub got (0 when nothing answered).
    pub github_status_code: i32,
    /// missing, requested, arrived or unrecoverable.
    pub status: String,
    /// Redeliveries asked for so far.
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_requested_at: Option<OffsetDateTime>,
    /// `reconciler` or `operator`.
    pub last_requested_by: Option<String>,
    /// Why GitHub did not take the last request, when it did not.
    pub last_error: Option<String>,
    /// Why it is unrecoverable: past_window, not_arrived or refused.
    pub unrecoverable: Option<String>,
    /// The same, in words.
    pub reason: Option<String>,
    /// Where it arrived on `GITHUB_DELIVERIES`.
    pub stream_sequence: Option<i64>,
    /// When a reconcile pass recorded it missing.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub found_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// HOOKLOG_EVENTS sequence of its DeliveryMissing (the cursor's key).
    pub position: i64,
    /// HOOKLOG_EVENTS sequence of its latest event.
    pub updated_position: i64,
}

#[derive(Debug, Default, Clone)]
pub struct GithubDeliveryFilter {
    /// One of [`GITHUB_DELIVERY_STATUSES`].
    pub status: Option<String>,
    /// `true`: not arrived (missing, requested or unrecoverable); `false`: arrived.
    pub missing: Option<bool>,
    pub event: Option<String>,
    pub installation_id: Option<u64>,
}

/// GitHub-side deliveries the reconciler found missing, newest found first (by position,
/// descending; the cursor is the position of the last item).
pub async fn github_deliveries(
    pool: &PgPool,
    filter: &GithubDeliveryFilter,
    page: &PageRequest,
) -> Result<Page<GithubDeliveryView>, QueryError> {
    one_of("status", &filter.status, GITHUB_DELIVERY_STATUSES)?;
    event_name(&filter.event)?;
    let installation = installation_id(filter.installation_id, "installation_id")?;
    let (before, limit) = page.bounds_descending()?;
    let statuses: Option<Vec<&str>> = filter.missing.map(|missing| match missing {
        true => GITHUB_DELIVERY_OPEN.to_vec(),
        false => vec!["arrived"],
    });
    let rows = sqlx::query_as::<_, GithubDeliveryView>(
        "SELECT * FROM github_deliveries WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::text[] IS NULL OR status = ANY($2)) AND ($3::text IS NULL OR event = $3) \
         AND ($4::bigint IS NULL OR installation_id = $4) AND position < $5 \
         ORDER BY position DESC LIMIT $6",
    )
    .bind(&filter.status)
    .bind(statuses)
    .bind(&filter.event)
    .bind(installation)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |d| d.position))
}

/// One GitHub-side delivery by GUID.
pub async fn github_delivery(
    pool: &PgPool,
    guid: &str,
) -> Result<Option<GithubDeliveryView>, QueryError> {
    Ok(
        sqlx::query_as::<_, GithubDeliveryView>("SELECT * FROM github_deliveries WHERE guid = $1")
            .bind(guid)
            .fetch_optional(pool)
            .await?,
    )
}

/// The GUIDs of the App's log not arrived (missing, requested or unrecoverable), oldest found
/// first. (A repository connection's are asked for by the repositories role.)
pub async fn open_github_deliveries(pool: &PgPool) -> Result<Vec<String>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT guid FROM github_deliveries WHERE status = ANY($1) AND connection_id IS NULL \
         ORDER BY position",
    )
    .bind(GITHUB_DELIVERY_OPEN)
    .fetch_all(pool)
    .await?)
}
