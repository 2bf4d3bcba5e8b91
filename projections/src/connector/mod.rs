//! The `connector` projection: instances, targets, sync runs, delivery effects, the
//! worker's decisions (delivery outcomes, dead letters) and the GitHub reconciler's findings
//! (`github_deliveries`) and the repositories connected without the App
//! (`repository_connections`) from `HOOKLOG_EVENTS`. A batch loads the rows its messages touch in one query per table, applies
//! every event in memory (`rows`), then writes each changed row once.

mod decisions;
mod github;
mod instances;
mod repositories;
mod rows;
pub(crate) mod store;
mod targets;

use std::collections::BTreeMap;

use hooklog_domain::connector_instance::InstanceEvent;
use hooklog_domain::connector_target::TargetEvent;
use hooklog_domain::delivery::DeliveryEvent;
use hooklog_domain::github_delivery::GithubDeliveryEvent;
use hooklog_domain::metadata::keys;
use hooklog_domain::repository_connection::ConnectionEvent;
use hooklog_infra::streams::{event_headers as h, EVENTS_STREAM};
use sqlx::PgConnection;

use crate::projector::{Applied, ProjectorError};
use crate::StreamMessage;

pub(crate) use rows::{EffectRow, InstanceRow, SyncRunRow, TargetRow};
pub(crate) use store::Cache;

const INSTANCE: &str = "ConnectorInstance";
const TARGET: &str = "ConnectorTarget";
const DELIVERY: &str = "Delivery";
const GITHUB_DELIVERY: &str = "GithubDelivery";
const CONNECTION: &str = "RepositoryConnection";
const EVENT_VERSION: &str = "1";

/// One decoded message of `HOOKLOG_EVENTS`.
pub(crate) struct Envelope {
    pub position: i64,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub delivery_id: Option<String>,
    pub event: Event,
}

pub(crate) enum Event {
    Instance(InstanceEvent),
    Target(TargetEvent),
    Delivery(DeliveryEvent),
    GithubDelivery(GithubDeliveryEvent),
    Connection(ConnectionEvent),
}

fn decode(message: &StreamMessage) -> Result<Envelope, String> {
    let header = |name: &str| {
        message
            .header(name)
            .ok_or_else(|| format!("header {name} is missing"))
    };
    let aggregate_type = header(h::AGGREGATE_TYPE)?;
    let version = header(h::EVENT_VERSION)?;
    if version != EVENT_VERSION {
        return Err(format!(
            "event version {version:?} is not one this hooklog reads ({EVENT_VERSION})"
        ));
    }
    let sequence = header(h::SEQUENCE)?
        .parse::<i64>()
        .map_err(|_| format!("header {} is not a number", h::SEQUENCE))?;
    let event = match aggregate_type {
        INSTANCE => serde_json::from_slice(&message.payload).map(Event::Instance),
        TARGET => serde_json::from_slice(&message.payload).map(Event::Target),
        DELIVERY => serde_json::from_slice(&message.payload).map(Event::Delivery),
        GITHUB_DELIVERY => serde_json::from_slice(&message.payload).map(Event::GithubDelivery),
        CONNECTION => serde_json::from_slice(&message.payload).map(Event::Connection),
        other => return Err(format!("unknown aggregate type {other:?}")),
    }
    .map_err(|err| format!("the {aggregate_type} event does not decode: {err}"))?;
    let delivery_key = format!("{}{}", h::METADATA_PREFIX, keys::DELIVERY_ID);
    Ok(Envelope {
        position: message.sequence as i64,
        aggregate_id: header(h::AGGREGATE_ID)?.to_owned(),
        sequence,
        event_type: header(h::EVENT_TYPE)?.to_owned(),
        delivery_id: message.header(&delivery_key).map(str::to_owned),
        event,
    })
}

/// The rows a batch works on, keyed by their primary keys (ordered, so writes are too).
#[derive(Default)]
pub(crate) struct Rows {
    pub instances: BTreeMap<String, InstanceRow>,
    pub targets: BTreeMap<String, TargetRow>,
    pub sync_runs: BTreeMap<String, SyncRunRow>,
    pub effects: Vec<EffectRow>,
    pub outcomes: BTreeMap<String, decisions::OutcomeRow>,
    pub dead_letters: BTreeMap<i64, decisions::DeadLetterRow>,
    /// Decisions a redrive reopened: their rows are deleted (after the batch's upserts).
    pub outcomes_removed: Vec<String>,
    pub dead_letters_removed: Vec<i64>,
    /// By GUID.
    pub github_deliveries: BTreeMap<String, github::GithubDeliveryRow>,
    /// By connection id.
    pub connections: BTreeMap<String, repositories::ConnectionRow>,
    /// By incident id.
    pub incidents: BTreeMap<String, repositories::IncidentRow>,
    /// By `<connection id>#<number>`.
    pub pull_requests: BTreeMap<String, repositories::PullRequestRow>,
}

/// Applies a batch and returns the rows it wrote, for the cache once the batch is committed.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    batch: &[StreamMessage],
    cache: &Cache,
) -> Result<(Applied, Rows), ProjectorError> {
    let envelopes = batch
        .iter()
        .map(|message| {
            decode(message).map_err(|reason| ProjectorError::Unprojectable {
                stream: EVENTS_STREAM,
                sequence: message.sequence,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = store::load(conn, &envelopes, cache).await?;
    let mut applied = Applied::default();
    for envelope in &envelopes {
        rows::apply(&mut rows, envelope, &mut applied).map_err(|reason| {
            ProjectorError::Unprojectable {
                stream: EVENTS_STREAM,
                sequence: envelope.position as u64,
                reason,
            }
        })?;
    }
    store::save(conn, &rows).await?;
    rows.effects.clear();
    Ok((applied, rows))
}
