//! `GET /metrics`: Prometheus text, open like the health checks. Counters and histograms are
//! recorded where things happen (ingress, worker, projector) into the process's recorder; the
//! gauges below are computed at scrape time from PostgreSQL and JetStream, so they are right
//! whichever process runs the projector or the worker.

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use hooklog_projections::Projection;

use crate::state::AdminState;

const PROJECTION_POSITION: &str = "hooklog_projection_position";
const PROJECTION_LAG_EVENTS: &str = "hooklog_projection_lag_events";
const PROJECTION_LAG_SECONDS: &str = "hooklog_projection_lag_seconds";
const DEAD_LETTERS: &str = "hooklog_dead_letters";
const SYNC_RUNS: &str = "hooklog_sync_runs";

/// Every status a sync run can have: each is exported, zero included.
const SYNC_STATUSES: [&str; 5] = ["queued", "running", "completed", "partial", "failed"];

/// The scrape answers with what it has after this long, rather than hang.
const GAUGE_TIMEOUT: Duration = Duration::from_secs(3);

/// Prometheus metrics of this process, and of the read models.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    describe();
    match tokio::time::timeout(GAUGE_TIMEOUT, gauges(&state)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics: some gauges could not be computed"),
        Err(_) => tracing::warn!("metrics: computing the gauges timed out"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_gauge!(
            PROJECTION_POSITION,
            "Last stream sequence each projection applied."
        );
        metrics::describe_gauge!(
            PROJECTION_LAG_EVENTS,
            "Messages on the projection's stream not applied yet."
        );
        metrics::describe_gauge!(
            PROJECTION_LAG_SECONDS,
            metrics::Unit::Seconds,
            "Age of the oldest message the projection has not applied (0 when caught up)."
        );
        metrics::describe_gauge!(DEAD_LETTERS, "Dead letters recorded (table dead_letters).");
        metrics::describe_gauge!(SYNC_RUNS, "Sync runs by status (read model sync_runs).");
    });
}

async fn gauges(state: &AdminState) -> Result<(), String> {
    let projections = projection_gauges(state).await;
    let counts = count_gauges(state).await;
    projections.and(counts)
}

struct Checkpoint {
    stream: String,
    position: u64,
    /// Unix seconds of the stream timestamp of the message at `position`.
    event_time: Option<f64>,
}

async fn projection_gauges(state: &AdminState) -> Result<(), String> {
    let rows: Vec<(String, String, i64, Option<f64>)> = sqlx::query_as(
        "SELECT projection, stream, position, EXTRACT(EPOCH FROM event_time)::float8 \
         FROM projection_checkpoints",
    )
    .fetch_all(&state.db)
    .await
    .map_err(|err| format!("reading projection checkpoints: {err}"))?;
    let mut checkpoints: BTreeMap<String, Checkpoint> = Projection::ALL
        .into_iter()
        .map(|p| {
            let empty = Checkpoint {
                stream: p.stream().to_owned(),
                position: 0,
                event_time: None,
            };
            (p.name().to_owned(), empty)
        })
        .collect();
    for (projection, stream, position, event_time) in rows {
        let checkpoint = Checkpoint {
            stream,
            position: u64::try_from(position).unwrap_or_default(),
            event_time,
        };
        checkpoints.insert(projection, checkpoint);
    }
    let now = unix_seconds(SystemTime::now());
    for (projection, checkpoint) in checkpoints {
        let labels = [("projection", projection.clone())];
        metrics::gauge!(PROJECTION_POSITION, &labels).set(checkpoint.position as f64);
        let mut stream = state
            .js
            .get_stream(&checkpoint.stream)
            .await
            .map_err(|err| format!("stream {}: {err}", checkpoint.stream))?;
        let info = stream
            .info()
            .await
            .map_err(|err| format!("stream {}: {err}", checkpoint.stream))?;
        let lag = info.state.last_sequence.saturating_sub(checkpoint.position);
        metrics::gauge!(PROJECTION_LAG_EVENTS, &labels).set(lag as f64);
        let seconds = if lag == 0 {
            0.0
        } else {
            let next = (checkpoint.position + 1).max(info.state.first_sequence);
            let oldest = match stream.direct_get(next).await {
                Ok(message) => Some(unix_seconds(SystemTime::from(message.time))),
                Err(_) => checkpoint.event_time,
            };
            oldest.map_or(0.0, |t| (now - t).max(0.0))
        };
        metrics::gauge!(PROJECTION_LAG_SECONDS, &labels).set(seconds);
    }
    Ok(())
}

async fn count_gauges(state: &AdminState) -> Result<(), String> {
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&state.db)
        .await
        .map_err(|err| format!("counting dead letters: {err}"))?;
    metrics::gauge!(DEAD_LETTERS).set(dead as f64);
    let runs: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM sync_runs GROUP BY status")
            .fetch_all(&state.db)
            .await
            .map_err(|err| format!("counting sync runs: {err}"))?;
    let runs: BTreeMap<String, i64> = runs.into_iter().collect();
    for status in SYNC_STATUSES {
        let count = runs.get(status).copied().unwrap_or_default();
        metrics::gauge!(SYNC_RUNS, "status" => status).set(count as f64);
    }
    Ok(())
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
