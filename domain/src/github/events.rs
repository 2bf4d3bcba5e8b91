//! The parts of GitHub's webhook payloads that hooklog acts on, as typed structs. Only what the
//! connector decides on is read; everything else stays in the stored raw body. A payload that
//! lacks a field marked required here cannot be acted on and is a dead letter, not a guess.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::payload::{form_payload, is_form, PayloadError};

/// Why a verified delivery's payload cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub enum EventPayloadError {
    #[error(transparent)]
    Format(#[from] PayloadError),
    #[error("the {event} payload does not have the expected shape: {reason}")]
    Shape { event: String, reason: String },
}

/// The JSON document of a body, unwrapping GitHub's form encoding (`payload=<urlencoded JSON>`).
pub fn json_document<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, [u8]>, PayloadError> {
    if is_form(content_type) {
        form_payload(body).map(|payload| Cow::Owned(payload.into_bytes()))
    } else {
        Ok(Cow::Borrowed(body))
    }
}

/// Parses `body` as the payload of `event`.
pub fn parse<T: DeserializeOwned>(
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, EventPayloadError> {
    let json = json_document(content_type, body)?;
    serde_json::from_slice(&json).map_err(|err| EventPayloadError::Shape {
        event: event.to_owned(),
        reason: err.to_string(),
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryRef {
    pub id: u64,
    pub full_name: String,
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// `push`.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// The installation object of `installation` events.
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: u64,
    pub account: Account,
    #[serde(default)]
    pub repository_selection: Option<String>,
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
}

/// `installation`: created, deleted, suspend, unsuspend, new_permissions_accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default)]
    pub repositories: Option<Vec<RepositoryRef>>,
}

/// `installation_repositories`: added, removed.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: InstallationRef,
    #[serde(default)]
    pub repositories_added: Vec<RepositoryRef>,
    #[serde(default)]
    pub repositories_removed: Vec<RepositoryRef>,
}

/// `repository`: renamed, transferred and deleted are acted on.
#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryEvent {
    pub action: String,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `installation_target`: the account the App is installed on was renamed.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationTargetEvent {
    pub action: String,
    pub account: Account,
    pub installation: InstallationRef,
}

/// `ping`: sent when a webhook is created; App pings carry no installation.
#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `workflow_run`: a run of a GitHub Actions workflow was requested, started or completed.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRunPayload,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunPayload {
    pub id: u64,
    pub workflow_id: u64,
    #[serde(default)]
    pub name: Option<String>,
    /// None for a run of a deleted branch or a tag.
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    pub run_number: u64,
    #[serde(default = "first_attempt")]
    pub run_attempt: u64,
    #[serde(default)]
    pub conclusion: Option<String>,
    pub html_url: String,
    pub updated_at: String,
}

fn first_attempt() -> u64 {
    1
}

/// `pull_request`: a pull request was opened, edited, closed, merged, reopened, …
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequestPayload,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestPayload {
    pub number: u64,
    #[serde(default)]
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
    pub html_url: String,
    pub updated_at: String,
    pub head: PullRequestBranch,
    pub base: PullRequestBranch,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestBranch {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

/// GitLab's Push Hook (`X-Gitlab-Event: Push Hook`): `before` is all zeros for a new branch,
/// `after` all zeros for a deleted one; GitLab does not say whether a push was forced.
#[derive(Debug, Clone, Deserialize)]
pub struct GitlabPushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    pub project: GitlabProject,
}

/// GitLab's Pipeline Hook (`X-Gitlab-Event: Pipeline Hook`).
#[derive(Debug, Clone, Deserialize)]
pub struct GitlabPipelineEvent {
    pub object_attributes: GitlabPipeline,
    pub project: GitlabProject,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitlabPipeline {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub tag: bool,
    pub sha: String,
    /// `success`, `failed`, `running`, `pending`, `canceled`, `skipped`, …
    pub status: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitlabProject {
    pub id: u64,
    #[serde(default)]
    pub web_url: Option<String>,
}

/// GitLab's Merge Request Hook.
#[derive(Debug, Clone, Deserialize)]
pub struct GitlabMergeRequestEvent {
    pub object_attributes: GitlabMergeRequest,
    pub project: GitlabProject,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitlabMergeRequest {
    pub iid: u64,
    #[serde(default)]
    pub title: String,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: String,
    #[serde(default)]
    pub action: Option<String>,
    pub source_branch: String,
    pub target_branch: String,
    pub last_commit: GitlabCommit,
    pub url: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitlabCommit {
    pub id: String,
}

/// A GitLab webhook time: RFC 3339, or the `2016-08-12 15:23:28 UTC` form its hooks also use.
pub fn gitlab_time(text: &str) -> Option<String> {
    if let Some(utc) = text.strip_suffix(" UTC") {
        let (date, time) = utc.split_once(' ')?;
        return Some(format!("{date}T{time}Z"));
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::payload::FORM;
    use super::*;

    #[test]
    fn form_encoded_payloads_are_unwrapped() {
        let body = b"payload=%7B%22zen%22%3A%22z%22%2C%22hook_id%22%3A7%7D";
        let ping: PingEvent = parse("ping", Some(FORM), body).unwrap();
        assert_eq!(ping.hook_id, Some(7));
        assert_eq!(ping.zen.as_deref(), Some("z"));
    }

    #[test]
    fn a_push_without_a_repository_is_refused_with_the_reason() {
        let err = parse::<PushEvent>(
            "push",
            None,
            br#"{"ref":"refs/heads/main","before":"a","after":"b"}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("missing field `repository`"),
            "{err}"
        );
    }
}
