//! The fake's GitLab side: a project and its hooks in the shapes of the "Project webhooks API"
//! (v4), and deliveries sent as GitLab's `WebHookService` sends them: `X-Gitlab-Token` as set,
//! `X-Gitlab-Instance`, a fresh `X-Gitlab-Webhook-UUID` and `X-Gitlab-Event-UUID` per request,
//! and an `Idempotency-Key` that a retry sends again; `webhook-id` (the `Idempotency-Key`) and
//! `webhook-timestamp` always, and `webhook-signature` when the hook has a `signing_token`
//! (GitLab 19.0's Standard Webhooks form, computed here as GitLab's webhook guide shows it).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::Provider::Gitlab;
use super::{bearer, depth, json_object, paged};
use super::{Answer, FakeRepoHosts, Hook, PageQuery, Refusal, Refused, Repo, Shared};

/// The event flags of a project hook the fake keeps, as the API names them.
const EVENTS: [&str; 12] = [
    "push_events",
    "tag_push_events",
    "issues_events",
    "confidential_issues_events",
    "merge_requests_events",
    "note_events",
    "confidential_note_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "deployment_events",
    "releases_events",
];

/// What a GitLab delivery carried that a receiver keys on: `X-Gitlab-Event-UUID`,
/// `Idempotency-Key` and `X-Gitlab-Webhook-UUID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSent {
    pub event_uuid: String,
    pub idempotency_key: String,
    pub webhook_uuid: String,
}

/// The project endpoints, told apart by method and path depth: `GET /api/v4/projects/:id`,
/// `GET|POST …/hooks` (20 a page), `PUT|DELETE …/hooks/:hook_id` and `GET
/// …/hooks/:hook_id/events` (newest first, at most 20 a page as GitLab allows).
pub(super) async fn api(
    State(shared): State<Arc<Shared>>,
    (method, uri): (Method, Uri),
    Path(params): Path<Vec<String>>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let private = headers.get("private-token").and_then(|v| v.to_str().ok());
    let token = private.or_else(|| bearer(&headers));
    let hook_id = params.get(1).map(String::as_str).unwrap_or_default();
    let depth = depth(uri.path());
    let mut record = shared.record();
    let served = match record.visible(Gitlab, token, &params[0], depth > 5) {
        Err(refusal) => Err(refuse(refusal).into()),
        Ok(repo) => match (method.as_str(), depth) {
            ("GET", 5) => Ok(Json(project(repo, &shared.url)).into_response()),
            ("GET", 6) => {
                let hooks = repo.hooks.iter().map(|h| hook(h, repo.id)).collect();
                let base = format!("{}/api/v4/projects/{}/hooks", shared.url, repo.id);
                Ok(paged(hooks, &query, 20, &base, true))
            }
            ("POST", 6) => create(repo, shared.next_id(), &body),
            ("PUT", 7) => update(repo, hook_id, &body),
            ("DELETE", 7) if repo.remove(hook_id) => Ok(StatusCode::NO_CONTENT.into_response()),
            ("DELETE", 7) => Err(message(StatusCode::NOT_FOUND, "404 Not found").into()),
            ("GET", 8) => events(repo, hook_id, &query, &shared.url),
            _ => Err(message(StatusCode::NOT_FOUND, "404 Not Found").into()),
        },
    };
    served.unwrap_or_else(|refused| *refused.0)
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unknown => message(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
        Refusal::Hidden => message(StatusCode::NOT_FOUND, "404 Project Not Found"),
        Refusal::ReadOnly => message(StatusCode::FORBIDDEN, "403 Forbidden"),
    }
}

pub(super) fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// Grape's 400, `{"error": "…"}`.
fn bad_request(text: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": text }))).into_response()
}

/// "Get a single project", in part.
fn project(repo: &Repo, instance: &str) -> Value {
    let name = repo.name.rsplit('/').next().unwrap_or(&repo.name);
    json!({
        "id": repo.id,
        "name": name,
        "path": name,
        "path_with_namespace": repo.name,
        "default_branch": "main",
        "web_url": format!("{instance}/{}", repo.name),
        "http_url_to_repo": format!("{instance}/{}.git", repo.name),
    })
}

/// The hook as GitLab answers it: never its token.
fn hook(hook: &Hook, project_id: u64) -> Value {
    let flags = EVENTS.map(|e| (e.to_owned(), json!(hook.events.iter().any(|h| h == e))));
    let mut json: Map<String, Value> = flags.into_iter().collect();
    let fields = json!({
        "id": hook.id,
        "url": hook.url,
        "name": "",
        "description": "",
        "project_id": project_id,
        "created_at": hook.created_at,
        "push_events_branch_filter": hook.branch_filter,
        "branch_filter_strategy": "wildcard",
        "enable_ssl_verification": hook.ssl_verification,
        "repository_update_events": false,
        "alert_status": "executable",
        "disabled_until": null,
        "url_variables": [],
        "custom_headers": [],
        "token_present": hook.secret.is_some(),
        "signing_token_present": hook.signing_token.is_some(),
    });
    json.extend(fields.as_object().cloned().unwrap_or_default());
    Value::Object(json)
}

