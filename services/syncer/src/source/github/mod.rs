//! The GitHub App source: reads trees, blobs and branch heads through GitHub's REST API as an
//! installation of the App.
//!
//! - `app`: the App's own endpoints (`/app/...`) with the App JWT, for the GitHub reconciler
//!   and the dashboard's installation check. An installation's repositories are listed here, as
//!   the installation.
//! - `jwt`: the App JWT (RS256), signed with the App's private key.
//! - `token`: installation tokens, exchanged with the JWT and cached per installation.
//! - `http`: the one request helper: rate limits waited out, server and network errors retried.
//! - `limits`: the rate-limit and backoff policy (pure).
//! - `tree`, `blobs`: the git database endpoints; `path`: encoded API paths.
//! - `archive`: many blobs at once from the commit's tarball, each checked against its blob id.
//!
//! The base URL is configurable for GitHub Enterprise Server and for tests (a fake GitHub).

mod app;
mod archive;
mod blobs;
mod http;
mod jwt;
mod limits;
mod path;
mod token;
mod tree;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hooklog_domain::connector_target::TargetOwner;
use hooklog_domain::ids::{Branch, CommitSha, InstallationId};
use hooklog_write::vault::Vault;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;

pub use self::app::{AppAnswer, AppClient, Installation};
use self::http::{bearer, Answer, Body, Http, Reply};
use self::jwt::AppKey;
pub use self::path::{repository_path, segment as path_segment};
use self::token::TokenCache;
use super::{RepoRef, RepoSource, SourceError, TreeEntry};

const NOT_CONFIGURED: &str = "the GitHub App is not configured: set HOOKLOG_GITHUB_APP_ID and \
                              HOOKLOG_GITHUB_APP_PRIVATE_KEY (or HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE)";

/// How to reach GitHub as the App.
#[derive(Debug, Clone)]
pub struct GithubAppConfig {
    /// The REST API root: `https://api.github.com`, or `https://HOST/api/v3` on GitHub
    /// Enterprise Server.
    pub api_url: String,
    /// The App's id. Without it (or the key) the source answers every call with a clear error.
    pub app_id: Option<u64>,
    /// The App's private key, PEM.
    pub private_key: Option<SecretString>,
    /// Blobs (and, on a truncated tree, subtrees) fetched at once.
    pub blob_concurrency: usize,
    /// Above this many blobs in one call, the commit's tarball is downloaded once (one request
    /// against the installation's 5,000 an hour, instead of one per blob) and the blobs are taken
    /// from it; what it lacks or fails to give comes from the blobs API. At or under it, the
    /// blobs API alone: a small change is cheaper than the whole archive.
    pub tarball_threshold: usize,
    /// Retries of a request that met a 5xx or a network error, before `Unavailable`.
    pub retries: u32,
    /// The longest a call waits out rate limits (in total) before answering `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl Default for GithubAppConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.github.com".to_owned(),
            app_id: None,
            private_key: None,
            blob_concurrency: 8,
            tarball_threshold: 100,
            retries: 4,
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// One repository an installation gave the App.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct InstallationRepository {
    pub id: u64,
    pub full_name: String,
    pub default_branch: String,
    pub private: bool,
}

/// The `RepoSource` that reads repositories through the GitHub App.
#[derive(Debug)]
pub struct GithubApp {
    http: Http,
    /// `None` when the App id or key is not set.
    app: Option<App>,
    concurrency: usize,
    tarball_threshold: usize,
    /// Repository connections' tokens; `None` when no secrets key is set.
    vault: Option<Vault>,
}

#[derive(Debug)]
struct App {
    key: AppKey,
    tokens: TokenCache,
}

impl GithubApp {
    /// Checks the API URL and the key. An App without id or key is still built, so a server
    /// that only reads git repositories starts; its GitHub calls fail with what to set.
    pub fn new(config: GithubAppConfig) -> Result<Self, SourceError> {
        let http = Http::new(&config.api_url, config.retries, config.max_rate_limit_wait)?;
        let app = match (config.app_id, &config.private_key) {
            (Some(app_id), Some(pem)) => Some(App {
                key: AppKey::new(app_id, pem)?,
                tokens: TokenCache::default(),
            }),
            _ => None,
        };
        Ok(Self {
            http,
            app,
            concurrency: config.blob_concurrency.max(1),
            tarball_threshold: config.tarball_threshold,
            vault: None,
        })
    }

    /// Reads repository connections' targets with their tokens from `vault`.
    pub fn with_vault(mut self, vault: Option<Vault>) -> Self {
        self.vault = vault;
        self
    }

    /// The token `owner` reads with: an installation token (exchanged and cached), or a
    /// repository connection's own token, opened from the vault for each call so a rotated or
    /// removed token takes effect at once.
    async fn credential(&self, owner: TargetOwner) -> Result<SecretString, SourceError> {
        match owner {
            TargetOwner::Installation(installation) => self.token(installation).await,
            TargetOwner::Connection(connection) => {
                super::connection_token(self.vault.as_ref(), connection).await
            }
        }
    }

