//! `LocalGit`: a `RepoSource` that reads a git repository with the `git` command, for targets
//! whose `source` is a path or a URL (offline use, hosts other than GitHub).
//!
//! A path on this machine (a work tree or a bare repository) is read in place. A `file://` or
//! remote URL is mirrored once into `cache_dir` as a bare clone, fetched again when a commit is
//! missing and before each `branch_head`, one fetch at a time per repository.
//!
//! Nothing is trusted for being in the event log: before every read (tree, blobs, branch head) the
//! target's source is checked again against today's rules and `HOOKLOG_SYNCER_ALLOWED_SOURCES`
//! (`AllowedSources::check`, the same check `track` ran), so a source stored under older rules
//! or an older setting fails its sync, naming the setting, and git never runs for it.
//!
//! Every git runs with prompts off, only the file, git, http(s) and ssh transports allowed,
//! `LC_ALL=C` (so its messages can be classified), and without inherited `GIT_DIR`-style
//! variables. URLs are logged and reported with their credentials redacted.
//!
//! A repository connection's GitLab project (a target owned by the connection, its source the
//! project's HTTPS URL) is read the same way, with two differences. Its URL is not checked
//! against `HOOKLOG_SYNCER_ALLOWED_SOURCES` but must be on the GitLab of
//! `HOOKLOG_GITLAB_API_URL` (same scheme, host and port), since that is where its token may go.
//! And its clones and fetches send the connection's token, opened from the vault for each one,
//! as an `Authorization` header scoped to that origin (`http.<origin>/.extraHeader`), given to
//! git in its environment (`GIT_CONFIG_COUNT`): never in a URL, an argument, the mirror's config
//! or a log.
//!
//! - `git`: running git safely, classifying its failures, redacting credentials;
//! - `mirror`: the bare mirrors of URL sources (naming, clone, fetch);
//! - `cat_file`: reading many blobs through one `git cat-file --batch`.

mod cat_file;
mod git;
mod mirror;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use hooklog_domain::ids::{Branch, CommitSha, ConnectionId};
use hooklog_domain::source::{AllowedSources, SourceLocation};
use hooklog_write::vault::Vault;

use self::git::{read_error, redact};
use self::mirror::mirror_name;
use super::{RepoRef, RepoSource, SourceError, TargetOwner, TreeEntry};

/// Reads targets' git repositories with the `git` command.
#[derive(Debug)]
pub struct LocalGit {
    cache_dir: PathBuf,
    /// The sources targets may read now (`HOOKLOG_SYNCER_ALLOWED_SOURCES`).
    allowed: AllowedSources,
    program: OsString,
    /// One clone or fetch at a time per mirror directory.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Repository connections' tokens, and the one origin (`scheme://host[:port]`) they are
    /// sent to: the GitLab of `HOOKLOG_GITLAB_API_URL`.
    connections: Option<Connections>,
}

#[derive(Debug)]
struct Connections {
    vault: Vault,
    origin: String,
}

/// Where a target's repository is read, and how to name it in errors and logs.
enum Location {
    InPlace {
        dir: PathBuf,
        shown: String,
    },
    Mirror {
        url: String,
        dir: PathBuf,
        shown: String,
        /// The repository connection whose token its clones and fetches send.
        auth: Option<ConnectionId>,
    },
}

impl Location {
    fn dir(&self) -> &Path {
        match self {
            Self::InPlace { dir, .. } | Self::Mirror { dir, .. } => dir,
        }
    }

    fn shown(&self) -> &str {
        match self {
            Self::InPlace { shown, .. } | Self::Mirror { shown, .. } => shown,
        }
    }
}

impl LocalGit {
    /// `cache_dir` holds the bare mirrors of URL sources; it is created on first use. Only
    /// sources `allowed` covers are read.
    pub fn new(cache_dir: PathBuf, allowed: AllowedSources) -> Self {
        Self {
            cache_dir,
            allowed,
            program: "git".into(),
            locks: Mutex::new(HashMap::new()),
            connections: None,
        }
    }

    /// Reads repository connections' GitLab projects too: on the GitLab of `gitlab_api_url`
    /// (`HOOKLOG_GITLAB_API_URL`), with their tokens from `vault`.
    pub fn with_connections(mut self, vault: Option<Vault>, gitlab_api_url: &str) -> Self {
        self.connections = vault.and_then(|vault| {
            let origin = SourceLocation::from_stored(gitlab_api_url)
                .ok()?
                .http_origin()?;
            Some(Connections { vault, origin })
        });
        self
    }

    fn locate(&self, repo: &RepoRef) -> Result<Location, SourceError> {
        let source = repo.source.as_ref().ok_or_else(|| {
            SourceError::Invalid(format!("{} has no git source to read", repo.repository))
        })?;
        let auth = match repo.owner {
            TargetOwner::Installation(_) => {
                self.allowed
                    .check(source)
                    .map_err(|refused| SourceError::Invalid(refused.to_string()))?;
                None
            }
            TargetOwner::Connection(connection) => {
                let connections = self.connections.as_ref().ok_or_else(|| {
                    SourceError::Invalid(format!(
                        "repository connection {connection} is read with its token from the \
                         vault, and HOOKLOG_SECRETS_KEY is not set"
                    ))
                })?;
                if source.http_origin().as_deref() != Some(connections.origin.as_str()) {
                    return Err(SourceError::Invalid(format!(
                        "{} is not on the GitLab of HOOKLOG_GITLAB_API_URL ({}), the one place \
                         repository connection {connection}'s token is sent",
                        redact(source.as_str()),
                        connections.origin
                    )));
                }
                Some(connection)
            }
        };
        let shown = redact(source.as_str());
        Ok(
            if source.is_remote() || source.as_str().starts_with("file://") {
                let dir = self.cache_dir.join(mirror_name(source.as_str()));
                Location::Mirror {
                    url: source.as_str().to_owned(),
                    dir,
                    shown,
                    auth,
                }
            } else {
                Location::InPlace {
                    dir: PathBuf::from(source.as_str()),
                    shown,
                }
            },
        )
    }

