//! The providers' webhook APIs, as the `repositories` role calls them: GitHub's repository
//! webhooks (`/repos/{owner}/{repo}/hooks`) and GitLab's project hooks
//! (`/projects/:id/hooks`), each with the connection's own token.
//!
//! Every call is made once: the pass that made it decides what a failure means (a creation
//! that failed is reported for an operator to retry; a deletion is tried again by the next
//! pass), and a creation that reached the provider but whose answer was lost is found again
//! by its URL. Errors quote the provider's status and message, never the token, the secret or
//! a request body; logs name the method and path only.

use std::time::Duration;

use hooklog_domain::repository_connection::{Provider, ProviderRepository};
use hooklog_syncer::source::github::path_segment;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, LINK};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

const USER_AGENT: &str = concat!("hooklog/", env!("CARGO_PKG_VERSION"));
const TIMEOUT: Duration = Duration::from_secs(30);
/// A provider's `message` is quoted in errors up to this many characters.
const MESSAGE_CHARS: usize = 200;
/// Pages of hooks read at most (100 each): a repository has at most 20 webhooks on GitHub.
const MAX_PAGES: usize = 20;

/// The events a connection's GitHub webhook sends.
pub const GITHUB_EVENTS: &[&str] = &["push", "workflow_run", "pull_request"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("{provider} answered {status}: {message}")]
    Status {
        provider: Provider,
        status: u16,
        message: String,
    },
    #[error("{provider} could not be reached: {detail}")]
    Unreachable { provider: Provider, detail: String },
    #[error("{provider} answered something unexpected: {detail}")]
    Unexpected { provider: Provider, detail: String },
    #[error("the token cannot be sent in an HTTP header (it has characters headers do not take)")]
    BadToken,
}

/// One webhook as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hook {
    pub id: u64,
    pub url: String,
}

/// One attempt in a webhook's delivery log, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookAttempt {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    /// 0 when nothing answered.
    pub status_code: u16,
    /// `OK`, `Invalid HTTP Response: 503`, …
    pub status: String,
    #[serde(default)]
    pub redelivery: bool,
}

/// Pages of a GitLab hook's events read, 20 each: as many attempts as GitHub's log gives.
const GITLAB_EVENT_PAGES: usize = 5;

/// One event of a GitLab hook, in part ("Get a list of project webhook events").
#[derive(Deserialize)]
struct GitlabEvent {
    id: u64,
    created_at: String,
    response_status: String,
    #[serde(default)]
    request_headers: std::collections::HashMap<String, String>,
}

