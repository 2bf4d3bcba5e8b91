//! What the queries return: the read models' rows as the admin API shows them.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Instances with their health (from their targets) and the last delivery that named them.
pub(super) const INSTANCE_SELECT: &str = "\
    SELECT i.*, \
      count(t.target_id) FILTER (WHERE t.status <> 'removed') AS targets, \
      count(t.target_id) FILTER (WHERE t.status = 'failed') AS failed_targets, \
      CASE WHEN i.status IN ('deleted', 'disconnected') THEN 'gone' \
           WHEN i.status IN ('suspended', 'pending') THEN i.status \
           WHEN count(t.target_id) FILTER (WHERE t.status = 'failed') > 0 THEN 'degraded' \
           ELSE 'healthy' END AS health, \
      (SELECT d.delivery_id FROM deliveries d WHERE d.installation_id = i.installation_id \
         ORDER BY d.stream_sequence DESC LIMIT 1) AS last_delivery_id, \
      (SELECT d.received_at FROM deliveries d WHERE d.installation_id = i.installation_id \
         ORDER BY d.stream_sequence DESC LIMIT 1) AS last_delivery_at \
    FROM instances i LEFT JOIN targets t ON t.instance_id = i.instance_id \
    GROUP BY i.instance_id";

/// Deliveries with their outcome: the worker's decision, or `duplicate` for a later copy of a
/// delivery id, or `accepted` while the worker has not decided.
pub(super) const DELIVERY_SELECT: &str = "\
    SELECT d.*, \
      CASE WHEN d.duplicate_of IS NOT NULL THEN 'duplicate' \
           WHEN o.outcome = 'dead_letter' THEN 'failed' \
           WHEN o.outcome IS NOT NULL THEN o.outcome \
           ELSE 'accepted' END AS outcome, \
      CASE WHEN d.duplicate_of IS NULL THEN o.detail END AS outcome_detail, \
      CASE WHEN d.duplicate_of IS NULL THEN o.attempts END AS attempts \
    FROM deliveries d LEFT JOIN delivery_outcomes o ON o.delivery_id = d.delivery_id";

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct InstanceView {
    pub instance_id: String,
    pub installation_id: i64,
    pub account: Option<String>,
    /// pending, connected, suspended, deleted or disconnected.
    pub status: String,
    /// healthy, degraded (a target's last sync failed), suspended, pending or gone.
    pub health: String,
    pub repository_selection: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub repositories: Json<Value>,
    #[schema(value_type = Object)]
    pub permissions: Json<Value>,
    pub auto_track: bool,
    /// Targets not removed.
    pub targets: i64,
    pub failed_targets: i64,
    pub last_delivery_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_delivery_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_ping_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub connected_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// HOOKLOG_EVENTS sequence of the instance's first event.
    pub position: i64,
    /// HOOKLOG_EVENTS sequence of its latest event.
    pub updated_position: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct TargetView {
    pub target_id: Uuid,
    /// The App instance and installation it belongs to; null for a repository connection's.
    pub instance_id: Option<String>,
    pub installation_id: Option<i64>,
    /// The repository connection it belongs to; null for a target of the App.
    pub connection_id: Option<Uuid>,
    pub repository_id: i64,
    pub repository: String,
    pub branch: String,
    pub auto_sync: bool,
    /// {"include": [glob], "exclude": [glob]}
    #[schema(value_type = Object)]
    pub path_filters: Json<Value>,
    /// The git repository files are read from; null: the GitHub App.
    pub source: Option<String>,
    /// idle, queued, running, failed, disabled or removed.
    pub status: String,
    pub sync_state: String,
    pub disabled_reason: Option<String>,
    pub removed_reason: Option<String>,
    pub last_push_sha: Option<String>,
    pub last_requested_sha: Option<String>,
    pub last_synced_sha: Option<String>,
    /// The head waiting for the sync in flight.
    pub queued_sha: Option<String>,
    pub last_sync_id: Option<Uuid>,
    pub last_sync_status: Option<String>,
    /// {"created", "updated", "deleted", "skipped"} of the last finished sync.
    #[schema(value_type = Option<Object>)]
    pub last_counts: Option<Json<Value>>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub tracked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    pub position: i64,
    pub updated_position: i64,
}

/// One sync: the `connector_sync_event` contract.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct SyncRunView {
    pub sync_id: Uuid,
    pub target_id: Uuid,
    /// Null for a sync of a repository connection's target.
    pub installation_id: Option<i64>,
    pub repository: String,
    pub branch: String,
    pub head_sha: String,
    pub delivery_id: Option<String>,
    /// push, manual, retry or reconcile.
    pub reason: String,
    pub forced: bool,
    /// queued, running, completed, partial or failed.
    pub status: String,
    pub created: i64,
    pub updated: i64,
    pub deleted: i64,
    pub skipped: i64,
    /// [{"path", "reason"}]
    #[schema(value_type = Vec<Object>)]
    pub failures: Json<Value>,
    pub error: Option<String>,
    pub retryable: Option<bool>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    /// HOOKLOG_EVENTS sequence of its SyncRequested.
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeliveryView {
    pub stream_sequence: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
    pub repository: Option<String>,
    pub hook_id: Option<String>,
    pub content_type: Option<String>,
    pub body_sha256: String,
    pub size: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// The earlier message with the same delivery id, for a duplicate.
    pub duplicate_of: Option<i64>,
    /// accepted, ignored, processed, failed or duplicate.
    pub outcome: String,
    /// Why it was ignored or failed.
    pub outcome_detail: Option<String>,
    pub attempts: Option<i32>,
}

/// A domain event a delivery caused.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct CausedEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// Stream sequences of later copies of the same delivery id.
    pub redeliveries: Vec<i64>,
    pub caused: Vec<CausedEvent>,
    pub sync_runs: Vec<Uuid>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeadLetterView {
    pub stream_sequence: i64,
    pub delivery_id: String,
    pub event: String,
    pub reason: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct StoredEventView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: Json<Value>,
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
}
