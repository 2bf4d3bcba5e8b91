//! The record itself: the event history of one aggregate (from the event store, with payload and
//! metadata) and the dead letters the worker could not process.

use axum::extract::State;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::connector_target::ConnectorTarget;
use hooklog_domain::delivery::{Delivery, DeliveryKey};
use hooklog_domain::github_delivery::GithubDelivery;
use hooklog_domain::repository_connection::RepositoryConnection;
use hooklog_projections::query::{self, DeadLetterView, Page, StoredEventView};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::params::{self, connection_id, instance_id, target_id};
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the `connector` read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

/// Lists dead letters: deliveries the worker could not process (they stay on the stream).
#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "events", params(PageParams),
    responses(
        (status = 200, description = "A page of dead letters", body = Page<DeadLetterView>),
        (status = 400, description = "Bad cursor or parameter", body = ErrorBody),
    ))]
pub async fn dead_letters(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<DeadLetterView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let page = query::dead_letters(&state.db, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// The events of one aggregate, in sequence order, with payload and metadata.
#[utoipa::path(get, path = "/v1/admin/aggregates/{type}/{id}/events", tag = "events",
    params(
        ("type" = String, Path, description = "`ConnectorInstance`, `ConnectorTarget` or `GithubDelivery`"),
        ("id" = String, Path, description = "The aggregate id"),
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of events", body = Page<StoredEventView>),
        (status = 400, description = "Unknown aggregate type, bad id or cursor", body = ErrorBody),
        (status = 404, description = "No event for this aggregate", body = ErrorBody),
    ))]
pub async fn aggregate_events(
    State(state): State<AdminState>,
    ApiPath((aggregate_type, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<StoredEventView>>, ApiError> {
    let id = match aggregate_type.as_str() {
        ConnectorInstance::TYPE => instance_id(&id)?.to_string(),
        ConnectorTarget::TYPE => target_id(&id)?.to_string(),
        GithubDelivery::TYPE => github_delivery_id(&id)?,
        RepositoryConnection::TYPE => connection_id(&id)?.to_string(),
        other => {
            return Err(ApiError::bad_request(
                "bad_aggregate_type",
                format!(
                    "{other:?} is not an aggregate type; use {}, {}, {} or {}",
                    ConnectorInstance::TYPE,
                    ConnectorTarget::TYPE,
                    GithubDelivery::TYPE,
                    RepositoryConnection::TYPE
                ),
            ))
        }
    };
    state.reach(query::CONNECTOR, q.min_position).await?;
    let first_page = q.cursor.is_none();
    let page = query::aggregate_events(
        &state.db,
        &aggregate_type,
        &id,
        &params::page(q.cursor, q.limit),
    )
    .await?;
    if first_page && page.items.is_empty() {
        return Err(ApiError::not_found(
            "aggregate_not_found",
            format!("{aggregate_type} {id}"),
        ));
    }
    Ok(Json(page))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StateParams {
    /// The state after the aggregate's events up to this `HOOKLOG_EVENTS` stream sequence.
    pub at_seq: Option<u64>,
    /// The state after the aggregate's events stored on `HOOKLOG_EVENTS` at or before this
    /// RFC 3339 time.
    pub at: Option<String>,
}

/// An aggregate's state as of a point of `HOOKLOG_EVENTS`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AggregateStateView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// How many of its events were folded (its version at that point).
    pub events: u64,
    /// The stream sequence of the last event folded.
    pub stream_sequence: u64,
    /// When that event was stored on the stream (RFC 3339).
    pub stored_at: String,
    /// The aggregate's state, as the domain folds it.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// The state of one aggregate folded from its events on `HOOKLOG_EVENTS` (the record, not a
/// read model): all of them, or those up to `at_seq` or `at`.
#[utoipa::path(get, path = "/v1/admin/aggregates/{type}/{id}/state", tag = "events",
    params(
        ("type" = String, Path, description = "`ConnectorInstance`, `ConnectorTarget`, `Delivery` or `GithubDelivery`"),
        ("id" = String, Path, description = "The aggregate id"),
        StateParams,
    ),
    responses(
        (status = 200, description = "The state at that point", body = AggregateStateView),
        (status = 400, description = "Unknown aggregate type, bad id, both or malformed at_seq and at", body = ErrorBody),
        (status = 404, description = "No event of this aggregate up to that point", body = ErrorBody),
    ))]
pub async fn aggregate_state(
    State(state): State<AdminState>,
    ApiPath((aggregate_type, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<StateParams>,
) -> Result<Json<AggregateStateView>, ApiError> {
    let id = match aggregate_type.as_str() {
        ConnectorInstance::TYPE => instance_id(&id)?.to_string(),
        ConnectorTarget::TYPE => target_id(&id)?.to_string(),
        Delivery::TYPE => {
            hooklog_infra::streams::check_subject_token(&id)
                .map_err(|err| ApiError::bad_request("bad_aggregate_id", err.to_string()))?;
            id
        }
        GithubDelivery::TYPE => github_delivery_id(&id)?,
        RepositoryConnection::TYPE => connection_id(&id)?.to_string(),
        other => return Err(unknown_aggregate_type(other)),
    };
    let until = match (&q.at_seq, &q.at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_point_in_time",
                "give at_seq or at, not both",
            ))
        }
        (_, Some(at)) => Until::Time(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map_err(|err| {
                    ApiError::bad_request(
                        "bad_point_in_time",
                        format!("at: {at:?} is not an RFC 3339 time ({err})"),
                    )
                })?,
        ),
        (Some(seq), None) => Until::Sequence(*seq),
        (None, None) => Until::End,
    };
    let folded = state_at(&state.js, &aggregate_type, &id, until).await?;
    folded.map(Json).ok_or_else(|| {
        ApiError::not_found(
            "aggregate_not_found",
            format!("{aggregate_type} {id} up to that point"),
        )
    })
}

/// A `GithubDelivery` id: its GUID, checked like a `Delivery` id (one subject token), as the
/// aggregate is keyed (`DeliveryKey`: GUIDs of other characters are stored by digest).
fn github_delivery_id(guid: &str) -> Result<String, ApiError> {
    hooklog_infra::streams::check_subject_token(guid)
        .map_err(|err| ApiError::bad_request("bad_aggregate_id", err.to_string()))?;
    Ok(DeliveryKey::for_delivery(guid).0)
}

/// How far into `HOOKLOG_EVENTS` a state is folded.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Every event.
    End,
    /// Events up to this stream sequence.
    Sequence(u64),
    /// Events stored at or before this time.
    Time(time::OffsetDateTime),
}