/// The `url` of a `POST` or `PUT` body: required (Grape's 400), and HTTP(S) (422).
fn url(body: &Value) -> Result<String, Refused> {
    let url = body["url"]
        .as_str()
        .ok_or_else(|| bad_request("url is missing"))?;
    let invalid = || message(StatusCode::UNPROCESSABLE_ENTITY, "Invalid url given");
    match url.starts_with("http://") || url.starts_with("https://") {
        true => Ok(url.to_owned()),
        false => Err(invalid().into()),
    }
}

/// A `signing_token` that is not `whsec_` and the base64 of 32 bytes is refused (422), as
/// GitLab refuses it; checked before anything changes.
fn check_signing_token(body: &Value) -> Result<(), Refused> {
    let Some(token) = body["signing_token"].as_str() else {
        return Ok(());
    };
    let key = token.strip_prefix("whsec_").map(|key| STANDARD.decode(key));
    match key {
        Some(Ok(key)) if key.len() == 32 => Ok(()),
        _ => {
            let text = "signing_token must be whsec_ followed by a base64-encoded 32-byte key";
            Err(message(StatusCode::UNPROCESSABLE_ENTITY, text).into())
        }
    }
}

/// Applies the attributes of a `POST` or `PUT` body to `hook`.
fn apply(hook: &mut Hook, body: &Value) {
    if let Some(token) = body["signing_token"].as_str() {
        hook.signing_token = Some(token.to_owned());
    }
    for event in EVENTS {
        // A Grape `Boolean`: JSON `true`/`false`, or the strings.
        let flag = &body[event];
        let flag = flag
            .as_bool()
            .or_else(|| flag.as_str().and_then(|s| s.parse().ok()));
        hook.events.retain(|e| flag.is_none() || e != event);
        if flag == Some(true) {
            hook.events.push(event.to_owned());
        }
    }
    hook.events
        .sort_by_key(|e| EVENTS.iter().position(|known| known == e));
    if let Some(filter) = body["push_events_branch_filter"].as_str() {
        hook.branch_filter = filter.to_owned();
    }
    let verify = body["enable_ssl_verification"].as_bool();
    hook.ssl_verification = verify.unwrap_or(hook.ssl_verification);
    if let Some(token) = body["token"].as_str() {
        hook.secret = Some(token.to_owned()).filter(|t| !t.is_empty());
    }
}

