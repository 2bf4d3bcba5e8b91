//! `TestEnv`: a fresh database (migrated) and a `nats-server` of the test's own with the
//! `HOOKLOG_EVENTS` stream; relays started as tasks against them; helpers that write events as
//! postgres-es does and read back what the stream holds.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::{self, message::StreamMessage};
use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::postgres;
use hooklog_infra::streams::{self, EVENTS_STREAM};
use hooklog_infra::testing::{fresh_database_url, nats_server_bin};
use hooklog_relay::{RelayConfig, RelayError, ADVISORY_LOCK_KEY};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const INSTANCE: &str = "ConnectorInstance";
pub const TARGET: &str = "ConnectorTarget";
pub const INSTANCE_ID: &str = "github-installation-42";
pub const TARGET_ID: &str = "5f0c4a52-3d3b-5d0e-9f7e-2b9c2b8f6a11";

/// How long a test waits for something that should happen within moments.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestEnv {
    pub database_url: String,
    pub pool: PgPool,
    pub nats: EmbeddedNats,
    pub js: jetstream::Context,
    _dir: tempfile::TempDir,
}

/// Quick settings, so tests see take-overs and retries within moments.
pub fn fast_config() -> RelayConfig {
    RelayConfig {
        batch_size: 256,
        poll_interval: Duration::from_millis(200),
        publish_timeout: Duration::from_millis(500),
        lock_retry: Duration::from_millis(100),
    }
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::start_with_window(Duration::from_secs(120)).await
    }

    /// Like [`start`](Self::start), with the stream's duplicate window set to `window`.
    pub async fn start_with_window(window: Duration) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let server = EmbeddedNats::start(&nats_server_bin(), dir.path())
            .await
            .expect("nats-server starts");
        let client = nats::connect(&server.url(), "hooklog-relay-test")
            .await
            .expect("connect to NATS");
        let js = jetstream::new(client);
        streams::ensure_events_stream(&js, window)
            .await
            .expect("events stream");
        let (database_url, _name) = fresh_database_url();
        let pool = postgres::connect_and_migrate(&database_url)
            .await
            .expect("fresh database");
        Self {
            database_url,
            pool,
            nats: server,
            js,
            _dir: dir,
        }
    }

    /// A pool on the test database whose connections show as `application_name` in
    /// `pg_stat_activity`, to tell relays apart.
    pub async fn pool_named(&self, application_name: &str) -> PgPool {
        let options = PgConnectOptions::from_str(&self.database_url)
            .unwrap()
            .application_name(application_name);
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("pool")
    }

    pub fn spawn_relay(&self, config: RelayConfig, pool: PgPool) -> RunningRelay {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hooklog_relay::run(
            config,
            pool,
            self.js.clone(),
            shutdown.clone(),
        ));
        RunningRelay { shutdown, task }
    }

    /// Appends events to one aggregate in one transaction, as postgres-es does, then wakes the
    /// relay as the command bus does.
    pub async fn commit_events(&self, aggregate_type: &str, aggregate_id: &str, sequences: &[i64]) {
        let mut tx = self.pool.begin().await.unwrap();
        for &sequence in sequences {
            insert_event(&mut tx, aggregate_type, aggregate_id, sequence).await;
        }
        tx.commit().await.unwrap();
        hooklog_infra::postgres::wake_outbox(&self.pool)
            .await
            .unwrap();
    }

    pub async fn outbox_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM event_outbox")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Every message the events stream holds, in stream order.
    pub async fn stream_messages(&self) -> Vec<StreamMessage> {
        let mut stream = self.js.get_stream(EVENTS_STREAM).await.expect("stream");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        // No gaps: the stream denies deletes.
        for sequence in state.first_sequence..=state.last_sequence {
            messages.push(stream.get_raw_message(sequence).await.expect("message"));
        }
        messages
    }

    /// `(subject, Hooklog-Sequence)` of every event on the stream, in stream order.
    pub async fn published(&self) -> Vec<(String, u64)> {
        self.stream_messages()
            .await
            .iter()
            .filter_map(|message| {
                let sequence = header(message, streams::event_headers::SEQUENCE)?;
                Some((message.subject.to_string(), sequence.parse().unwrap()))
            })
            .collect()
    }

    /// Waits until the stream holds `count` events and the outbox is empty.
    pub async fn wait_until_relayed(&self, count: usize) {
        eventually(
            "every event is published and its outbox row deleted",
            || async { self.published().await.len() >= count && self.outbox_len().await == 0 },
        )
        .await;
    }

    /// The `application_name` of the session holding the relay lock, if any.
    pub async fn lock_holder(&self) -> Option<String> {
        let holders: Vec<String> = sqlx::query_scalar(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND (l.classid::bigint << 32) | l.objid::bigint = $1",
        )
        .bind(ADVISORY_LOCK_KEY)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        assert!(holders.len() <= 1, "one holder at most: {holders:?}");
        holders.into_iter().next()
    }
}

pub async fn insert_event(
    tx: &mut sqlx::PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata) \
         VALUES ($1, $2, $3, $4, '1.0', CAST($5 AS json), CAST($6 AS json))",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .bind(event_type(sequence))
    .bind(payload(aggregate_id, sequence))
    .bind(metadata(sequence))
    .execute(tx)
    .await
    .expect("insert event");
}

pub fn event_type(sequence: i64) -> String {
    format!("Happened{sequence}")
}

/// A payload with spacing and key order a JSON re-encoding would change.
pub fn payload(aggregate_id: &str, sequence: i64) -> String {
    format!(r#"{{"Happened" : {{ "z": {sequence},  "a": "{aggregate_id}" }} }}"#)
}

pub fn metadata(sequence: i64) -> String {
    format!(r#"{{"delivery_id": "delivery-{sequence}", "actor": "github"}}"#)
}

pub fn header<'a>(message: &'a StreamMessage, name: &str) -> Option<&'a str> {
    message.headers.get(name).map(|value| value.as_str())
}

pub struct RunningRelay {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), RelayError>>,
}

impl RunningRelay {
    /// Cancels the relay and checks that it stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the relay stops when cancelled")
            .expect("the relay task did not panic")
            .expect("the relay returns Ok on shutdown");
    }
}

/// Relay logs in the test output, filtered by `RUST_LOG` (nothing by default).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `condition` until it holds, failing the test with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