    fn app(&self) -> Result<&App, SourceError> {
        self.app
            .as_ref()
            .ok_or_else(|| SourceError::Invalid(NOT_CONFIGURED.to_owned()))
    }

    async fn token(&self, installation: InstallationId) -> Result<SecretString, SourceError> {
        let app = self.app()?;
        app.tokens
            .get(installation, || {
                token::exchange(&self.http, &app.key, installation)
            })
            .await
    }

    /// Every repository the installation gave the App (`GET /installation/repositories`, 100
    /// a page), as its installation token. The `Link` header's next page is followed while it
    /// stays on this API (the token is never sent elsewhere); a next page already read, or one
    /// that lists nothing, ends the listing, so a looping `Link` cannot make it endless.
    #[tracing::instrument(skip_all, fields(installation = installation.0))]
    pub async fn installation_repositories(
        &self,
        installation: InstallationId,
    ) -> Result<Vec<InstallationRepository>, SourceError> {
        #[derive(Deserialize)]
        struct Listing {
            repositories: Vec<InstallationRepository>,
        }
        let what = format!("the repositories of installation {installation}");
        let mut repositories = vec![];
        let mut read = std::collections::HashSet::new();
        let mut path = Some("/installation/repositories?per_page=100".to_owned());
        while let Some(current) = path.take() {
            let answer = self
                .get(TargetOwner::Installation(installation), &current)
                .await?;
            if answer.status != StatusCode::OK {
                return Err(answer.error(&what));
            }
            let page = answer.json::<Listing>(&what)?.repositories;
            if page.is_empty() {
                break;
            }
            repositories.extend(page);
            read.insert(current);
            path = match answer.next.as_deref() {
                None => None,
                Some(url) => match self.http.path_of(url) {
                    Some(next) if read.contains(next) => {
                        return Err(SourceError::Invalid(format!(
                            "GitHub's pages of {what} lead back to a page already read"
                        )))
                    }
                    Some(next) => Some(next.to_owned()),
                    None => {
                        tracing::warn!(
                            listed = repositories.len(),
                            "GitHub's next page of the installation's repositories is off the \
                             configured API; not followed"
                        );
                        None
                    }
                },
            };
        }
        Ok(repositories)
    }

    /// `GET path` as `owner`, the body read in full.
    async fn get(&self, owner: TargetOwner, path: &str) -> Result<Answer, SourceError> {
        self.call(owner, path, Body::Read)
            .await?
            .into_answer()
            .await
    }

    /// `GET path` as `owner`, a success's body read or left open as `body` says. A 401 to an
    /// installation means the cached token was revoked or expired early: it is dropped and the
    /// call made once more with a new one.
    async fn call(&self, owner: TargetOwner, path: &str, body: Body) -> Result<Reply, SourceError> {
        let token = self.credential(owner).await?;
        let reply = self
            .http
            .exchange(Method::GET, path, &bearer(&token)?, body)
            .await?;
        let refused =
            matches!(&reply, Reply::Read(answer) if answer.status == StatusCode::UNAUTHORIZED);
        // A connection's token is the admin's: refused, it stays refused until they replace it.
        let TargetOwner::Installation(installation) = owner else {
            return Ok(reply);
        };
        if !refused {
            return Ok(reply);
        }
        tracing::warn!(
            installation = installation.0,
            path = path.split('?').next().unwrap_or(path),
            "GitHub refused the cached installation token; exchanging a new one"
        );
        self.app()?.tokens.forget(installation, &token).await;
        let token = self.token(installation).await?;
        self.http
            .exchange(Method::GET, path, &bearer(&token)?, body)
            .await
    }
}

#[async_trait]
impl RepoSource for GithubApp {
    #[tracing::instrument(skip_all, fields(repository = %repo.repository, commit = %commit))]
    async fn tree(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        self.fetch_tree(repo, commit).await
    }

    #[tracing::instrument(
        skip_all,
        fields(repository = %repo.repository, commit = %commit, blobs = blob_shas.len())
    )]
    async fn blobs(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
        blob_shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>> {
        self.fetch_blobs(repo, commit, blob_shas).await
    }

    #[tracing::instrument(skip_all, fields(repository = %repo.repository, branch = %branch))]
    async fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &Branch,
    ) -> Result<Option<CommitSha>, SourceError> {
        #[derive(Deserialize)]
        struct BranchAnswer {
            commit: CommitRef,
        }
        #[derive(Deserialize)]
        struct CommitRef {
            sha: String,
        }

        let what = format!("branch {branch} of {}", repo.repository);
        let path = format!(
            "{}/branches/{}",
            path::repo_path(repo)?,
            path::segment(branch.as_str())
        );
        let answer = self.get(repo.owner, &path).await?;
        match answer.status {
            StatusCode::OK => {
                let sha = answer.json::<BranchAnswer>(&what)?.commit.sha;
                CommitSha::parse(&sha)
                    .map(Some)
                    .map_err(|err| SourceError::Invalid(format!("{what}: {err}")))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(answer.error(&what)),
        }
    }
}
