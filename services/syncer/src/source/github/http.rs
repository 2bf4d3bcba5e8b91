//! The one way the GitHub App source talks HTTP: a request helper that waits out rate limits (up
//! to a bound), retries server and network errors with backoff, and hands every other answer back
//! as a status and body for the caller to read. Logs name the method, path and status, never a
//! header, token or body.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::limits::{backoff, jitter, rate_limit_wait};
use crate::source::SourceError;

const USER_AGENT: &str = concat!("hooklog/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two reads of a body; a stalled connection fails here and is retried.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole request, body included: a 100 MB blob over a slow link still fits.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// GitHub's `message` is quoted in errors up to this many characters.
const MESSAGE_CHARS: usize = 200;

/// An HTTP client bound to one GitHub API base URL, with the retry policy of the source.
#[derive(Debug)]
pub(super) struct Http {
    client: reqwest::Client,
    base: String,
    retries: u32,
    max_rate_limit_wait: Duration,
}

/// An answer that is neither a rate limit nor a server error: the caller decides what it means.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    /// The `Link` header's `rel="next"` URL, when GitHub pages the answer.
    pub next: Option<String>,
}

/// What a request came back with: an answer read in full, or (when the caller streams) a success
/// whose body is left unread. Only a 2xx is ever left open; every other status is read, so rate
/// limits and errors are handled the same whether the caller streams or not.
#[derive(Debug)]
pub(super) enum Reply {
    Read(Answer),
    Open(reqwest::Response),
}

/// Whether a successful answer's body is read before the helper returns, or handed to the caller
/// to stream (a commit's archive: too big to hold, and read as it arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    Read,
    Stream,
}

impl Http {
    pub(super) fn new(
        api_url: &str,
        retries: u32,
        max_rate_limit_wait: Duration,
    ) -> Result<Self, SourceError> {
        let base = api_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base).map_err(|_| bad_url(api_url))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_url(api_url));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let client = hooklog_infra::http::client_builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| {
                SourceError::Invalid(format!(
                    "the GitHub HTTP client could not be built: {}",
                    chain(&err)
                ))
            })?;
        Ok(Self {
            client,
            base: base.to_owned(),
            retries,
            max_rate_limit_wait,
        })
    }

    /// The path from the API root of `url` when it is on this API (a `Link` header's next
    /// page); `None` for another host, so no credential follows a link elsewhere.
    pub(super) fn path_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(self.base.as_str())
            .filter(|path| path.starts_with('/'))
    }

    /// Sends `method path` (path from the API root, starting with `/`) with `authorization`.
    /// Rate limits are waited out while the total wait stays within `max_rate_limit_wait`; 5xx
    /// and network errors are retried `retries` times. Any other answer is returned as is.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: &HeaderValue,
    ) -> Result<Answer, SourceError> {
        self.exchange(method, path, authorization, Body::Read)
            .await?
            .into_answer()
            .await
    }

    /// `send`, with a successful answer's body read in full or left open as `body` says.
    /// Redirects are followed by reqwest (at most 10), which drops `Authorization` when one leads
    /// to another host, port or scheme: a token is never handed to a download host.
    pub(super) async fn exchange(
        &self,
        method: Method,
        path: &str,
        authorization: &HeaderValue,
        body: Body,
    ) -> Result<Reply, SourceError> {
        let url = format!("{}{path}", self.base);
        let shown = path.split('?').next().unwrap_or(path);
        let mut retry = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            let attempt = retry + 1;
            let reply = self.once(method.clone(), &url, authorization, body).await;
            let (status, failure) = match reply {
                Err(err) => (
                    None,
                    format!("GitHub did not answer: {}", chain(&err.without_url())),
                ),
                Ok((Reply::Open(response), _)) => return Ok(Reply::Open(response)),
                Ok((Reply::Read(answer), _)) if answer.status.is_server_error() => (
                    Some(answer.status.as_u16()),
                    format!("GitHub answered {}", answer.status),
                ),
                Ok((Reply::Read(answer), headers)) => {
                    let Some(wait) = answer.rate_limit_wait(&headers) else {
                        return Ok(Reply::Read(answer));
                    };
                    if waited + wait > self.max_rate_limit_wait {
                        return Err(SourceError::RateLimited {
                            message: format!(
                                "GitHub asks to wait {}s before {method} {shown}, over the {}s \
                                 the syncer waits",
                                wait.as_secs(),
                                self.max_rate_limit_wait.as_secs()
                            ),
                            retry_after: Some(wait),
                        });
                    }
                    tracing::warn!(
                        %method,
                        path = shown,
                        status = answer.status.as_u16(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "GitHub rate limit; waiting before trying again"
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    continue;
                }
            };
            if retry >= self.retries {
                return Err(SourceError::Unavailable(format!(
                    "{method} {shown} after {attempt} attempts: {failure}"
                )));
            }
            let pause = backoff(retry, jitter());
            tracing::warn!(
                %method,
                path = shown,
                status,
                attempt,
                error = %failure,
                backoff_ms = pause.as_millis() as u64,
                "GitHub request failed; retrying"
            );
            tokio::time::sleep(pause).await;
            retry += 1;
        }
    }

    /// One request, body read in full (a body cut short is a network error, retried) unless it
    /// is a success the caller streams.
    async fn once(
        &self,
        method: Method,
        url: &str,
        authorization: &HeaderValue,
        body: Body,
    ) -> Result<(Reply, HeaderMap), reqwest::Error> {
        let response = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, authorization.clone())
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        if body == Body::Stream && status.is_success() {
            return Ok((Reply::Open(response), headers));
        }
        let body = response.bytes().await?;
        let next = next_link(&headers);
        Ok((Reply::Read(Answer { status, body, next }), headers))
    }
}

