//! The queries the admin API serves: lists with filters and cursor paging, single reads, an
//! aggregate's stored history, the syncer's copy of each branch (`files`), the GitHub
//! reconciler's findings (`github`), and `wait_for`, which lets a client read its own writes.
//!
//! Cursors are the ordering key of the last item returned (a stream sequence; a path for files),
//! so a page never skips or repeats rows that arrive while a client pages.

mod files;
mod github;
mod paging;
mod repositories;
mod views;

use std::time::Duration;

use hooklog_domain::clock::Timestamp;
use hooklog_domain::ids::{InstanceId, SyncId, TargetId};
use sqlx::PgPool;

pub use files::{
    discovery, file, files, ComponentEntry, Discovery, FileFilter, ListedPlugin, MarketplaceEntry,
    PluginEntry, SyncedFile, SyncedFileView, FILE_KINDS,
};
pub use github::{
    github_deliveries, github_delivery, open_github_deliveries, GithubDeliveryFilter,
    GithubDeliveryView, GITHUB_DELIVERY_OPEN, GITHUB_DELIVERY_STATUSES,
};
pub use paging::{Page, PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
pub use repositories::{
    connection, connections, incident, incidents, pull_requests, ConnectionFilter, ConnectionView,
    IncidentFilter, IncidentView, PullRequestFilter, PullRequestView, CONNECTION_STATUSES,
    INCIDENT_STATUSES, PROVIDERS, PULL_REQUEST_STATES,
};
pub use repositories::{webhook_health, WebhookHealthView};
pub use views::{
    CausedEvent, DeadLetterView, DeliveryDetail, DeliveryView, InstanceView, StoredEventView,
    SyncRunView, TargetView,
};

/// The checkpoint of the projection over `HOOKLOG_EVENTS`.
pub const CONNECTOR: &str = "connector";
/// The checkpoint of the projection over `GITHUB_DELIVERIES`.
pub const DELIVERIES: &str = "deliveries";

pub const INSTANCE_STATUSES: &[&str] = &[
    "pending",
    "connected",
    "suspended",
    "deleted",
    "disconnected",
];
pub const TARGET_STATUSES: &[&str] =
    &["idle", "queued", "running", "failed", "disabled", "removed"];
pub const SYNC_STATUSES: &[&str] = &["queued", "running", "completed", "partial", "failed"];
pub const OUTCOMES: &[&str] = &["accepted", "ignored", "processed", "failed", "duplicate"];
pub const AGGREGATE_TYPES: &[&str] = &[
    "ConnectorInstance",
    "ConnectorTarget",
    "GithubDelivery",
    "RepositoryConnection",
];

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The cursor is not one this API handed out.
    #[error("{0}")]
    BadCursor(String),
    /// A filter or the page size is out of range.
    #[error("{0}")]
    BadFilter(String),
    #[error("the read models cannot be read: {0}")]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Default, Clone)]
pub struct InstanceFilter {
    pub status: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct TargetFilter {
    /// An instance id (`github-installation-<n>`).
    pub instance: Option<String>,
    /// A repository connection's id: its target.
    pub connection: Option<uuid::Uuid>,
    pub status: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct SyncRunFilter {
    pub target: Option<TargetId>,
    pub status: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub installation: Option<u64>,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
}

/// Refuses an `event` filter that is not a GitHub event name.
fn event_name(event: &Option<String>) -> Result<(), QueryError> {
    match event {
        Some(event)
            if event.is_empty() || !event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            Err(QueryError::BadFilter(format!(
                "event {event:?} is not a GitHub event name (lowercase letters and `_`)"
            )))
        }
        _ => Ok(()),
    }
}

/// An installation id filter (`what` names the parameter) as PostgreSQL's `bigint`.
fn installation_id(id: Option<u64>, what: &str) -> Result<Option<i64>, QueryError> {
    id.map(|i| {
        i64::try_from(i).map_err(|_| QueryError::BadFilter(format!("{what} is out of range")))
    })
    .transpose()
}

fn one_of(what: &str, value: &Option<String>, allowed: &[&str]) -> Result<(), QueryError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(QueryError::BadFilter(format!(
            "{what} {v:?} is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

pub async fn instances(
    pool: &PgPool,
    filter: &InstanceFilter,
    page: &PageRequest,
) -> Result<Page<InstanceView>, QueryError> {
    one_of("status", &filter.status, INSTANCE_STATUSES)?;
    let (after, limit) = page.bounds()?;
    let rows = sqlx::query_as::<_, InstanceView>(&format!(
        "SELECT * FROM ({}) i WHERE ($1::text IS NULL OR i.status = $1) AND i.position > $2 \
         ORDER BY i.position LIMIT $3",
        views::INSTANCE_SELECT
    ))
    .bind(&filter.status)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |i| i.position))
}

pub async fn instance(pool: &PgPool, id: &InstanceId) -> Result<Option<InstanceView>, QueryError> {
    Ok(sqlx::query_as::<_, InstanceView>(&format!(
        "SELECT * FROM ({}) i WHERE i.instance_id = $1",
        views::INSTANCE_SELECT
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?)
}

pub async fn targets(
    pool: &PgPool,
    filter: &TargetFilter,
    page: &PageRequest,
) -> Result<Page<TargetView>, QueryError> {
    one_of("status", &filter.status, TARGET_STATUSES)?;
    if let Some(instance) = &filter.instance {
        InstanceId::parse(instance)
            .map_err(|err| QueryError::BadFilter(format!("instance: {err}")))?;
    }
    let (after, limit) = page.bounds()?;
    let rows = sqlx::query_as::<_, TargetView>(
        "SELECT * FROM targets WHERE ($1::text IS NULL OR instance_id = $1) \
         AND ($2::text IS NULL OR status = $2) AND ($5::uuid IS NULL OR connection_id = $5) \
         AND position > $3 ORDER BY position LIMIT $4",
    )
    .bind(&filter.instance)
    .bind(&filter.status)
    .bind(after)
    .bind(limit + 1)
    .bind(filter.connection)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |t| t.position))
}

pub async fn target(pool: &PgPool, id: TargetId) -> Result<Option<TargetView>, QueryError> {
    Ok(
        sqlx::query_as::<_, TargetView>("SELECT * FROM targets WHERE target_id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn sync_runs(
    pool: &PgPool,
    filter: &SyncRunFilter,
    page: &PageRequest,
) -> Result<Page<SyncRunView>, QueryError> {
    one_of("status", &filter.status, SYNC_STATUSES)?;
    let (after, limit) = page.bounds()?;
    let rows = sqlx::query_as::<_, SyncRunView>(
        "SELECT * FROM sync_runs WHERE ($1::uuid IS NULL OR target_id = $1) \
         AND ($2::text IS NULL OR status = $2) AND position > $3 ORDER BY position LIMIT $4",
    )
    .bind(filter.target.map(|t| t.0))
    .bind(&filter.status)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |s| s.position))
}

pub async fn sync_run(pool: &PgPool, id: SyncId) -> Result<Option<SyncRunView>, QueryError> {
    Ok(
        sqlx::query_as::<_, SyncRunView>("SELECT * FROM sync_runs WHERE sync_id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn deliveries(
    pool: &PgPool,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> Result<Page<DeliveryView>, QueryError> {
    one_of("outcome", &filter.outcome, OUTCOMES)?;
    event_name(&filter.event)?;
    let (after, limit) = page.bounds()?;
    let installation = installation_id(filter.installation, "installation")?;
    let rows = sqlx::query_as::<_, DeliveryView>(&format!(
        "SELECT * FROM ({}) d WHERE ($1::text IS NULL OR event = $1) \
         AND ($2::text IS NULL OR outcome = $2) AND ($3::bigint IS NULL OR installation_id = $3) \
         AND ($4::timestamptz IS NULL OR received_at >= $4::timestamptz) \
         AND ($5::timestamptz IS NULL OR received_at < $5::timestamptz) \
         AND stream_sequence > $6 ORDER BY stream_sequence LIMIT $7",
        views::DELIVERY_SELECT
    ))
    .bind(&filter.event)
    .bind(&filter.outcome)
    .bind(installation)
    .bind(filter.since.map(|t| t.to_string()))
    .bind(filter.until.map(|t| t.to_string()))
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |d| d.stream_sequence))
}

/// The first message that carried `delivery_id`, what it caused, and the sequences of later
/// copies (redeliveries).
pub async fn delivery(
    pool: &PgPool,
    delivery_id: &str,
) -> Result<Option<DeliveryDetail>, QueryError> {
    let copies = sqlx::query_as::<_, DeliveryView>(&format!(
        "SELECT * FROM ({}) d WHERE delivery_id = $1 ORDER BY stream_sequence",
        views::DELIVERY_SELECT
    ))
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    let mut copies = copies.into_iter();
    let Some(delivery) = copies.next() else {
        return Ok(None);
    };
    let caused = sqlx::query_as::<_, CausedEvent>(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type \
         FROM delivery_effects WHERE delivery_id = $1 ORDER BY position",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    let sync_runs = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT sync_id FROM sync_runs WHERE delivery_id = $1 ORDER BY position",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(DeliveryDetail {
        delivery,
        redeliveries: copies.map(|c| c.stream_sequence).collect(),
        caused,
        sync_runs,
    }))
}

pub async fn dead_letters(
    pool: &PgPool,
    page: &PageRequest,
) -> Result<Page<DeadLetterView>, QueryError> {
    let (after, limit) = page.bounds()?;
    let rows = sqlx::query_as::<_, DeadLetterView>(
        "SELECT * FROM dead_letters WHERE stream_sequence > $1 ORDER BY stream_sequence LIMIT $2",
    )
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |d| d.stream_sequence))
}

/// The stored events of one aggregate, from the event store itself, by sequence.
pub async fn aggregate_events(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    page: &PageRequest,
) -> Result<Page<StoredEventView>, QueryError> {
    one_of(
        "aggregate type",
        &Some(aggregate_type.to_owned()),
        AGGREGATE_TYPES,
    )?;
    let (after, limit) = page.bounds()?;
    let rows = sqlx::query_as::<_, StoredEventView>(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload::jsonb AS payload, metadata::jsonb AS metadata FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
         ORDER BY sequence LIMIT $4",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |e| e.sequence))
}

/// The position projection `name` has applied (0 before its first batch).
pub async fn position(pool: &PgPool, name: &str) -> Result<u64, QueryError> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0) as u64)
}

/// Waits until projection `name` has applied stream sequence `min_position`; false when
/// `timeout` passes first.
pub async fn wait_for(
    pool: &PgPool,
    name: &str,
    min_position: u64,
    timeout: Duration,
) -> Result<bool, QueryError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if position(pool, name).await? >= min_position {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
