//! The `RepoSource` port: where a target's files come from. The syncer asks a source for the
//! tree of a commit, for the blobs that changed, and (for the reconcile loop) for a branch's
//! head; it never knows whether GitHub or a git repository answered.
//!
//! - `github`: GitHub's REST API (trees, blobs, commit tarballs for many blobs at once) as an
//!   installation of the App (App JWT, installation tokens) or, for a repository connection's
//!   target, with the connection's token from the vault.
//! - `local`: a git repository path or URL, read with the `git` command.
//! - `Sources` picks one per target: the target's `source` when it has one, else GitHub.

pub mod github;
pub mod local;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
pub use hooklog_domain::connector_target::TargetOwner;
use hooklog_domain::ids::{
    Branch, CommitSha, ConnectionId, RepositoryId, RepositoryName, SourceLocation,
};
use hooklog_write::vault::{SecretKind, Vault, VaultError};
use secrecy::SecretString;

/// The repository a target reads, as its aggregate knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// Whose access reads it from GitHub: an App installation's tokens, or a repository
    /// connection's own token.
    pub owner: TargetOwner,
    pub repository_id: RepositoryId,
    /// `OWNER/NAME`, as of the target's last rename.
    pub repository: RepositoryName,
    /// A git repository to read instead of the GitHub App.
    pub source: Option<SourceLocation>,
}

/// One file of a tree: a blob (regular, executable or symlink). Submodules and directories are
/// not entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Full path from the repository root, `/`-separated, no leading `/`.
    pub path: String,
    /// The git blob SHA (40 or 64 lowercase hex).
    pub blob_sha: String,
    /// Bytes, as the source reports them (before fetching).
    pub size: u64,
    /// Git file mode: `100644`, `100755` or `120000`.
    pub mode: String,
}

/// Why a source could not answer. `is_retryable` says whether the same call may succeed later:
/// the syncer reports a retryable `SyncFailed`, and the reconcile loop retries it with backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Credentials refused or missing (bad App id or key, installation gone, git auth).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The repository, commit, tree, blob or branch does not exist (or is not visible).
    #[error("not found: {0}")]
    NotFound(String),
    /// Rate limited longer than the source is willing to wait.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Network errors and server errors that outlasted the retries.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An answer the source cannot use, or a source that is not set up (e.g. no App id).
    #[error("{0}")]
    Invalid(String),
}

impl SourceError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

#[async_trait]
pub trait RepoSource: Send + Sync {
    /// Every blob of the tree of `commit`, recursively, in path order.
    async fn tree(&self, repo: &RepoRef, commit: &CommitSha)
        -> Result<Vec<TreeEntry>, SourceError>;

    /// The contents of `blob_shas`, in the same order; each one may fail on its own. The blobs
    /// are those of the tree of `commit`: a source may read them from that commit's archive.
    async fn blobs(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
        blob_shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>>;

    /// The commit `branch` points at now; `None` when the branch does not exist.
    async fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &Branch,
    ) -> Result<Option<CommitSha>, SourceError>;
}

/// Repository connection `id`'s token, opened from `vault` for each read, so a rotated or
/// removed token takes effect at once. Without a vault (no `HOOKLOG_SECRETS_KEY`) the error
/// names the setting; a database away is worth trying again, a token gone or unopenable is not.
pub(crate) async fn connection_token(
    vault: Option<&Vault>,
    id: ConnectionId,
) -> Result<SecretString, SourceError> {
    let vault = vault.ok_or_else(|| {
        SourceError::Invalid(format!(
            "repository connection {id}'s token is sealed in the vault, and HOOKLOG_SECRETS_KEY \
             is not set"
        ))
    })?;
    match vault.get(&id.to_string(), SecretKind::Token).await {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(SourceError::Auth(format!(
            "repository connection {id} has no token in the vault (disconnected?)"
        ))),
        Err(err @ VaultError::Database(_)) => Err(SourceError::Unavailable(err.to_string())),
        Err(err) => Err(SourceError::Auth(err.to_string())),
    }
}

/// The source of each target: its git repository when it names one, else the GitHub App.
#[derive(Clone)]
pub struct Sources {
    pub github: Arc<dyn RepoSource>,
    pub local: Arc<dyn RepoSource>,
}

impl Sources {
    pub fn for_repo(&self, repo: &RepoRef) -> &dyn RepoSource {
        match repo.source {
            Some(_) => self.local.as_ref(),
            None => self.github.as_ref(),
        }
    }
}
