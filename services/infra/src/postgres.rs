//! PostgreSQL: create the database when missing, connect, and apply the migrations owned in
//! `migrations/` (embedded in the binary).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// The channel on which writers wake the relay after committing events (`NOTIFY`).
pub const OUTBOX_CHANNEL: &str = "hooklog_outbox";

/// Wakes the relay: a notification on [`OUTBOX_CHANNEL`], sent after (never inside) the
/// transaction that committed events, so commits are not serialized on the notification lock.
/// Best effort: the relay polls as well.
pub async fn wake_outbox(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(pool)
        .await
        .map(drop)
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("HOOKLOG_DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("HOOKLOG_DATABASE_URL names no database")]
    NoDatabase,
    #[error("cannot reach PostgreSQL ({context}): {source}")]
    Unreachable {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create database {database}: {source}")]
    Create {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Connection options from `url`. Every statement is planned for its parameters
/// (`plan_cache_mode = force_custom_plan`): hooklog's tables start empty and grow by the
/// thousands, and a generic plan cached by a long-lived connection while a table was small (a
/// sequential scan) would otherwise stay in use as the table grows, until the next `ANALYZE`,
/// which a server without autovacuum never runs. Planning a short statement costs less than
/// one such scan.
fn options(url: &str) -> Result<PgConnectOptions, PostgresError> {
    PgConnectOptions::from_str(url)
        .map_err(PostgresError::BadUrl)
        .map(|options| {
            options
                .log_statements(tracing::log::LevelFilter::Debug)
                .options([("plan_cache_mode", "force_custom_plan")])
        })
}

/// Creates the database named in `url` when it does not exist, connecting to the `postgres`
/// maintenance database with the same credentials. Safe when several processes race.
pub async fn ensure_database(url: &str) -> Result<(), PostgresError> {
    let target = options(url)?;
    let database = target
        .get_database()
        .ok_or(PostgresError::NoDatabase)?
        .to_owned();
    let mut conn = target
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(|source| PostgresError::Unreachable {
            context: "connecting to the `postgres` database to create the hooklog one",
            source,
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| PostgresError::Unreachable {
                context: "looking up the database",
                source,
            })?;
    if !exists {
        let quoted = format!("\"{}\"", database.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database, "created database"),
            // 42P04 duplicate_database: another process created it first.
            Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P04") => {}
            Err(source) => return Err(PostgresError::Create { database, source }),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// A pool that connects on first use, so a process can start (and report not ready) while
/// PostgreSQL is down. Connections are not pinged before each use (that would double the round
/// trips of every query); a dead one fails its query, which callers retry, and is replaced.
pub fn connect_lazy(url: &str) -> Result<PgPool, PostgresError> {
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options(url)?))
}

/// Creates the database when missing, connects and applies pending migrations.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool, PostgresError> {
    ensure_database(url).await?;
    let pool = connect_lazy(url)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A session-level advisory lock on a connection of its own (never a pooled one, whose session
/// would be handed to others): one process of a role works while it holds it, the others stand
/// by. The lock lives exactly as long as the session, so a process that dies, or loses its
/// connection, gives it up; `check` is how the holder learns that its session (and with it the
/// lock) is still there before it acts.
pub struct Lease {
    conn: sqlx::PgConnection,
}

/// How long a lease's statement may take before its session counts as lost.
const LEASE_TIMEOUT: Duration = Duration::from_secs(10);

impl Lease {
    /// Takes the lock `key` on a new session made with `pool`'s settings; `None` while another
    /// session holds it.
    pub async fn take(pool: &PgPool, key: i64) -> Result<Option<Self>, sqlx::Error> {
        let options = pool.connect_options();
        let mut conn =
            tokio::time::timeout(LEASE_TIMEOUT, sqlx::PgConnection::connect_with(&options))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let taken: bool = tokio::time::timeout(
            LEASE_TIMEOUT,
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        if taken {
            Ok(Some(Self { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Whether the session, and with it the lock, is still there.
    pub async fn check(&mut self) -> Result<(), sqlx::Error> {
        tokio::time::timeout(
            LEASE_TIMEOUT,
            sqlx::query("SELECT 1").execute(&mut self.conn),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map(drop)
    }

    /// Gives the lock up.
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}
