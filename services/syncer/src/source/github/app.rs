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
    base: String,
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

impl AppClient {
    /// Needs the App id and key: without them, the error names the settings.
    pub fn new(config: &GithubAppConfig) -> Result<Self, SourceError> {
        let (Some(app_id), Some(pem)) = (config.app_id, &config.private_key) else {
            return Err(SourceError::Invalid(NOT_CONFIGURED.to_owned()));
        };
        Ok(Self {
            reads: Http::new(&config.api_url, config.retries, config.max_rate_limit_wait)?,
            writes: Http::new(&config.api_url, 0, config.max_rate_limit_wait)?,
            key: AppKey::new(app_id, pem)?,
            base: config.api_url.trim_end_matches('/').to_owned(),
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
            .and_then(|url| url.strip_prefix(&self.base))
            .filter(|path| path.starts_with('/'))
            .map(str::to_owned);
        Ok(AppAnswer {
            status: answer.status.as_u16(),
            message: answer.message(),
            next,
            body: answer.body,
        })
    }
}
