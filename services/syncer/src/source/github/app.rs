//! The App's own endpoints (`/app/...`), called with the App JWT rather than an installation
//! token: what the GitHub reconciler reads (the App's webhook delivery log) and asks
//! (redeliveries), and one installation of the App (`installation`: the dashboard's setup
//! callback checks the id GitHub sent it). Same HTTP helper as the repository calls: rate limits waited out up to the
//! configured bound, logs without headers or bodies.
//!
//! The same client also speaks as a repository connection, with the connection's own token
//! (`AppClient::with_token`): what the repositories role reads and asks of a repository
//! webhook's delivery log, in the same shapes.
//!
//! Reads are retried on server and network errors; a `POST` never is: GitHub may have acted on
//! a request whose answer was lost, and a redelivery asked twice is a delivery sent twice.

use bytes::Bytes;
use reqwest::Method;
use time::OffsetDateTime;

use super::http::{self, bearer, Http};
use super::jwt::AppKey;
use super::{GithubAppConfig, NOT_CONFIGURED};
use crate::source::SourceError;

/// A client of the App's own endpoints (or of a repository's, with a connection's token).
#[derive(Debug)]
pub struct AppClient {
    reads: Http,
    writes: Http,
    credential: Credential,
}

#[derive(Debug)]
enum Credential {
    /// A fresh App JWT for each request.
    App(AppKey),
    /// A repository connection's token (its `Debug` shows nothing of it).
    Token(secrecy::SecretString),
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
    /// `404 Not Found: Not Found`, or just the status when GitHub gave no message.
    fn describe(&self) -> String {
        match reqwest::StatusCode::from_u16(self.status) {
            Ok(status) => http::describe(status, &self.message),
            Err(_) => self.status.to_string(),
        }
    }

    /// The body as `T`; errors say where, never quote the body.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SourceError> {
        http::parse(&self.body, what)
    }
}

/// An installation of the App, as `GET /app/installations/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installation {
    pub id: u64,
    /// The account's login (an enterprise's slug).
    pub account: String,
    /// `Organization`, `User` or `Enterprise`.
    pub account_type: String,
    /// `all` or `selected`.
    pub repository_selection: Option<String>,
    /// GitHub suspended it (`suspended_at` is set): its tokens are refused until it is resumed.
    pub suspended: bool,
}

impl AppClient {
    /// `GET /app/installations/{id}`: the installation `id` of this App, `None` when GitHub does
    /// not know it (or it belongs to another App). A 401 is the App's credentials refused.
    pub async fn installation(&self, id: u64) -> Result<Option<Installation>, SourceError> {
        #[derive(serde::Deserialize)]
        struct Body {
            id: u64,
            account: Account,
            target_type: Option<String>,
            repository_selection: Option<String>,
            suspended_at: Option<String>,
        }
        /// A user or organization has a `login` and a `type`; an enterprise a `slug` and
        /// neither (its kind is the installation's `target_type`).
        #[derive(serde::Deserialize)]
        struct Account {
            login: Option<String>,
            slug: Option<String>,
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let what = format!("installation {id}");
        let answer = self.get(&format!("/app/installations/{id}")).await?;
        match answer.status {
            200 => {
                let body: Body = answer.json(&what)?;
                let account = body.account.login.or(body.account.slug).ok_or_else(|| {
                    SourceError::Invalid(format!(
                        "GitHub's answer to {what} names no account (no login or slug)"
                    ))
                })?;
                Ok(Some(Installation {
                    id: body.id,
                    account,
                    account_type: body.account.kind.or(body.target_type).unwrap_or_default(),
                    repository_selection: body.repository_selection,
                    suspended: body.suspended_at.is_some(),
                }))
            }
            404 => Ok(None),
            401 => Err(SourceError::Auth(format!(
                "GitHub refused the App JWT for {what} ({}); check HOOKLOG_GITHUB_APP_ID and the \
                 App's private key",
                answer.describe()
            ))),
            _ => Err(SourceError::Invalid(format!(
                "GitHub answered {} to {what}",
                answer.describe()
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
            credential: Credential::App(AppKey::new(app_id, pem)?),
        })
    }

    /// A client that calls GitHub's API at `config.api_url` with `token` (a repository
    /// connection's), under the same retry and rate-limit policy as the App's.
    pub fn with_token(
        config: &GithubAppConfig,
        token: secrecy::SecretString,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            reads: Http::new(&config.api_url, config.retries, config.max_rate_limit_wait)?,
            writes: Http::new(&config.api_url, 0, config.max_rate_limit_wait)?,
            credential: Credential::Token(token),
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
        let answer = match &self.credential {
            Credential::App(key) => {
                let jwt = key.sign(OffsetDateTime::now_utc())?;
                http.send(method, path, &bearer(&jwt)?).await?
            }
            Credential::Token(token) => http.send(method, path, &bearer(token)?).await?,
        };
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