impl Reply {
    /// The answer, its body read now when it was left open.
    pub(super) async fn into_answer(self) -> Result<Answer, SourceError> {
        match self {
            Self::Read(answer) => Ok(answer),
            Self::Open(response) => {
                let status = response.status();
                let next = next_link(response.headers());
                let body = response.bytes().await.map_err(|err| {
                    SourceError::Unavailable(format!(
                        "GitHub's answer broke off: {}",
                        chain(&err.without_url())
                    ))
                })?;
                Ok(Answer { status, body, next })
            }
        }
    }
}

impl Answer {
    /// The wait GitHub asks for when this answer is a rate limit.
    fn rate_limit_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let message = match self.status {
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => self.message(),
            _ => return None,
        };
        rate_limit_wait(self.status, headers, &message, SystemTime::now())
    }

    /// The body as `T` (see [`parse`]).
    pub(super) fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, SourceError> {
        parse(&self.body, what)
    }

    /// GitHub's `message`, shortened and on one line; empty when there is none.
    pub(super) fn message(&self) -> String {
        #[derive(Deserialize)]
        struct Body {
            message: Option<String>,
        }
        serde_json::from_slice::<Body>(&self.body)
            .ok()
            .and_then(|body| body.message)
            .map(|m| {
                m.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(MESSAGE_CHARS)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `404 Not Found: Branch not found`, or just the status when GitHub gave no message.
    pub(super) fn describe(&self) -> String {
        describe(self.status, &self.message())
    }

    /// The usual meaning of an unexpected status for a call about `what`.
    pub(super) fn error(&self, what: &str) -> SourceError {
        let desc = self.describe();
        match self.status {
            StatusCode::UNAUTHORIZED => SourceError::Auth(format!(
                "GitHub refused the credentials for {what} ({desc})"
            )),
            StatusCode::FORBIDDEN => SourceError::Auth(format!(
                "GitHub forbade {what} ({desc}); check the App's permissions and the \
                 installation's repositories"
            )),
            StatusCode::NOT_FOUND => SourceError::NotFound(format!("{what} ({desc})")),
            _ => SourceError::Invalid(format!("GitHub answered {desc} to {what}")),
        }
    }
}

/// A body of GitHub's as `T`. Parse errors say where, never what: a body may hold a token.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|err| {
        SourceError::Invalid(format!(
            "GitHub's answer to {what} is not the JSON expected ({:?} error at line {}, column \
             {})",
            err.classify(),
            err.line(),
            err.column()
        ))
    })
}