/// The state of the aggregate `aggregate_type`/`id` folded from its events on `HOOKLOG_EVENTS`
/// up to `until`; `None` when it has none by then. `admin`'s state route and `hooklog replay
/// --state` both answer with it.
pub async fn state_at(
    js: &async_nats::jetstream::Context,
    aggregate_type: &str,
    id: &str,
    until: Until,
) -> Result<Option<AggregateStateView>, ApiError> {
    match aggregate_type {
        ConnectorInstance::TYPE => fold::<ConnectorInstance>(js, aggregate_type, id, until).await,
        ConnectorTarget::TYPE => fold::<ConnectorTarget>(js, aggregate_type, id, until).await,
        Delivery::TYPE => fold::<Delivery>(js, aggregate_type, id, until).await,
        GithubDelivery::TYPE => fold::<GithubDelivery>(js, aggregate_type, id, until).await,
        RepositoryConnection::TYPE => {
            fold::<RepositoryConnection>(js, aggregate_type, id, until).await
        }
        other => Err(unknown_aggregate_type(other)),
    }
}

/// Folds the aggregate's events from `HOOKLOG_EVENTS` (its subject, in stream order) up to
/// `until`; `None` when there is none.
async fn fold<A>(
    js: &async_nats::jetstream::Context,
    aggregate_type: &str,
    id: &str,
    until: Until,
) -> Result<Option<AggregateStateView>, ApiError>
where
    A: Aggregate + Default + serde::Serialize,
    A::Event: serde::de::DeserializeOwned,
{
    use async_nats::jetstream::consumer::{pull, DeliverPolicy};
    use futures::StreamExt;
    let unavailable = |err: &dyn std::fmt::Display| ApiError::Unavailable(err.to_string());
    let stream = js
        .get_stream(hooklog_infra::streams::EVENTS_STREAM)
        .await
        .map_err(|err| unavailable(&err))?;
    let mut consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: hooklog_infra::streams::event_subject(aggregate_type, id),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|err| unavailable(&err))?;
    let pending = consumer
        .info()
        .await
        .map_err(|err| unavailable(&err))?
        .num_pending;
    if pending == 0 {
        return Ok(None);
    }
    let mut messages = consumer.messages().await.map_err(|err| unavailable(&err))?;
    let mut aggregate = A::default();
    let mut last: Option<(u64, time::OffsetDateTime)> = None;
    let mut events = 0u64;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|err| unavailable(&err))?;
        let info = message.info().map_err(|err| unavailable(&err))?;
        let past = match until {
            Until::End => false,
            Until::Sequence(seq) => info.stream_sequence > seq,
            Until::Time(time) => info.published > time,
        };
        if past {
            break;
        }
        let event: A::Event = serde_json::from_slice(&message.payload).map_err(|err| {
            ApiError::Internal(format!(
                "event at HOOKLOG_EVENTS sequence {} does not decode: {err}",
                info.stream_sequence
            ))
        })?;
        aggregate.apply(event);
        events += 1;
        last = Some((info.stream_sequence, info.published));
        if info.pending == 0 {
            break;
        }
    }
    let Some((stream_sequence, stored)) = last else {
        return Ok(None);
    };
    Ok(Some(AggregateStateView {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_owned(),
        events,
        stream_sequence,
        stored_at: stored
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        state: serde_json::to_value(&aggregate)
            .map_err(|err| ApiError::Internal(err.to_string()))?,
    }))
}

