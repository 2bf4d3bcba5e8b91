//! One sync of one target at one head SHA: read the tree, diff it against the last synced
//! snapshot, fetch only the blobs that changed, classify them, and commit files and result
//! together. Per-file problems (too large, not UTF-8 where text is required, front matter that
//! does not parse, a blob that cannot be fetched) are listed and make the sync `partial`; only
//! a source that cannot give the tree at all (or refuses the credentials) fails the sync.

use hooklog_domain::connector_target::{FileFailure, PathFilters, SyncStatus};
use hooklog_domain::ids::{CommitSha, SyncId, TargetId};
use hooklog_infra::metrics::SYNC_BLOBS_FETCHED;
use sqlx::PgPool;

use crate::discovery;
use crate::filters::PathMatcher;
use crate::plan::{self, Change};
use crate::source::{RepoRef, SourceError, Sources};
use crate::store::{self, FileRow, SyncResult};

/// Limits of a sync.
#[derive(Debug, Clone)]
pub struct SyncLimits {
    /// Files larger than this are not fetched: they are listed as failures.
    pub max_file_size: u64,
    /// Bytes (by the tree's sizes) asked of the source at once. A source may answer a large
    /// batch with one archive of the commit (GitHub's tarball), so most first syncs take one
    /// request.
    pub fetch_batch_bytes: u64,
    /// A sync still running after this long is given up (`SyncFailed`, retryable), so a source
    /// that hangs cannot hold its target forever.
    pub timeout: std::time::Duration,
}

impl Default for SyncLimits {
    fn default() -> Self {
        Self {
            max_file_size: 1024 * 1024,
            fetch_batch_bytes: 64 * 1024 * 1024,
            timeout: std::time::Duration::from_secs(30 * 60),
        }
    }
}

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncJob {
    pub target_id: TargetId,
    pub sync_id: SyncId,
    pub head_sha: CommitSha,
    pub repo: RepoRef,
    pub filters: PathFilters,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source could not give the tree, or refused the credentials.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The target's path filters do not compile (they were checked when set; should not happen).
    #[error("the target's path filters are invalid: {0}")]
    Filters(String),
    /// PostgreSQL failed: the sync is run again later, nothing was half-written.
    #[error("the syncer's tables are unavailable: {0}")]
    Store(#[from] sqlx::Error),
    /// The sync ran longer than `SyncLimits::timeout`; nothing was written.
    #[error("the sync did not finish within {0:?} (HOOKLOG_SYNCER_SYNC_TIMEOUT)")]
    TimedOut(std::time::Duration),
}

impl SyncError {
    /// Whether running the same sync later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Source(err) => err.is_retryable(),
            Self::Filters(_) => false,
            Self::Store(_) | Self::TimedOut(_) => true,
        }
    }
}

/// Runs `job` to its stored result, within `limits.timeout`; a sync that already committed
/// returns its stored result.
#[tracing::instrument(skip_all, fields(target_id = %job.target_id, sync_id = %job.sync_id, head_sha = %job.head_sha))]
pub async fn run(
    pool: &PgPool,
    sources: &Sources,
    limits: &SyncLimits,
    job: &SyncJob,
) -> Result<SyncResult, SyncError> {
    tokio::time::timeout(limits.timeout, run_unbounded(pool, sources, limits, job))
        .await
        .unwrap_or(Err(SyncError::TimedOut(limits.timeout)))
}