/// `404 Not Found: Branch not found`, or just the status when GitHub gave no message.
pub(super) fn describe(status: StatusCode, message: &str) -> String {
    match message {
        "" => status.to_string(),
        m => format!("{status}: {m}"),
    }
}

/// The URL of `rel="next"` in a `Link` header (`<URL>; rel="next", <URL>; rel="last"`).
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| url.to_owned())
    })
}

/// An `Authorization: Bearer` value, marked sensitive so no `Debug` of a request shows it.
pub(super) fn bearer(secret: &SecretString) -> Result<HeaderValue, SourceError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).map_err(|_| {
            SourceError::Invalid("a GitHub credential is not a valid header value".to_owned())
        })?;
    value.set_sensitive(true);
    Ok(value)
}

fn bad_url(api_url: &str) -> SourceError {
    SourceError::Invalid(format!(
        "the GitHub API URL {api_url:?} is not an http(s) URL"
    ))
}

/// An error and its sources (`hooklog_infra::http::error_chain`). Callers strip the URL first
/// (`without_url`): after a redirect it is the download host's, which may carry a token.
pub(super) fn chain(err: &reqwest::Error) -> String {
    hooklog_infra::http::error_chain(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_owned()),
            next: None,
        }
    }

    #[test]
    fn statuses_map_to_the_source_errors_they_mean() {
        let forbidden = answer(
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert!(matches!(forbidden.error("x"), SourceError::Auth(_)));
        assert!(matches!(answer(401, "{}").error("x"), SourceError::Auth(_)));
        assert!(matches!(
            answer(404, "").error("x"),
            SourceError::NotFound(_)
        ));
        let other = answer(400, r#"{"message":"Problems parsing JSON"}"#).error("x");
        assert_eq!(
            other,
            SourceError::Invalid(
                "GitHub answered 400 Bad Request: Problems parsing JSON to x".into()
            )
        );
    }

    #[test]
    fn a_body_that_does_not_parse_is_invalid_without_quoting_it() {
        let err = answer(201, r#"{"token": 12345678}"#)
            .json::<std::collections::HashMap<String, String>>("the exchange")
            .unwrap_err();
        assert!(!err.to_string().contains("12345678"), "{err}");
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; \
                 rel=\"next\", <https://api.github.com/app/hook/deliveries?per_page=100>; \
                 rel=\"first\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9")
        );
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn a_next_link_is_followed_only_on_the_same_api() {
        let http = Http::new("https://ghe.example.com/api/v3/", 0, Duration::ZERO).unwrap();
        let path = |url| http.path_of(url);
        assert_eq!(
            path("https://ghe.example.com/api/v3/installation/repositories?page=2"),
            Some("/installation/repositories?page=2")
        );
        assert_eq!(path("https://ghe.example.com/api/v3x/installation"), None);
        assert_eq!(path("https://ghe.example.com.evil/api/v3/x"), None);
        assert_eq!(path("https://elsewhere.example.com/api/v3/x"), None);
        assert_eq!(path("http://ghe.example.com/api/v3/x"), None);
    }

    #[test]
    fn a_bearer_header_is_marked_sensitive() {
        let value = bearer(&SecretString::from("ghs_secret")).unwrap();
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("ghs_secret"));
    }

    #[test]
    fn an_api_url_that_is_not_http_is_refused() {
        assert!(Http::new("ftp://example.com", 0, Duration::ZERO).is_err());
        assert!(Http::new("not a url", 0, Duration::ZERO).is_err());
    }
}