/// `400 bad_aggregate_type`, listing the types there are.
fn unknown_aggregate_type(other: &str) -> ApiError {
    use hooklog_domain::delivery::Delivery;
    use hooklog_domain::github_delivery::GithubDelivery;
    ApiError::bad_request(
        "bad_aggregate_type",
        format!(
            "{other:?} is not an aggregate type; use {}, {}, {}, {} or {}",
            ConnectorInstance::TYPE,
            ConnectorTarget::TYPE,
            Delivery::TYPE,
            GithubDelivery::TYPE,
            RepositoryConnection::TYPE
        ),
    )
}

/// What a redrive decided.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RedriveView {
    pub delivery_id: String,
    /// `processed`, `ignored` or `dead_letter` (again, with the new reason).
    pub outcome: String,
    pub detail: String,
}

/// Runs the dead letter stored at `stream_sequence` through the worker again: it is reopened
/// (`DeliveryRedriven`, with who asked), its signature checked again (a repository
/// connection's with its own secret from the vault), its payload run, and decided anew.
#[utoipa::path(post, path = "/v1/admin/dead-letters/{stream_sequence}/redrive", tag = "deliveries",
    params(("stream_sequence" = u64, Path, description = "The dead letter's GITHUB_DELIVERIES sequence")),
    responses(
        (status = 200, description = "Decided again", body = RedriveView),
        (status = 404, description = "No message at that sequence", body = ErrorBody),
        (status = 409, description = "Not a dead letter", body = ErrorBody),
        (status = 503, description = "No webhook secret configured, or the store is unavailable", body = ErrorBody),
    ))]
pub async fn redrive(
    State(state): State<AdminState>,
    request: crate::commands::Request,
    ApiPath(stream_sequence): ApiPath<u64>,
) -> Result<Json<RedriveView>, ApiError> {
    use hooklog_worker::redrive::{self, RedriveError};
    let processor = hooklog_worker::Processor::new(state.bus.clone());
    match redrive::redrive(
        &processor,
        &state.js,
        &state.webhook_secrets,
        state.vault.as_ref(),
        stream_sequence,
        &request.meta,
    )
    .await
    {
        Ok(done) => Ok(Json(RedriveView {
            delivery_id: done.delivery_id,
            outcome: done.outcome.as_str().to_owned(),
            detail: done.detail,
        })),
        Err(RedriveError::NotFound(seq)) => Err(ApiError::not_found(
            "dead_letter_not_found",
            format!("stream sequence {seq}"),
        )),
        Err(RedriveError::Refused(reason)) => Err(ApiError::conflict("not_a_dead_letter", reason)),
        Err(RedriveError::Unavailable(reason)) => Err(ApiError::Unavailable(reason)),
        Err(err @ RedriveError::NoWebhookSecret) => Err(ApiError::NotConfigured {
            code: "webhook_secret_not_configured",
            message: err.to_string(),
        }),
    }
}
