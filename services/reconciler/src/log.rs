//! A webhook's delivery log as GitHub serves it (`GET /app/hook/deliveries`, or a repository
//! webhook's `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`, in the same shape): newest
//! first, `per_page` up to 100, the next page's `cursor` in the `Link` header.

use hooklog_domain::clock::Timestamp;
use hooklog_domain::github_delivery::GithubAttempt;
use hooklog_domain::repository_connection::ConnectionId;
use hooklog_syncer::source::github::AppClient;
use hooklog_syncer::source::SourceError;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::hook::HookLog;

/// The largest page GitHub serves.
pub const PER_PAGE: u32 = 100;

/// One item of the log, in GitHub's shape (fields hooklog does not read are skipped).
#[derive(Debug, Clone, Deserialize)]
pub struct LogItem {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repository_id: Option<u64>,
}

impl LogItem {
    /// When GitHub attempted it.
    pub fn delivered_at(&self) -> Result<Timestamp, SourceError> {
        OffsetDateTime::parse(&self.delivered_at, &Rfc3339)
            .map(|at| Timestamp(at.into()))
            .map_err(|err| {
                SourceError::Invalid(format!(
                    "GitHub's delivery {} has a delivered_at that is not RFC 3339 ({err})",
                    self.id
                ))
            })
    }

    /// The attempt, delivered at `delivered_at` (its [`LogItem::delivered_at`]), listed by the
    /// webhook of `connection` (`None`: the App's).
    pub fn attempt(
        &self,
        delivered_at: Timestamp,
        connection: Option<ConnectionId>,
    ) -> GithubAttempt {
        GithubAttempt {
            connection_id: connection,
            github_id: self.id,
            event: self.event.clone(),
            action: self.action.clone(),
            installation_id: self.installation_id,
            repository_id: self.repository_id,
            delivered_at,
            status: self.status.clone(),
            status_code: self.status_code,
            redelivery: self.redelivery,
        }
    }
}

/// One page of the log and the path of the next one, if any.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<LogItem>,
    pub next: Option<String>,
}

/// Reads the page at `path` (the first page's, or a `next` from the previous page) of `hook`'s
/// log.
pub async fn page(client: &AppClient, path: &str, hook: &HookLog) -> Result<Page, SourceError> {
    let what = hook.what();
    let answer = client.get(path).await?;
    match answer.status {
        200 => Ok(Page {
            items: answer.json(&what)?,
            next: answer.next,
        }),
        401 | 403 => Err(SourceError::Auth(format!(
            "GitHub refused the credentials for {what} ({}: {}); {}",
            answer.status,
            answer.message,
            hook.credentials()
        ))),
        404 => Err(SourceError::NotFound(format!(
            "{what} (404: {}); the webhook is gone",
            answer.message
        ))),
        status => Err(SourceError::Invalid(format!(
            "GitHub answered {status} ({}) to {what}",
            answer.message
        ))),
    }
}
