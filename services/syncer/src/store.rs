//! The syncer's tables: `synced_files` (the copy of each target's branch, tombstones included)
//! and `sync_results` (what each sync did). A sync's file changes and its result commit in one
//! transaction, under a per-target lock, so a sync run twice (after a crash, or by the reconcile
//! loop beside the consumer) changes the files once and reports the figures of the first run.

use std::collections::BTreeMap;

use hooklog_domain::connector_target::{FileFailure, SyncStatus};
use hooklog_domain::ids::{CommitSha, SyncId, TargetId};
use sqlx::{PgPool, Postgres, Transaction};

use crate::plan::{Snapshot, SnapshotEntry};

/// Rows written per statement (arrays bound as parameters, one round trip each).
const ROWS_PER_STATEMENT: usize = 500;

/// What one sync did, as stored and as reported through `SyncCompleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub sync_id: SyncId,
    pub target_id: TargetId,
    pub head_sha: CommitSha,
    pub status: SyncStatus,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failures: Vec<FileFailure>,
    /// Blobs read from the source.
    pub fetched: u64,
}

/// One file to write: created or updated by the sync.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub path: String,
    pub blob_sha: String,
    pub content: bytes::Bytes,
    pub kind: &'static str,
    pub metadata: Option<serde_json::Value>,
}

/// The last synced state of every path of the target (tombstones included).
pub async fn snapshot(pool: &PgPool, target: TargetId) -> Result<Snapshot, sqlx::Error> {
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT path, blob_sha, deleted FROM synced_files WHERE target_id = $1")
            .bind(target.0)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(path, blob_sha, deleted)| (path, SnapshotEntry { blob_sha, deleted }))
        .collect::<BTreeMap<_, _>>())
}

type ResultRow = (
    uuid::Uuid,
    uuid::Uuid,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    serde_json::Value,
    i64,
);

const RESULT_SELECT: &str = "SELECT sync_id, target_id, head_sha, status, created, updated, \
     deleted, skipped, failures, fetched FROM sync_results WHERE sync_id = $1";

/// The stored result of `sync`, when it already ran to the end.
pub async fn result_of(pool: &PgPool, sync: SyncId) -> Result<Option<SyncResult>, sqlx::Error> {
    let row: Option<ResultRow> = sqlx::query_as(RESULT_SELECT)
        .bind(sync.0)
        .fetch_optional(pool)
        .await?;
    row.map(decode_result).transpose()
}

fn decode_result(row: ResultRow) -> Result<SyncResult, sqlx::Error> {
    let (sync_id, target_id, head, status, created, updated, deleted, skipped, failures, fetched) =
        row;
    let corrupt = |what: String| sqlx::Error::Decode(what.into());
    let count = |n: i64| u64::try_from(n).map_err(|_| corrupt(format!("negative count {n}")));
    Ok(SyncResult {
        sync_id: SyncId(sync_id),
        target_id: TargetId(target_id),
        head_sha: CommitSha::parse(&head).map_err(|e| corrupt(e.to_string()))?,
        status: [SyncStatus::Completed, SyncStatus::Partial]
            .into_iter()
            .find(|s| s.as_str() == status)
            .ok_or_else(|| corrupt(format!("sync result status {status:?}")))?,
        created: count(created)?,
        updated: count(updated)?,
        deleted: count(deleted)?,
        skipped: count(skipped)?,
        failures: serde_json::from_value(failures).map_err(|e| corrupt(e.to_string()))?,
        fetched: count(fetched)?,
    })
}

/// Writes `files`, tombstones `deleted_paths` and stores `result`, in one transaction. When the
/// sync already committed (run twice), nothing is written and the first run's result returned.
pub async fn commit(
    pool: &PgPool,
    files: &[FileRow],
    deleted_paths: &[String],
    result: SyncResult,
) -> Result<SyncResult, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One sync of a target writes at a time, across processes.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7525356009530812162))")
        .bind(result.target_id.to_string())
        .execute(&mut *tx)
        .await?;
    let earlier: Option<ResultRow> = sqlx::query_as(RESULT_SELECT)
        .bind(result.sync_id.0)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(earlier) = earlier {
        tx.rollback().await?;
        return decode_result(earlier);
    }
    for chunk in files.chunks(ROWS_PER_STATEMENT) {
        upsert_files(&mut tx, &result, chunk).await?;
    }
    for chunk in deleted_paths.chunks(ROWS_PER_STATEMENT) {
        sqlx::query(
            "UPDATE synced_files SET deleted = true, content = NULL, sync_id = $2, \
             head_sha = $3, synced_at = now() \
             WHERE target_id = $1 AND path = ANY($4) AND NOT deleted",
        )
        .bind(result.target_id.0)
        .bind(result.sync_id.0)
        .bind(result.head_sha.as_str())
        .bind(chunk)
        .execute(&mut *tx)
        .await?;
    }
    let failures =
        serde_json::to_value(&result.failures).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
    sqlx::query(
        "INSERT INTO sync_results (sync_id, target_id, head_sha, status, created, updated, \
         deleted, skipped, failures, fetched, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())",
    )
    .bind(result.sync_id.0)
    .bind(result.target_id.0)
    .bind(result.head_sha.as_str())
    .bind(result.status.as_str())
    .bind(signed(result.created))
    .bind(signed(result.updated))
    .bind(signed(result.deleted))
    .bind(signed(result.skipped))
    .bind(failures)
    .bind(signed(result.fetched))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(result)
}

async fn upsert_files(
    tx: &mut Transaction<'_, Postgres>,
    result: &SyncResult,
    files: &[FileRow],
) -> Result<(), sqlx::Error> {
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let shas: Vec<&str> = files.iter().map(|f| f.blob_sha.as_str()).collect();
    let sizes: Vec<i64> = files
        .iter()
        .map(|f| signed(f.content.len() as u64))
        .collect();
    let contents: Vec<&[u8]> = files.iter().map(|f| f.content.as_ref()).collect();
    let kinds: Vec<&str> = files.iter().map(|f| f.kind).collect();
    let metadata: Vec<Option<String>> = files
        .iter()
        .map(|f| f.metadata.as_ref().map(ToString::to_string))
        .collect();
    sqlx::query(
        "INSERT INTO synced_files (target_id, path, blob_sha, size, content, kind, metadata, \
         deleted, sync_id, head_sha, synced_at) \
         SELECT $1, f.path, f.blob_sha, f.size, f.content, f.kind, f.metadata::jsonb, false, \
         $2, $3, now() \
         FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::text[], $9::text[]) \
         AS f(path, blob_sha, size, content, kind, metadata) \
         ON CONFLICT (target_id, path) DO UPDATE SET blob_sha = EXCLUDED.blob_sha, \
         size = EXCLUDED.size, content = EXCLUDED.content, kind = EXCLUDED.kind, \
         metadata = EXCLUDED.metadata, deleted = false, sync_id = EXCLUDED.sync_id, \
         head_sha = EXCLUDED.head_sha, synced_at = EXCLUDED.synced_at",
    )
    .bind(result.target_id.0)
    .bind(result.sync_id.0)
    .bind(result.head_sha.as_str())
    .bind(paths)
    .bind(shas)
    .bind(sizes)
    .bind(contents)
    .bind(kinds)
    .bind(metadata)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts fit in `bigint` (they count files and bytes); saturate rather than wrap.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
