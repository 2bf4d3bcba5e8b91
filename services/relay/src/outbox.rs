//! The Postgres side of the relay: the `event_outbox` table (filled by a trigger on `events`,
//! see `migrations/20261123000002_outbox.sql`), the advisory lock that elects one relay, and the
//! notifications that wake it.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgListener, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::RelayError;

/// Key of the session-level advisory lock that only one relay holds at a time (per database):
/// the ASCII bytes of `hooklog` followed by `0x01`, read as a big-endian `i64`
/// (`0x686f6f6b6c6f6701` = 7525356009530812161). In `pg_locks` it shows as
/// `classid = 1752133483`, `objid = 1819240193`, `objsubid = 1`.
pub const ADVISORY_LOCK_KEY: i64 = 0x686f_6f6b_6c6f_6701;

/// The channel the outbox trigger notifies (with an empty payload) on every commit that adds
/// events.
pub const NOTIFY_CHANNEL: &str = hooklog_infra::postgres::OUTBOX_CHANNEL;

/// How long one statement may take before the session is considered lost. Outbox statements
/// are small and indexed; a Postgres that does not answer in this time is as good as gone.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of `event_outbox`: one committed event. JSON columns are read as text, so the payload
/// is published byte for byte as the event store wrote it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

/// A dedicated Postgres connection, outside the pool: a session-level advisory lock belongs to
/// its connection, so that connection must never be handed back to a pool and reused. All outbox
/// reads and deletes of the lock holder go through it as well, so a lost session (and with it
/// the lock) shows as an error on the next statement.
pub(crate) struct Session {
    conn: PgConnection,
}

impl Session {
    /// Opens a connection with the pool's settings (URL, credentials, TLS).
    ///
    /// The session commits asynchronously (`synchronous_commit = off`): its only writes are the
    /// deletes of published rows, and a delete that a PostgreSQL crash loses leaves rows that the
    /// next session's first pass checks against the stream before publishing anything (a crash
    /// ends this session, and with it this first pass). Not waiting for the WAL flush keeps the
    /// delete out of the time between a commit and its event on the stream.
    pub async fn connect(pool: &PgPool) -> Result<Self, RelayError> {
        let options = pool.connect_options();
        let mut conn = timed(
            "connecting the lock session",
            PgConnection::connect_with(&options),
        )
        .await?;
        timed(
            "setting up the lock session",
            sqlx::query("SET synchronous_commit = off").execute(&mut conn),
        )
        .await?;
        Ok(Self { conn })
    }

    /// Takes the relay lock if no other session holds it. Held until this session ends.
    pub async fn try_lock(&mut self) -> Result<bool, RelayError> {
        timed(
            "taking the relay lock",
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .fetch_one(&mut self.conn),
        )
        .await
    }

    /// Checks that the session (and with it the lock) is still alive.
    pub async fn ping(&mut self) -> Result<(), RelayError> {
        timed(
            "checking the lock session",
            sqlx::query("SELECT 1").execute(&mut self.conn),
        )
        .await
        .map(drop)
    }

    /// The highest outbox id now committed: rows up to it may have been published by an earlier
    /// lock holder that died before deleting them.
    pub async fn last_id(&mut self) -> Result<Option<i64>, RelayError> {
        timed(
            "reading the end of the outbox",
            sqlx::query_scalar("SELECT max(id) FROM event_outbox").fetch_one(&mut self.conn),
        )
        .await
    }

    /// The oldest `limit` rows, in id order (which is each aggregate's sequence order).
    pub async fn fetch(&mut self, limit: i64) -> Result<Vec<OutboxRow>, RelayError> {
        timed(
            "reading the outbox",
            sqlx::query_as(
                "SELECT id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                        payload::text AS payload, metadata::text AS metadata \
                 FROM event_outbox ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut self.conn),
        )
        .await
    }

    /// Deletes rows whose events JetStream has acknowledged.
    pub async fn delete(&mut self, ids: &[i64]) -> Result<(), RelayError> {
        if ids.is_empty() {
            return Ok(());
        }
        timed(
            "deleting published rows from the outbox",
            sqlx::query("DELETE FROM event_outbox WHERE id = ANY($1)")
                .bind(ids)
                .execute(&mut self.conn),
        )
        .await
        .map(drop)
    }

    /// Ends the session, which releases the lock.
    pub async fn close(self) {
        if let Err(err) = self.conn.close().await {
            tracing::debug!(error = %err, "closing the lock session failed; it ends anyway");
        }
    }
}

/// Listens on [`NOTIFY_CHANNEL`] over a connection of its own (a one-connection pool with the
/// caller's settings), so the relay takes nothing from the caller's pool.
pub(crate) async fn listen(pool: &PgPool) -> Result<PgListener, RelayError> {
    let own_pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(STATEMENT_TIMEOUT)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = timed(
        "connecting the outbox listener",
        PgListener::connect_with(&own_pool),
    )
    .await?;
    timed(
        "listening for outbox notifications",
        listener.listen(NOTIFY_CHANNEL),
    )
    .await?;
    Ok(listener)
}

/// Runs one Postgres step with [`STATEMENT_TIMEOUT`], naming the step in its error.
async fn timed<T>(
    context: &'static str,
    step: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, RelayError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, step).await {
        Ok(result) => result.map_err(RelayError::postgres(context)),
        Err(_) => Err(RelayError::PostgresTimedOut {
            context,
            timeout: STATEMENT_TIMEOUT,
        }),
    }
}
