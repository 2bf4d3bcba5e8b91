//! Rebuild and drift check. A projection is replayed from sequence 1 into a shadow schema
//! (`hooklog_rebuild`: empty copies of its tables and of the checkpoints table, reached through
//! the connection's `search_path`), then either compared with the live tables at the same
//! position (`verify`) or swapped into them (`replace`).
//!
//! Comparing at the same position: the live tables are read in one REPEATABLE READ snapshot,
//! whose checkpoint says where the shadow must stand; the shadow then catches up to exactly that
//! position. Each table compares by row count and a digest of its rows' text, which is what
//! "byte-identical" means here.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

use crate::projector::{project_until, ProjectorConfig, ProjectorError};
use crate::Projection;

pub const SHADOW_SCHEMA: &str = "hooklog_rebuild";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    pub table: String,
    pub rows: i64,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableComparison {
    pub table: String,
    pub live: TableDigest,
    pub rebuilt: TableDigest,
    pub equal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub projection: &'static str,
    /// The stream sequence the rebuilt tables stand at.
    pub position: u64,
    /// Messages replayed from sequence 1 up to `position`.
    pub messages: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Filled by `verify`; `replace` leaves it empty.
    pub tables: Vec<TableComparison>,
}

impl RebuildReport {
    pub fn equal(&self) -> bool {
        self.tables.iter().all(|t| t.equal)
    }
}

/// Replays `projection` into the shadow schema up to the live position, then compares table by
/// table with the live tables at one position.
pub async fn verify(
    pool: &PgPool,
    js: &jetstream::Context,
    projection: Projection,
    config: &ProjectorConfig,
) -> Result<RebuildReport, ProjectorError> {
    let live_position = crate::query::position(pool, projection.name())
        .await
        .map_err(query_error)?;
    let (shadow, mut report) = replay(pool, js, projection, config, live_position).await?;

    let mut snapshot = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    let position: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT position FROM public.projection_checkpoints \
         WHERE projection = $1), 0)",
    )
    .bind(projection.name())
    .fetch_one(&mut *snapshot)
    .await?;
    let mut live = vec![];
    for table in projection.tables() {
        live.push(digest(&mut snapshot, "public", table).await?);
    }
    snapshot.commit().await?;

    let position = position as u64;
    if position > report.position {
        report.position = project_until(projection, config, &shadow, js, position)
            .await?
            .position;
    }
    let mut conn = shadow.acquire().await?;
    for live in live {
        let rebuilt = digest(&mut conn, SHADOW_SCHEMA, &live.table).await?;
        report.tables.push(TableComparison {
            table: live.table.clone(),
            equal: live.rows == rebuilt.rows && live.digest == rebuilt.digest,
            live,
            rebuilt,
        });
    }
    drop(conn);
    shadow.close().await;
    Ok(report)
}

/// Replays `projection` into the shadow schema up to the end of its stream, then swaps the
/// result into the live tables with the checkpoint, in one transaction. A projector running
/// meanwhile finds its checkpoint moved and starts over from the swapped one.
pub async fn replace(
    pool: &PgPool,
    js: &jetstream::Context,
    projection: Projection,
    config: &ProjectorConfig,
) -> Result<RebuildReport, ProjectorError> {
    let last = js
        .get_stream(projection.stream())
        .await
        .map_err(|err| ProjectorError::Stream(err.to_string()))?
        .get_info()
        .await
        .map_err(|err| ProjectorError::Stream(err.to_string()))?
        .state
        .last_sequence;
    let (shadow, report) = replay(pool, js, projection, config, last).await?;
    shadow.close().await;

    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM public.projection_checkpoints WHERE projection = $1 FOR UPDATE")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    for table in projection.tables() {
        sqlx::query(&format!("DELETE FROM public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO public.{table} SELECT * FROM {SHADOW_SCHEMA}.{table}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO public.projection_checkpoints \
         SELECT * FROM {SHADOW_SCHEMA}.projection_checkpoints WHERE projection = $1 \
         ON CONFLICT (projection) DO UPDATE SET position = EXCLUDED.position, \
         event_time = EXCLUDED.event_time"
    ))
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// A fresh shadow schema holding empty copies of the projection's tables, filled from sequence
/// 1 up to `until`; returns a pool whose connections write there.
async fn replay(
    pool: &PgPool,
    js: &jetstream::Context,
    projection: Projection,
    config: &ProjectorConfig,
    until: u64,
) -> Result<(PgPool, RebuildReport), ProjectorError> {
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {SHADOW_SCHEMA}"))
        .execute(&mut *conn)
        .await?;
    for table in projection
        .tables()
        .iter()
        .chain(&["projection_checkpoints"])
    {
        sqlx::query(&format!(
            "CREATE TABLE {SHADOW_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    drop(conn);

    let options = (*pool.connect_options())
        .clone()
        .options([("search_path", format!("{SHADOW_SCHEMA},public"))]);
    let shadow = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?;
    let started = Instant::now();
    let reached = project_until(projection, config, &shadow, js, until).await?;
    let seconds = started.elapsed().as_secs_f64();
    let report = RebuildReport {
        projection: projection.name(),
        position: reached.position,
        messages: reached.position,
        seconds,
        messages_per_second: reached.position as f64 / seconds.max(1e-9),
        tables: vec![],
    };
    Ok((shadow, report))
}

/// Row count and a digest of the rows' text, independent of physical order.
async fn digest(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<TableDigest, sqlx::Error> {
    let (rows, digest): (i64, Option<String>) = sqlx::query_as(&format!(
        "SELECT count(*), md5(string_agg(h, '' ORDER BY h)) \
         FROM (SELECT md5(t::text) AS h FROM {schema}.{table} t) rows"
    ))
    .fetch_one(conn)
    .await?;
    Ok(TableDigest {
        table: table.to_owned(),
        rows,
        digest: digest.unwrap_or_default(),
    })
}

fn query_error(err: crate::query::QueryError) -> ProjectorError {
    match err {
        crate::query::QueryError::Database(err) => ProjectorError::Database(err),
        other => ProjectorError::Stream(other.to_string()),
    }
}