async fn run_unbounded(
    pool: &PgPool,
    sources: &Sources,
    limits: &SyncLimits,
    job: &SyncJob,
) -> Result<SyncResult, SyncError> {
    if let Some(done) = store::result_of(pool, job.sync_id).await? {
        tracing::info!("sync already committed; reporting its result");
        return Ok(done);
    }
    let matcher = PathMatcher::new(&job.filters).map_err(SyncError::Filters)?;
    let source = sources.for_repo(&job.repo);
    let tree = source.tree(&job.repo, &job.head_sha).await?;
    let snapshot = store::snapshot(pool, job.target_id).await?;
    let plan = plan::plan(&snapshot, &tree, &matcher, limits.max_file_size);

    let mut failures: Vec<FileFailure> = plan.too_large;
    let (mut created, mut updated, mut fetched) = (0u64, 0u64, 0u64);
    let mut rows = Vec::with_capacity(plan.fetch.len());
    for batch in batches(&plan.fetch, limits.fetch_batch_bytes) {
        let shas: Vec<String> = batch.iter().map(|f| f.entry.blob_sha.clone()).collect();
        let blobs = source.blobs(&job.repo, &job.head_sha, &shas).await;
        fetched += shas.len() as u64;
        metrics::counter!(SYNC_BLOBS_FETCHED).increment(shas.len() as u64);
        for (fetch, blob) in batch.iter().zip(blobs) {
            let path = &fetch.entry.path;
            let fail = |reason: String| FileFailure {
                path: path.clone(),
                reason,
            };
            let content = match blob {
                Ok(content) => content,
                // Credentials refused mid-sync: no later blob will do better.
                Err(err @ SourceError::Auth(_)) => return Err(err.into()),
                Err(err) => {
                    failures.push(fail(format!("fetch failed: {err}")));
                    continue;
                }
            };
            if content.len() as u64 > limits.max_file_size {
                failures.push(fail(format!(
                    "too large: {} bytes, the limit is {}",
                    content.len(),
                    limits.max_file_size
                )));
                continue;
            }
            match discovery::classify(path, &content) {
                Ok(classified) => {
                    match fetch.change {
                        Change::Create => created += 1,
                        Change::Update => updated += 1,
                    }
                    rows.push(FileRow {
                        path: path.clone(),
                        blob_sha: fetch.entry.blob_sha.clone(),
                        content,
                        kind: classified.kind.as_str(),
                        metadata: classified.metadata,
                    });
                }
                Err(reason) => failures.push(fail(reason)),
            }
        }
    }
    failures.sort_by(|a, b| a.path.cmp(&b.path));
    let result = SyncResult {
        sync_id: job.sync_id,
        target_id: job.target_id,
        head_sha: job.head_sha.clone(),
        status: match failures.is_empty() {
            true => SyncStatus::Completed,
            false => SyncStatus::Partial,
        },
        created,
        updated,
        deleted: plan.delete.len() as u64,
        skipped: plan.skipped,
        failures,
        fetched,
    };
    let stored = store::commit(pool, &rows, &plan.delete, result).await?;
    tracing::info!(
        created = stored.created,
        updated = stored.updated,
        deleted = stored.deleted,
        skipped = stored.skipped,
        failed = stored.failures.len(),
        fetched = stored.fetched,
        "sync committed"
    );
    Ok(stored)
}

/// `fetches` cut into runs of at most `bytes` (by the tree's sizes), each at least one file.
fn batches(fetches: &[plan::Fetch], bytes: u64) -> Vec<&[plan::Fetch]> {
    let mut batches = Vec::new();
    let (mut start, mut size) = (0, 0u64);
    for (i, fetch) in fetches.iter().enumerate() {
        if i > start && size + fetch.entry.size > bytes {
            batches.push(&fetches[start..i]);
            (start, size) = (i, 0);
        }
        size += fetch.entry.size;
    }
    if start < fetches.len() {
        batches.push(&fetches[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::TreeEntry;

    fn fetch(size: u64) -> plan::Fetch {
        plan::Fetch {
            entry: TreeEntry {
                path: format!("f{size}"),
                blob_sha: "a".repeat(40),
                size,
                mode: "100644".to_owned(),
            },
            change: Change::Create,
        }
    }

    #[test]
    fn batches_hold_at_most_the_byte_budget_and_at_least_one_file() {
        let fetches: Vec<_> = [4, 4, 4, 10, 1, 1].map(fetch).into();
        let sizes: Vec<Vec<u64>> = batches(&fetches, 8)
            .iter()
            .map(|b| b.iter().map(|f| f.entry.size).collect())
            .collect();
        assert_eq!(sizes, [vec![4, 4], vec![4], vec![10], vec![1, 1]]);
        assert!(batches(&[], 8).is_empty());
        assert_eq!(batches(&fetches, u64::MAX).len(), 1);
    }
}
