//! The rows of the `connector` projection, and which of `instances`, `targets` or
//! `decisions` applies an event to them. Every value comes from the event or its message
//! (timestamps are the events' own `at`), never from the clock.

use std::collections::BTreeMap;

use hooklog_domain::connector_target::PathFilters;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Envelope, Event, Rows};
use crate::projector::Applied;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepositoryEntry {
    pub id: u64,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceRow {
    pub instance_id: String,
    pub installation_id: i64,
    pub account: Option<String>,
    pub status: String,
    pub repository_selection: Option<String>,
    pub repositories: Vec<RepositoryEntry>,
    pub permissions: BTreeMap<String, String>,
    pub auto_track: bool,
    pub last_ping_at: Option<String>,
    pub connected_at: Option<String>,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetRow {
    pub target_id: String,
    /// The App instance and installation it belongs to; `None` for a repository connection's.
    pub instance_id: Option<String>,
    pub installation_id: Option<i64>,
    /// The repository connection it belongs to; `None` for a target of the App.
    pub connection_id: Option<String>,
    pub repository_id: i64,
    pub repository: String,
    pub branch: String,
    pub auto_sync: bool,
    pub path_filters: PathFilters,
    pub source: Option<String>,
    pub status: String,
    pub sync_state: String,
    pub disabled_reason: Option<String>,
    pub removed_reason: Option<String>,
    pub last_push_sha: Option<String>,
    pub last_requested_sha: Option<String>,
    pub last_synced_sha: Option<String>,
    pub queued_sha: Option<String>,
    pub last_sync_id: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_counts: Option<Counts>,
    pub last_error: Option<String>,
    pub tracked_at: String,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FailureEntry {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SyncRunRow {
    pub sync_id: String,
    pub target_id: String,
    /// `None` for a sync of a repository connection's target.
    pub installation_id: Option<i64>,
    pub repository: String,
    pub branch: String,
    pub head_sha: String,
    pub delivery_id: Option<String>,
    pub reason: String,
    pub forced: bool,
    pub status: String,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failures: Vec<FailureEntry>,
    pub error: Option<String>,
    pub retryable: Option<bool>,
    pub requested_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EffectRow {
    pub position: i64,
    pub delivery_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

/// The snake_case name serde gives a unit enum variant (`SyncReason::Push` → `push`).
pub(super) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

/// A count from an event as an `integer` column holds it (capped at `i32::MAX`).
pub(super) fn count(n: u32) -> i32 {
    n.min(i32::MAX as u32) as i32
}

pub(super) fn millis_between(from: &str, to: &str) -> Option<i64> {
    let from = OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let to = OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((to - from).whole_milliseconds() as i64)
}

pub(super) fn apply(
    rows: &mut Rows,
    envelope: &Envelope,
    applied: &mut Applied,
) -> Result<(), String> {
    match &envelope.event {
        // A decision about a delivery is not an effect of it: it is its outcome.
        Event::Delivery(event) => {
            super::decisions::apply(rows, event);
            Ok(())
        }
        Event::GithubDelivery(event) => super::github::apply(rows, envelope, event),
        Event::Connection(event) => super::repositories::apply(rows, envelope, event),
        Event::Instance(event) => {
            record_effect(rows, envelope, super::INSTANCE);
            super::instances::apply(rows, envelope, event)
        }
        Event::Target(event) => {
            record_effect(rows, envelope, super::TARGET);
            super::targets::apply(rows, envelope, event, applied)
        }
    }
}

/// Which domain event a delivery caused, for `delivery_effects`.
fn record_effect(rows: &mut Rows, envelope: &Envelope, aggregate_type: &str) {
    if let Some(delivery_id) = &envelope.delivery_id {
        rows.effects.push(EffectRow {
            position: envelope.position,
            delivery_id: delivery_id.clone(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: envelope.aggregate_id.clone(),
            sequence: envelope.sequence,
            event_type: envelope.event_type.clone(),
        });
    }
}