    /// `refspec` peeled to a commit: `None` when there is no such commit.
    async fn resolve(&self, loc: &Location, refspec: &str) -> Result<Option<String>, SourceError> {
        let args = ["rev-parse", "--verify", "--quiet", refspec];
        let out = self.run(Some(loc.dir()), args).await?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Some(1) if out.stderr.is_empty() => Ok(None),
            _ => Err(read_error(loc, "rev-parse", &out.stderr)),
        }
    }

    async fn has_commit(&self, loc: &Location, commit: &CommitSha) -> Result<bool, SourceError> {
        let found = self.resolve(loc, &format!("{commit}^{{commit}}")).await?;
        Ok(found.is_some())
    }
}

#[async_trait]
impl RepoSource for LocalGit {
    async fn tree(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        let loc = self.locate(repo)?;
        let cloned = self.ensure_mirror(&loc).await?;
        let mut found = self.has_commit(&loc, commit).await?;
        if !found && !cloned && matches!(loc, Location::Mirror { .. }) {
            self.fetch(&loc).await?;
            found = self.has_commit(&loc, commit).await?;
        }
        if !found {
            return Err(SourceError::NotFound(format!(
                "commit {commit} is not in {}",
                loc.shown()
            )));
        }
        let args = ["ls-tree", "-r", "-l", "-z", "--full-tree", commit.as_str()];
        let out = self.run(Some(loc.dir()), args).await?;
        if !out.status.success() {
            return Err(read_error(&loc, "ls-tree", &out.stderr));
        }
        parse_tree(&out.stdout, loc.shown())
    }

    /// One `git cat-file --batch` reads any number of blobs cheaply: `commit` is not needed.
    async fn blobs(
        &self,
        repo: &RepoRef,
        _commit: &CommitSha,
        blob_shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>> {
        if blob_shas.is_empty() {
            return Vec::new();
        }
        let loc = match self.locate(repo) {
            Ok(loc) => loc,
            Err(err) => return vec![Err(err); blob_shas.len()],
        };
        if let Err(err) = self.ensure_mirror(&loc).await {
            return vec![Err(err); blob_shas.len()];
        }
        self.cat_file(&loc, blob_shas).await
    }

    async fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &Branch,
    ) -> Result<Option<CommitSha>, SourceError> {
        let loc = self.locate(repo)?;
        if !self.ensure_mirror(&loc).await? {
            self.fetch(&loc).await?;
        }
        let head = self
            .resolve(&loc, &format!("refs/heads/{branch}^{{commit}}"))
            .await?;
        head.map(|sha| {
            CommitSha::parse(&sha).map_err(|err| {
                SourceError::Invalid(format!("git rev-parse answered {err} for {branch}"))
            })
        })
        .transpose()
    }
}

/// Parses `git ls-tree -r -l -z`: `<mode> <type> <sha> <size>\t<path>\0`, keeping blobs
/// (submodules are `commit` entries), in path order.
fn parse_tree(out: &[u8], shown: &str) -> Result<Vec<TreeEntry>, SourceError> {
    let mut entries = Vec::new();
    for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || SourceError::Invalid(format!("git ls-tree printed a bad line for {shown}"));
        let tab = record.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
        let meta = std::str::from_utf8(&record[..tab]).map_err(|_| bad())?;
        let [mode, kind, sha, size] = meta.split_whitespace().collect::<Vec<_>>()[..] else {
            return Err(bad());
        };
        if kind != "blob" {
            continue;
        }
        let Ok(path) = std::str::from_utf8(&record[tab + 1..]) else {
            let path = String::from_utf8_lossy(&record[tab + 1..]);
            tracing::warn!(source = %shown, %path, "skipping a file whose path is not UTF-8");
            continue;
        };
        entries.push(TreeEntry {
            path: path.to_owned(),
            blob_sha: sha.to_owned(),
            size: size.parse().map_err(|_| bad())?,
            mode: mode.to_owned(),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_output_keeps_blobs_in_path_order() {
        let sha = "a".repeat(40);
        let out = format!(
            "100644 blob {sha}      12\tz.md\0160000 commit {sha}       -\tsub\0\
             120000 blob {sha}       4\ta/link\0100755 blob {sha} 1234567\ta b/run.sh\0"
        );
        let entries = parse_tree(out.as_bytes(), "repo").unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode.as_str(), e.size))
            .collect();
        assert_eq!(
            got,
            [
                ("a b/run.sh", "100755", 1_234_567),
                ("a/link", "120000", 4),
                ("z.md", "100644", 12)
            ]
        );
    }
}