impl GitlabEvent {
    fn attempt(self) -> HookAttempt {
        let header = |name: &str| {
            self.request_headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let guid = header("Idempotency-Key")
            .or_else(|| header("X-Gitlab-Event-UUID"))
            .unwrap_or_default();
        HookAttempt {
            id: self.id,
            guid,
            delivered_at: self.created_at,
            status_code: self.response_status.parse().unwrap_or(0),
            status: self.response_status,
            redelivery: false,
        }
    }
}

#[derive(Deserialize)]
struct GithubHook {
    id: u64,
    config: GithubHookConfig,
}

#[derive(Deserialize)]
struct GithubHookConfig {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Identified {
    id: u64,
}

/// A repository as its provider answers "get a repository" (GitHub) or "get a single project"
/// (GitLab), in part.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepositoryFacts {
    /// The numeric id, stable across renames.
    pub id: u64,
    /// GitLab's `path_with_namespace` (`group/subgroup/name`); GitHub answers `full_name`,
    /// which is not read.
    #[serde(default)]
    pub path_with_namespace: Option<String>,
}

/// The providers' APIs, by base URL.
#[derive(Debug, Clone)]
pub struct HookApi {
    client: reqwest::Client,
    github: String,
    gitlab: String,
}

impl HookApi {
    pub fn new(github_api_url: &str, gitlab_api_url: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: hooklog_infra::http::client_builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            github: github_api_url.trim_end_matches('/').to_owned(),
            gitlab: gitlab_api_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The API path of the repository, each segment encoded.
    fn repository_path(provider: Provider, repository: &ProviderRepository) -> String {
        let encoded: Vec<String> = repository.as_str().split('/').map(path_segment).collect();
        match provider {
            Provider::Github => format!("/repos/{}", encoded.join("/")),
            // GitLab takes a project's path as one URL-encoded segment.
            Provider::Gitlab => format!("/projects/{}", encoded.join("%2F")),
        }
    }

    async fn call(
        &self,
        provider: Provider,
        method: Method,
        path_or_url: &str,
        token: &SecretString,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value, Option<String>), ProviderError> {
        let base = match provider {
            Provider::Github => &self.github,
            Provider::Gitlab => &self.gitlab,
        };
        let url = if path_or_url.starts_with(base.as_str()) {
            path_or_url.to_owned()
        } else {
            format!("{base}{path_or_url}")
        };
        let (name, value) = match provider {
            Provider::Github => (AUTHORIZATION, format!("Bearer {}", token.expose_secret())),
            Provider::Gitlab => (
                HeaderName::from_static("private-token"),
                token.expose_secret().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| ProviderError::BadToken)?;
        value.set_sensitive(true);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .header(name, value)
            .header(reqwest::header::USER_AGENT, USER_AGENT);
        if provider == Provider::Github {
            request = request
                .header(ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        tracing::debug!(%provider, %method, path = %path_or_url, "provider call");
        let response = request
            .send()
            .await
            .map_err(|err| ProviderError::Unreachable {
                provider,
                detail: hooklog_infra::http::error_chain(&err),
            })?;
        let status = response.status();
        let next = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .filter(|link| link.starts_with(base.as_str()));
        let bytes = response
            .bytes()
            .await
            .map_err(|err| ProviderError::Unreachable {
                provider,
                detail: hooklog_infra::http::error_chain(&err),
            })?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if !status.is_success() {
            return Err(ProviderError::Status {
                provider,
                status: status.as_u16(),
                message: message(&value, status),
            });
        }
        Ok((status, value, next))
    }

    /// The repository's numeric id (what stays when it is renamed) and, on GitLab, its path.
    pub async fn repository(
        &self,
        provider: Provider,
        repository: &ProviderRepository,
        token: &SecretString,
    ) -> Result<RepositoryFacts, ProviderError> {
        let path = Self::repository_path(provider, repository);
        let (_, value, _) = self.call(provider, Method::GET, &path, token, None).await?;
        decode::<RepositoryFacts>(provider, value, "the repository")
    }

    /// Where git reads the GitLab project `path` over HTTPS: on the GitLab of the configured API
    /// (`HOOKLOG_GITLAB_API_URL` without its `/api/v4`), never where an answer says, so the
    /// token the syncer sends goes only to that host. `None` when the API URL does not end in
    /// `/api/v4` or the path is not a project path.
    pub fn gitlab_clone_url(&self, path: &str) -> Option<String> {
        let web = self.gitlab.strip_suffix("/api/v4")?;
        let path = hooklog_domain::ids::RepositoryName::parse_project_path(path).ok()?;
        Some(format!("{web}/{}.git", path.as_str()))
    }

    /// Every webhook of the repository.
    pub async fn hooks(
        &self,
        provider: Provider,
        repository: &ProviderRepository,
        token: &SecretString,
    ) -> Result<Vec<Hook>, ProviderError> {
        let first = format!(
            "{}/hooks?per_page=100",
            Self::repository_path(provider, repository)
        );
        Ok(match provider {
            Provider::Github => self
                .pages::<GithubHook>(provider, first, token, MAX_PAGES, "the webhook list")
                .await?
                .into_iter()
                .filter_map(|h| h.config.url.map(|url| Hook { id: h.id, url }))
                .collect(),
            Provider::Gitlab => {
                self.pages(provider, first, token, MAX_PAGES, "the hook list")
                    .await?
            }
        })
    }

    /// The items of up to `max_pages` pages from `first` on, each page a JSON array of `T`,
    /// following each answer's `rel="next"` link.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        provider: Provider,
        first: String,
        token: &SecretString,
        max_pages: usize,
        what: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut next = Some(first);
        let mut items = vec![];
        for _ in 0..max_pages {
            let Some(page) = next.take() else { break };
            let (_, value, link) = self.call(provider, Method::GET, &page, token, None).await?;
            items.extend(decode::<Vec<T>>(provider, value, what)?);
            next = link;
        }
        Ok(items)
    }

    fn hook_body(provider: Provider, url: &str, secret: &SecretString) -> Value {
        match provider {
            Provider::Github => json!({
                "name": "web",
                "active": true,
                "events": GITHUB_EVENTS,
                "config": {
                    "url": url,
                    "content_type": "json",
                    "secret": secret.expose_secret(),
                    "insecure_ssl": "0",
                },
            }),
            Provider::Gitlab => json!({
                "url": url,
                "token": secret.expose_secret(),
                // GitLab 19.0 and later sign with it (`webhook-signature`); earlier ones ignore it.
                "signing_token": gitlab_signing_token(secret),
                "push_events": true,
                "pipeline_events": true,
                "merge_requests_events": true,
                "enable_ssl_verification": true,
            }),
        }
    }

    /// Creates a webhook posting to `url`, signed with (GitLab: sending) `secret`.
    pub async fn create(
        &self,
        provider: Provider,
        repository: &ProviderRepository,
        token: &SecretString,
        url: &str,
        secret: &SecretString,
    ) -> Result<u64, ProviderError> {
        let path = format!("{}/hooks", Self::repository_path(provider, repository));
        let body = Self::hook_body(provider, url, secret);
        let (_, value, _) = self
            .call(provider, Method::POST, &path, token, Some(&body))
            .await?;
        decode::<Identified>(provider, value, "the created webhook").map(|h| h.id)
    }

    /// Gives webhook `hook_id` this connection's URL, secret and events (adoption).
    pub async fn update(
        &self,
        provider: Provider,
        repository: &ProviderRepository,
        token: &SecretString,
        hook_id: u64,
        url: &str,
        secret: &SecretString,
    ) -> Result<(), ProviderError> {
        let path = format!(
            "{}/hooks/{hook_id}",
            Self::repository_path(provider, repository)
        );
        let method = match provider {
            Provider::Github => Method::PATCH,
            Provider::Gitlab => Method::PUT,
        };
        let body = Self::hook_body(provider, url, secret);
        self.call(provider, method, &path, token, Some(&body))
            .await
            .map(|_| ())
    }

    /// The newest attempts (up to 100) of GitHub repository webhook `hook_id`, newest first.
    pub async fn attempts(
        &self,
        repository: &ProviderRepository,
        token: &SecretString,
        hook_id: u64,
    ) -> Result<Vec<HookAttempt>, ProviderError> {
        let path = format!(
            "{}/hooks/{hook_id}/deliveries?per_page=100",
            Self::repository_path(Provider::Github, repository)
        );
        let (_, value, _) = self
            .call(Provider::Github, Method::GET, &path, token, None)
            .await?;
        decode(Provider::Github, value, "the webhook's delivery log")
    }

    /// The newest events (up to 100, five pages of GitLab's 20) of GitLab project hook
    /// `hook_id`, newest first, as attempts: the `Idempotency-Key` each was sent with as its
    /// GUID, `response_status` as the status (its code 0 when it is no number: `internal
    /// error`, nothing answered). GitLab keeps a hook's events for 7 days.
    pub async fn gitlab_events(
        &self,
        repository: &ProviderRepository,
        token: &SecretString,
        hook_id: u64,
    ) -> Result<Vec<HookAttempt>, ProviderError> {
        let first = format!(
            "{}/hooks/{hook_id}/events?per_page=20",
            Self::repository_path(Provider::Gitlab, repository)
        );
        let events: Vec<GitlabEvent> = self
            .pages(
                Provider::Gitlab,
                first,
                token,
                GITLAB_EVENT_PAGES,
                "the hook's events",
            )
            .await?;
        let mut attempts: Vec<HookAttempt> = events.into_iter().map(GitlabEvent::attempt).collect();
        attempts.sort_by_key(|attempt| std::cmp::Reverse(attempt.id));
        Ok(attempts)
    }

    /// Deletes webhook `hook_id`; one that is gone already counts as deleted.
    pub async fn delete(
        &self,
        provider: Provider,
        repository: &ProviderRepository,
        token: &SecretString,
        hook_id: u64,
    ) -> Result<(), ProviderError> {
        let path = format!(
            "{}/hooks/{hook_id}",
            Self::repository_path(provider, repository)
        );
        match self
            .call(provider, Method::DELETE, &path, token, None)
            .await
        {
            Ok(_) | Err(ProviderError::Status { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The signing token a connection's GitLab hook gets: a key derived from the connection's
/// secret, not the secret, since GitLab sends the secret in clear as `X-Gitlab-Token` (see
/// [`hooklog_domain::gitlab`]).
fn gitlab_signing_token(secret: &SecretString) -> String {
    let secret = hooklog_domain::github::WebhookSecret::new(secret.expose_secret());
    hooklog_domain::gitlab::SigningKey::of(&secret).token()
}

fn decode<T: serde::de::DeserializeOwned>(
    provider: Provider,
    value: Value,
    what: &str,
) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|err| ProviderError::Unexpected {
        provider,
        detail: format!("{what} does not decode: {err}"),
    })
}

/// The provider's `message` (GitHub: with its first validation error), or the status's name.
fn message(value: &Value, status: StatusCode) -> String {
    let mut text = match value.get("message") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    if let Some(detail) = value.pointer("/errors/0/message").and_then(Value::as_str) {
        text = format!("{text} ({detail})");
    }
    text.chars().take(MESSAGE_CHARS).collect()
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_encode_each_segment_and_gitlab_takes_one() {
        let github = ProviderRepository::parse(Provider::Github, "octo/docs").unwrap();
        assert_eq!(
            HookApi::repository_path(Provider::Github, &github),
            "/repos/octo/docs"
        );
        let gitlab = ProviderRepository::parse(Provider::Gitlab, "group/sub/na me+").ok();
        assert!(gitlab.is_none(), "whitespace is refused before any path");
        let gitlab = ProviderRepository::parse(Provider::Gitlab, "group/sub/n+x").unwrap();
        assert_eq!(
            HookApi::repository_path(Provider::Gitlab, &gitlab),
            "/projects/group%2Fsub%2Fn%2Bx"
        );
        let id = ProviderRepository::parse(Provider::Gitlab, "1234").unwrap();
        assert_eq!(
            HookApi::repository_path(Provider::Gitlab, &id),
            "/projects/1234"
        );
    }

    #[test]
    fn messages_quote_the_provider_and_its_first_validation_error() {
        let value = json!({"message": "Validation Failed", "errors": [{"message": "Hook already exists on this repository"}]});
        assert_eq!(
            message(&value, StatusCode::UNPROCESSABLE_ENTITY),
            "Validation Failed (Hook already exists on this repository)"
        );
        assert_eq!(
            message(&Value::Null, StatusCode::BAD_GATEWAY),
            "Bad Gateway"
        );
    }

    #[test]
    fn the_next_page_is_the_rel_next_link() {
        let header = "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        assert_eq!(next_link("<https://a/x?page=1>; rel=\"prev\""), None);
    }
}