/// "Add a webhook to a project": 201 with the hook. GitLab has no uniqueness rule for URLs, so
/// the same URL again is another hook.
fn create(repo: &mut Repo, id: u64, body: &[u8]) -> Answer {
    let body = json_object(body).ok_or_else(|| bad_request("body is invalid"))?;
    let mut new = Hook::new(id, &url(&body)?, vec!["push_events".to_owned()]);
    check_signing_token(&body)?;
    apply(&mut new, &body);
    let json = hook(&new, repo.id);
    repo.hooks.push(new);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// "Get a list of project webhook events": `per_page` from 1 to 20 (Grape's 400 otherwise).
fn events(repo: &mut Repo, id: &str, query: &PageQuery, instance: &str) -> Answer {
    let project_id = repo.id;
    let found = repo.hook(id);
    let found = found.ok_or_else(|| message(StatusCode::NOT_FOUND, "404 Not found"))?;
    if query.per_page.is_some_and(|n| !(1..=20).contains(&n)) {
        return Err(bad_request("per_page does not have a valid value").into());
    }
    let newest_first = found.gitlab_events.iter().rev().cloned().collect();
    let base = format!("{instance}/api/v4/projects/{project_id}/hooks/{id}/events");
    Ok(paged(newest_first, query, 20, &base, true))
}

/// "Edit a project webhook": `url` is required, and a changed URL without `token` resets the
/// token, as GitLab documents (and here the signing token too).
fn update(repo: &mut Repo, id: &str, body: &[u8]) -> Answer {
    let project_id = repo.id;
    let found = repo.hook(id);
    let found = found.ok_or_else(|| message(StatusCode::NOT_FOUND, "404 Not found"))?;
    let body = json_object(body).ok_or_else(|| bad_request("body is invalid"))?;
    let url = url(&body)?;
    check_signing_token(&body)?;
    if url != found.url {
        (found.url, found.secret, found.signing_token) = (url, None, None);
    }
    apply(found, &body);
    Ok(Json(hook(found, project_id)).into_response())
}

impl FakeRepoHosts {
    /// Keeps a sent event in its hook's log as GitLab's `WebHookLog` entity shows it: the token
    /// redacted, `response_status` a string (`"internal error"` when nothing answered).
    #[allow(clippy::too_many_arguments)]
    fn log_gitlab_event(
        &self,
        path: &str,
        hook_id: u64,
        url: &str,
        event: &str,
        headers: &[(&str, String)],
        body: &[u8],
        code: u16,
        duration: f64,
    ) {
        let request_headers: Map<String, Value> = headers
            .iter()
            .map(|(name, value)| {
                let value = match *name {
                    "X-Gitlab-Token" => "[REDACTED]".to_owned(),
                    _ => value.clone(),
                };
                ((*name).to_owned(), Value::String(value))
            })
            .collect();
        let trigger = event
            .strip_suffix(" Hook")
            .unwrap_or(event)
            .to_lowercase()
            .replace(' ', "_");
        let status = match code {
            0 => "internal error".to_owned(),
            code => code.to_string(),
        };
        let entry = json!({
            "id": self.shared.next_id(),
            "url": url,
            "trigger": format!("{trigger}_hooks"),
            "request_headers": request_headers,
            "request_data": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
            "response_headers": {},
            "response_body": "",
            "execution_duration": duration,
            "response_status": status,
            "created_at": super::now(),
        });
        let mut record = self.shared.record();
        record.hook(Gitlab, path, hook_id).gitlab_events.push(entry);
    }

    /// Sends an `event_header` (`"Push Hook"`, `"Pipeline Hook"`, …) delivery of `body` from hook
    /// `hook_id` of the project `path` to its URL, like GitLab: a new event, so a fresh
    /// `Idempotency-Key` and `X-Gitlab-Event-UUID`. The receiver's status code (0 when it did not
    /// answer) and what the request carried.
    pub async fn send_gitlab(
        &self,
        path: &str,
        hook_id: u64,
        event_header: &str,
        body: Vec<u8>,
    ) -> (u16, GitlabSent) {
        let key = uuid::Uuid::new_v4().to_string();
        self.deliver_gitlab(path, hook_id, key, event_header, body)
            .await
    }

    /// Sends `sent`'s event again as GitLab retries one ("Resend Request", or the resend API):
    /// the same `Idempotency-Key`, and a new `X-Gitlab-Event-UUID` and `X-Gitlab-Webhook-UUID`
    /// (GitLab makes both per request), with the hook's current URL and token.
    pub async fn retry_gitlab(
        &self,
        path: &str,
        hook_id: u64,
        sent: &GitlabSent,
        event_header: &str,
        body: Vec<u8>,
    ) -> (u16, GitlabSent) {
        let key = sent.idempotency_key.clone();
        self.deliver_gitlab(path, hook_id, key, event_header, body)
            .await
    }

    async fn deliver_gitlab(
        &self,
        path: &str,
        hook_id: u64,
        idempotency_key: String,
        event: &str,
        body: Vec<u8>,
    ) -> (u16, GitlabSent) {
        let (url, token, signing_token) = {
            let mut record = self.shared.record();
            let hook = record.hook(Gitlab, path, hook_id);
            (
                hook.url.clone(),
                hook.secret.clone(),
                hook.signing_token.clone(),
            )
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
            .to_string();
        let uuid = || uuid::Uuid::new_v4().to_string();
        let (event_uuid, webhook_uuid) = (uuid(), uuid());
        let mut headers = vec![
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", "GitLab/17.6.0".to_owned()),
            ("Idempotency-Key", idempotency_key.clone()),
            ("X-Gitlab-Event", event.to_owned()),
            ("X-Gitlab-Webhook-UUID", webhook_uuid.clone()),
            ("X-Gitlab-Instance", self.shared.url.clone()),
            ("X-Gitlab-Event-UUID", event_uuid.clone()),
        ];
        headers.extend(token.map(|token| ("X-Gitlab-Token", token)));
        headers.push(("webhook-id", idempotency_key.clone()));
        headers.push(("webhook-timestamp", timestamp.clone()));
        if let Some(signing_token) = signing_token {
            let signature = standard_signature(&signing_token, &idempotency_key, &timestamp, &body);
            headers.push(("webhook-signature", signature));
        }
        let (code, _, duration) = self.shared.post(&url, &headers, body.clone()).await;
        self.log_gitlab_event(path, hook_id, &url, event, &headers, &body, code, duration);
        let sent = GitlabSent {
            event_uuid,
            idempotency_key,
            webhook_uuid,
        };
        (code, sent)
    }
}

/// `v1,` and the base64 of the HMAC-SHA256 of `{id}.{timestamp}.{body}` under the token's key,
/// as GitLab's webhook guide computes it.
fn standard_signature(signing_token: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let key = STANDARD
        .decode(signing_token.trim_start_matches("whsec_"))
        .expect("a signing token the fake took");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}
