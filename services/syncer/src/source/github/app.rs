//! The App's own endpoints (`/app/...`), called with the App JWT rather than an installation
//! token: what the GitHub reconciler reads (the App's webhook delivery log) and asks
//! (redeliveries). Same HTTP helper as the repository calls: rate limits waited out up to the
//! configured bound, logs without headers or bodies.
//!
//! Reads are retried on server and network errors; a `POST` never is: GitHub may have acted on
//! a request whose answer was lost, and a redelivery asked twice is a delivery sent twice.

use bytes::Bytes;
use reqwest::Method;
use time::OffsetDateTime;

use super::http::{bearer, Http};
use super::jwt::AppKey;
use super::{GithubAppConfig, NOT_CONFIGURED};
use crate::source::SourceError;

/// A client of the App's own endpoints.
#[derive(Debug)]
pub struct AppClient {
    reads: Http,
    writes: Http,
    key: AppKey,
}

/// What GitHub answered: any status that is not a rate limit or (for reads) a server error.
#[derive(Debug, Clone)]
pub struct AppAnswer {
    pub status: u16,
    pub body: Bytes,
    /// The `Link` header's `rel="next"`, as a path from the API root when it is on the same
    /// API (any other host is dropped: the JWT is never sent elsewhere).
    pub next: Option<String>,
    /// GitHub's `message`, for errors.
    pub message: String,
}

impl AppAnswer {
    /// The body as `T`; errors say where, never quote the body.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SourceError> {
        serde_json::from_slice(&self.body).map_err(|err| {
            SourceError::Invalid(format!(
                "GitHub's answer to {what} is not the JSON expected ({:?} error at line {}, \
                 column {})",
                err.classify(),
                err.line(),
                err.column()
            ))
        })
    }
}

/// An installation of the App, as `GET /app/installations/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installation {
    pub id: u64,
    /// The account's login.
    pub account: String,
    /// `Organization` or `User`.
    pub account_type: String,
    pub repository_selection: Option<String>,
    pub suspended: bool,
}

impl AppClient {
    /// The installation `id` of this App; `None` when GitHub does not know it (for this App).
    pub async fn installation(&self, id: u64) -> Result<Option<Installation>, SourceError> {
        #[derive(serde::Deserialize)]
        struct Body {
            id: u64,
            account: Account,
            repository_selection: Option<String>,
            suspended_at: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Account {
            login: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let what = format!("installation {id}");
        let answer = self.get(&format!("/app/installations/{id}")).await?;
        match answer.status {
            200 => {
                let body: Body = answer.json(&what)?;
                Ok(Some(Installation {
                    id: body.id,
                    account: body.account.login,
                    account_type: body.account.kind,
                    repository_selection: body.repository_selection,
                    suspended: body.suspended_at.is_some(),
                }))
            }
            404 => Ok(None),
            401 => Err(SourceError::Auth(format!(
                "GitHub refused the App JWT for {what} ({}); check HOOKLOG_GITHUB_APP_ID and the \
                 App's private key",
                answer.message
            ))),
            status => Err(SourceError::Invalid(format!(
                "GitHub answered {status} ({}) to {what}",
                answer.message
            ))),
        }
    }

    /// Needs the App id and key: without them, the error names the settings.
    pub fn new(config: &GithubAppConfig) -> Result<Self, SourceError> {
        let (Some(app_id), Some(pem)) = (config.app_id, &config.private_key) else {
            return Err(SourceError::Invalid(NOT_CONFIGURED.to_owned()));
        };
        Ok(Self {
            reads: Http::new(&config.api_url, config.retries, config.max_rate_limit_wait)?,
            writes: Http::new(&config.api_url, 0, config.max_rate_limit_wait)?,
            key: AppKey::new(app_id, pem)?,
        })
    }

    /// `GET path` (from the API root, with its query) as the App.
    pub async fn get(&self, path: &str) -> Result<AppAnswer, SourceError> {
        self.send(&self.reads, Method::GET, path).await
    }

    /// `POST path` (no body) as the App, tried once.
    pub async fn post(&self, path: &str) -> Result<AppAnswer, SourceError> {
        self.send(&self.writes, Method::POST, path).await
    }

    async fn send(
        &self,
        http: &Http,
        method: Method,
        path: &str,
    ) -> Result<AppAnswer, SourceError> {
        let jwt = self.key.sign(OffsetDateTime::now_utc())?;
        let answer = http.send(method, path, &bearer(&jwt)?).await?;
        let next = answer
            .next
            .as_deref()
            .and_then(|url| http.path_of(url))
            .map(str::to_owned);
        Ok(AppAnswer {
            status: answer.status.as_u16(),
            message: answer.message(),
            next,
            body: answer.body,
        })
    }
}
