//! The projector loop: for each projection, an ordered consumer of its stream that starts right
//! after the checkpoint, gathers what has arrived into a batch, applies the batch and advances
//! the checkpoint in one transaction, and starts over from the stored checkpoint on any error.
//! Exactly once follows: a batch is either committed with its checkpoint or not at all.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{self, Checkpoint};
use crate::{connector, deliveries, Projection, StreamMessage};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    /// Pause before starting over after an error.
    pub retry: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            retry: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    Stream(String),
    /// A message the projection cannot apply. The projection stops there (skipping it would
    /// make its tables depend on when it ran) until a fixed hooklog applies it.
    #[error("{stream} sequence {sequence} cannot be projected: {reason}")]
    Unprojectable {
        stream: &'static str,
        sequence: u64,
        reason: String,
    },
    /// The checkpoint moved under this projector: another projector or a rebuild wrote it.
    #[error("the checkpoint of {0} was moved by another writer")]
    CheckpointMoved(&'static str),
}

/// Longest wait for a message the consumer says is pending, while filling a batch.
const FILL_WAIT: Duration = Duration::from_millis(50);

fn stream_error(err: impl std::fmt::Display) -> ProjectorError {
    ProjectorError::Stream(err.to_string())
}

/// What a batch changed that the loop reports as metrics.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Statuses of the syncs that finished in the batch.
    pub finished_syncs: Vec<&'static str>,
}

/// Keeps both projections until `shutdown`, starting over after each error.
pub async fn run(
    config: ProjectorConfig,
    pool: PgPool,
    js: jetstream::Context,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    let keep = |projection| {
        let (config, pool, js, shutdown) =
            (config.clone(), pool.clone(), js.clone(), shutdown.clone());
        async move {
            while !shutdown.is_cancelled() {
                match project(projection, &config, &pool, &js, None, &shutdown).await {
                    Ok(_) => break,
                    Err(err) => {
                        tracing::error!(projection = projection.name(), error = %err, "projection stopped; starting over from its checkpoint");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(config.retry) => {}
                        }
                    }
                }
            }
        }
    };
    tracing::info!("projector running");
    tokio::join!(keep(Projection::Connector), keep(Projection::Deliveries));
    Ok(())
}

/// Applies `projection` until its checkpoint reaches `until` (a rebuild), and returns the final
/// checkpoint. Runs in whatever schema `pool`'s connections search.
pub async fn project_until(
    projection: Projection,
    config: &ProjectorConfig,
    pool: &PgPool,
    js: &jetstream::Context,
    until: u64,
) -> Result<Checkpoint, ProjectorError> {
    project(
        projection,
        config,
        pool,
        js,
        Some(until),
        &CancellationToken::new(),
    )
    .await
}

async fn project(
    projection: Projection,
    config: &ProjectorConfig,
    pool: &PgPool,
    js: &jetstream::Context,
    until: Option<u64>,
    shutdown: &CancellationToken,
) -> Result<Checkpoint, ProjectorError> {
    let mut current = checkpoint::load(&mut *pool.acquire().await?, projection).await?;
    if until.is_some_and(|until| current.position >= until) {
        return Ok(current);
    }
    let stream = js
        .get_stream(projection.stream())
        .await
        .map_err(stream_error)?;
    let deliver_policy = match current.position {
        0 => DeliverPolicy::All,
        position => DeliverPolicy::ByStartSequence {
            start_sequence: position + 1,
        },
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(stream_error)?;
    let mut messages = consumer.messages().await.map_err(stream_error)?;
    let name = projection.name();
    let mut cache = connector::Cache::default();
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(current),
            next = messages.next() => next,
        };
        let mut batch = vec![received(first)?];
        while batch.len() < config.batch_size
            && until.is_none_or(|until| batch[batch.len() - 1].sequence < until)
        {
            // Behind the stream (catching up, rebuilding): wait for the rest of a full batch;
            // caught up: take only what has arrived, so nothing waits on a batch to fill.
            let next = if batch[batch.len() - 1].pending > 0 {
                tokio::time::timeout(FILL_WAIT, messages.next()).await.ok()
            } else {
                messages.next().now_or_never()
            };
            match next {
                Some(next) => batch.push(received(next)?),
                None => break,
            }
        }
        if let Some(until) = until {
            batch.retain(|m| m.sequence <= until);
        }
        let last = batch
            .last()
            .expect("a batch holds at least its first message");
        let next = Checkpoint {
            position: last.sequence,
            event_time: Some(last.published),
        };

        let mut tx = pool.begin().await?;
        // Read models are derived: a crash may lose the last commits, rows and checkpoint
        // together (asynchronous commit keeps each transaction atomic and in order), and the
        // projector replays them. Not waiting for the WAL flush keeps the read side fast.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let (applied, written) = match projection {
            Projection::Connector => {
                let (applied, rows) = connector::apply(&mut tx, &batch, &cache).await?;
                (applied, Some(rows))
            }
            Projection::Deliveries => (deliveries::apply(&mut tx, &batch).await?, None),
        };
        if !checkpoint::advance(&mut tx, projection, current.position, next).await? {
            return Err(ProjectorError::CheckpointMoved(name));
        }
        tx.commit().await?;
        if let Some(rows) = written {
            cache.absorb(rows);
        }
        current = next;

        metrics::counter!("hooklog_projector_messages_total", "projection" => name)
            .increment(batch.len() as u64);
        metrics::counter!("hooklog_projector_batches_total", "projection" => name).increment(1);
        if until.is_none() {
            for status in applied.finished_syncs {
                metrics::counter!("hooklog_sync_outcomes_total", "status" => status).increment(1);
            }
        }
        tracing::debug!(
            projection = name,
            position = current.position,
            messages = batch.len(),
            "batch projected"
        );
        if until.is_some_and(|until| current.position >= until) {
            return Ok(current);
        }
    }
}

fn received<E: std::fmt::Display>(
    next: Option<Result<jetstream::Message, E>>,
) -> Result<StreamMessage, ProjectorError> {
    match next {
        None => Err(ProjectorError::Stream("the consumer ended".to_owned())),
        Some(Err(err)) => Err(stream_error(err)),
        Some(Ok(message)) => StreamMessage::from_jetstream(&message).map_err(stream_error),
    }
}
