//! The fake's GitHub side: a repository, its webhooks and each hook's delivery log in the shapes
//! of "REST API endpoints for repository webhooks" and "… repository webhook deliveries", and
//! deliveries sent like GitHub's (`X-GitHub-*` headers, `X-Hub-Signature` and
//! `X-Hub-Signature-256` with the hook's secret, a `form` hook's body as `payload=`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use hooklog_domain::github::{Signature, WebhookSecret};
use serde_json::{json, Value};
use sha1::Sha1;

use super::Provider::Github;
use super::{bearer, depth, json_object, now, paged, strings};
use super::{Answer, FakeRepoHosts, Hook, PageQuery, Refusal, Refused, Repo, Shared};

const DOCS: &str = "https://docs.github.com/rest/repos/webhooks";

/// One attempt at a delivery, as GitHub logs it.
pub(super) struct Delivery {
    id: u64,
    delivered_at: String,
    redelivery: bool,
    duration: f64,
    status: String,
    status_code: u16,
    request: Arc<Sent>,
}

/// A delivery's request, kept to be sent again as it was.
struct Sent {
    guid: String,
    event: String,
    action: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// The repository endpoints, told apart by method and path depth: `GET /repos/{owner}/{repo}`,
/// `GET|POST …/hooks` (30 a page), `PATCH|DELETE …/hooks/{hook_id}`, `GET …/deliveries`.
pub(super) async fn api(
    State(shared): State<Arc<Shared>>,
    (method, uri): (Method, Uri),
    Path(params): Path<Vec<String>>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full_name = format!("{}/{}", params[0], params[1]);
    let hook_id = params.get(2).map(String::as_str).unwrap_or_default();
    let depth = depth(uri.path());
    let mut record = shared.record();
    let served = match record.visible(Github, bearer(&headers), &full_name, depth > 4) {
        Err(refusal) => Err(refuse(refusal).into()),
        Ok(repo) => match (method.as_str(), depth) {
            ("GET", 4) => Ok(Json(repository(repo, &shared.url)).into_response()),
            ("GET", 5) => {
                let api = format!("{}/repos/{}", shared.url, repo.name);
                let hooks = repo.hooks.iter().map(|h| hook(h, &api)).collect();
                Ok(paged(hooks, &query, 30, &format!("{api}/hooks"), false))
            }
            ("POST", 5) => create(repo, shared.next_id(), &shared.url, &body),
            ("PATCH", 6) => update(repo, hook_id, &shared.url, &body),
            ("DELETE", 6) if repo.remove(hook_id) => Ok(StatusCode::NO_CONTENT.into_response()),
            ("GET", 7) => deliveries(repo, hook_id, &query, &shared.url),
            ("POST", 9) => {
                let delivery_id = params.get(3).map(String::as_str).unwrap_or_default();
                redeliver(repo, hook_id, delivery_id).map(|request| {
                    let (shared, full_name) = (shared.clone(), full_name.clone());
                    let hook_id = hook_id.parse().expect("a hook that was found");
                    tokio::spawn(async move {
                        shared.attempt(&full_name, hook_id, request, true).await;
                    });
                    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
                })
            }
            _ => Err(not_found().into()),
        },
    };
    served.unwrap_or_else(|refused| *refused.0)
}

/// "Redeliver a delivery for a repository webhook"
/// (`POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`): `202`,
/// then the delivery's request is sent again as it was, byte for byte. An unknown hook or
/// delivery is `404`.
fn redeliver(repo: &mut Repo, hook_id: &str, delivery_id: &str) -> Result<Arc<Sent>, Refused> {
    let hook = repo.hook(hook_id).ok_or_else(not_found)?;
    let delivery = delivery_id
        .parse::<u64>()
        .ok()
        .and_then(|id| hook.deliveries.iter().find(|d| d.id == id));
    Ok(delivery.ok_or_else(not_found)?.request.clone())
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unknown => message(StatusCode::UNAUTHORIZED, "Bad credentials"),
        Refusal::Hidden => not_found(),
        Refusal::ReadOnly => message(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        ),
    }
}

pub(super) fn message(status: StatusCode, text: &str) -> Response {
    let docs = match status {
        StatusCode::UNAUTHORIZED => "https://docs.github.com/rest",
        _ => DOCS,
    };
    let body = json!({ "message": text, "documentation_url": docs, "status": status.as_u16().to_string() });
    (status, Json(body)).into_response()
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

fn invalid(text: &str) -> Response {
    let body = json!({
        "message": "Validation Failed",
        "errors": [{ "resource": "Hook", "code": "custom", "message": text }],
        "documentation_url": format!("{DOCS}#create-a-repository-webhook"),
        "status": "422",
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// "Get a repository", in part. GitHub's node ids are base64 of `010:Repository<id>`; the
/// owner's id is made up, stable per login.
fn repository(repo: &Repo, api: &str) -> Value {
    let (owner, name) = repo.name.split_once('/').unwrap_or(("", &repo.name));
    let lowercase = owner.to_ascii_lowercase();
    let owner_id = lowercase
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31) + u64::from(b));
    let full_name = &repo.name;
    json!({
        "id": repo.id,
        "node_id": STANDARD.encode(format!("010:Repository{}", repo.id)),
        "name": name,
        "full_name": full_name,
        "private": true,
        "owner": { "login": owner, "id": owner_id % 100_000_000, "type": "Organization" },
        "html_url": format!("{api}/{full_name}"),
        "clone_url": format!("{api}/{full_name}.git"),
        "url": format!("{api}/repos/{full_name}"),
        "hooks_url": format!("{api}/repos/{full_name}/hooks"),
        "default_branch": "main",
    })
}

/// The hook as GitHub answers it; `repo` is its repository's API URL.
fn hook(hook: &Hook, repo: &str) -> Value {
    let url = format!("{repo}/hooks/{}", hook.id);
    let mut config = json!({
        "url": hook.url, "content_type": hook.content_type, "insecure_ssl": hook.insecure_ssl,
    });
    if hook.secret.is_some() {
        config["secret"] = json!("********");
    }
    json!({
        "type": "Repository",
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": hook.events,
        "config": config,
        "updated_at": hook.updated_at,
        "created_at": hook.created_at,
        "url": url,
        "test_url": format!("{url}/test"),
        "ping_url": format!("{url}/pings"),
        "deliveries_url": format!("{url}/deliveries"),
        "last_response": hook.last_response,
    })
}

/// Applies `config` (`url`, `content_type`, `secret`, `insecure_ssl`): a config without a
/// secret removes it, as "Update a repository webhook" documents.
fn configure(hook: &mut Hook, config: &Value) {
    if let Some(url) = config["url"].as_str() {
        hook.url = url.to_owned();
    }
    if let Some(content_type) = config["content_type"].as_str() {
        hook.content_type = content_type.to_owned();
    }
    let secret = config["secret"].as_str().filter(|s| !s.is_empty());
    hook.secret = secret.map(str::to_owned);
    match &config["insecure_ssl"] {
        Value::String(s) => hook.insecure_ssl = s.clone(),
        Value::Number(n) => hook.insecure_ssl = n.to_string(),
        _ => {}
    }
}

/// "Create a repository webhook": 201 with the hook; 422 without `config.url`, or when a hook
/// has that URL and an event in common.
fn create(repo: &mut Repo, id: u64, api: &str, body: &[u8]) -> Answer {
    let body = json_object(body).ok_or_else(unparsable)?;
    let no_url = || invalid("Config must contain URL for webhooks");
    let url = body["config"]["url"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(no_url)?;
    let events = strings(&body["events"]).unwrap_or_else(|| vec!["push".to_owned()]);
    let mut new = Hook::new(id, url, events);
    new.content_type = "form".to_owned();
    configure(&mut new, &body["config"]);
    new.active = body["active"].as_bool().unwrap_or(true);
    let wild = |e: &String| e == "*";
    let overlaps = |h: &Hook| {
        h.events.iter().any(|e| new.events.contains(e))
            || h.events.iter().chain(&new.events).any(wild)
    };
    if repo.hooks.iter().any(|h| h.url == new.url && overlaps(h)) {
        return Err(invalid("Hook already exists on this repository").into());
    }
    let json = hook(&new, &format!("{api}/repos/{}", repo.name));
    repo.hooks.push(new);
    let location = HeaderValue::try_from(json["url"].as_str().unwrap_or_default());
    let mut response = (StatusCode::CREATED, Json(json)).into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, location.expect("an ASCII URL"));
    Ok(response)
}

/// "Update a repository webhook": `active`, `events` (replaced), `add_events`, `remove_events`
/// and `config` (its secret removed unless sent again).
fn update(repo: &mut Repo, id: &str, api: &str, body: &[u8]) -> Answer {
    let api = format!("{api}/repos/{}", repo.name);
    let found = repo.hook(id).ok_or_else(not_found)?;
    let body = json_object(body).ok_or_else(unparsable)?;
    if body["config"].is_object() {
        configure(found, &body["config"]);
    }
    found.active = body["active"].as_bool().unwrap_or(found.active);
    found.events = strings(&body["events"]).unwrap_or_else(|| found.events.clone());
    for event in strings(&body["add_events"]).unwrap_or_default() {
        if !found.events.contains(&event) {
            found.events.push(event);
        }
    }
    let removed = strings(&body["remove_events"]).unwrap_or_default();
    found.events.retain(|e| !removed.contains(e));
    found.updated_at = now();
    Ok(Json(hook(found, &api)).into_response())
}

fn unparsable() -> Response {
    message(StatusCode::BAD_REQUEST, "Problems parsing JSON")
}

/// "List deliveries for a repository webhook": newest first, 30 a page and at most 100, paged
/// by an opaque cursor (`v1_<id>`: the items older than `<id>`) and a `Link: <…>; rel="next"`
/// while older ones remain.
fn deliveries(repo: &mut Repo, id: &str, query: &PageQuery, api: &str) -> Answer {
    let repository_id = repo.id;
    let base = format!("{api}/repos/{}/hooks/{id}/deliveries", repo.name);
    let found = repo.hook(id).ok_or_else(not_found)?;
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let before = match query.cursor.as_deref() {
        None => Some(u64::MAX),
        Some(cursor) => cursor.strip_prefix("v1_").and_then(|id| id.parse().ok()),
    };
    let invalid = || message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    let before = before.ok_or_else(invalid)?;
    let mut older = found.deliveries.iter().rev().filter(|d| d.id < before);
    let page: Vec<&Delivery> = older.by_ref().take(per_page).collect();
    let next = page.last().filter(|_| older.next().is_some()).map(|d| d.id);
    let items: Vec<Value> = page.iter().map(|d| d.json(repository_id)).collect();
    let mut response = Json(Value::Array(items)).into_response();
    if let Some(last) = next {
        let link = format!("<{base}?per_page={per_page}&cursor=v1_{last}>; rel=\"next\"");
        let link = HeaderValue::try_from(link).expect("an ASCII link");
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

impl Delivery {
    fn json(&self, repository_id: u64) -> Value {
        json!({
            "id": self.id,
            "guid": self.request.guid,
            "delivered_at": self.delivered_at,
            "redelivery": self.redelivery,
            "duration": (self.duration * 100.0).round() / 100.0,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.request.event,
            "action": self.request.action,
            "installation_id": null,
            "repository_id": repository_id,
            "throttled_at": null,
        })
    }
}

/// A new delivery of `payload` as GitHub sends it from `hook` of repository `repository_id`.
fn sign(hook: &Hook, repository_id: u64, event: &str, payload: Vec<u8>) -> Sent {
    let guid = uuid::Uuid::new_v4().to_string();
    let parsed = serde_json::from_slice::<Value>(&payload).unwrap_or_default();
    let action = parsed["action"].as_str().map(str::to_owned);
    let (content_type, body) = match hook.content_type.as_str() {
        "json" => ("application/json", payload),
        _ => ("application/x-www-form-urlencoded", form(&payload)),
    };
    let mut headers = vec![
        ("Accept", "*/*".to_owned()),
        ("Content-Type", content_type.to_owned()),
        ("User-Agent", "GitHub-Hookshot/044aadd".to_owned()),
        ("X-GitHub-Delivery", guid.clone()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Hook-ID", hook.id.to_string()),
        (
            "X-GitHub-Hook-Installation-Target-ID",
            repository_id.to_string(),
        ),
        (
            "X-GitHub-Hook-Installation-Target-Type",
            "repository".to_owned(),
        ),
    ];
    if let Some(secret) = &hook.secret {
        let mut sha1 = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key");
        sha1.update(&body);
        let sha1 = hex::encode(sha1.finalize().into_bytes());
        headers.push(("X-Hub-Signature", format!("sha1={sha1}")));
        let sha256 = Signature::sign(&WebhookSecret::new(secret), &body);
        headers.push(("X-Hub-Signature-256", sha256.to_string()));
    }
    let event = event.to_owned();
    Sent {
        guid,
        event,
        action,
        headers,
        body,
    }
}

/// `application/x-www-form-urlencoded` `payload=<payload>`, as GitHub posts to a `form` hook.
fn form(payload: &[u8]) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for &b in payload {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    out
}

impl FakeRepoHosts {
    /// Sends an `event` delivery of `body` from hook `hook_id` of `full_name` to its URL, like
    /// GitHub (a fresh GUID, GitHub's headers, signed with the hook's current secret), and logs
    /// the attempt. The receiver's status code (0 when it did not answer) and the GUID.
    pub async fn send_github(
        &self,
        full_name: &str,
        hook_id: u64,
        event: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let sent = {
            let mut record = self.shared.record();
            let repository_id = record.repo(Github, full_name).id;
            let hook = record.hook(Github, full_name, hook_id);
            Arc::new(sign(hook, repository_id, event, body))
        };
        let guid = sent.guid.clone();
        (
            self.shared.attempt(full_name, hook_id, sent, false).await,
            guid,
        )
    }

    /// A delivery GitHub attempted and hooklog never stored: logged as GitHub logs an answer
    /// that was not HTTP (`status_code` 502, as from a proxy in front of a receiver that was
    /// down), nothing sent. Its GUID.
    pub fn lose_github(&self, full_name: &str, hook_id: u64, event: &str, body: Vec<u8>) -> String {
        let id = self.shared.next_id();
        let mut record = self.shared.record();
        let repository_id = record.repo(Github, full_name).id;
        let hook = record.hook(Github, full_name, hook_id);
        let request = Arc::new(sign(hook, repository_id, event, body));
        let guid = request.guid.clone();
        hook.deliveries.push(Delivery {
            id,
            delivered_at: now(),
            redelivery: false,
            duration: 0.1,
            status: "Invalid HTTP Response: 502".to_owned(),
            status_code: 502,
            request,
        });
        guid
    }

    /// Redelivers the last delivery `guid` of hook `hook_id` to the hook's URL as GitHub does:
    /// the same request byte for byte, logged with `"redelivery": true`. The status code.
    pub async fn resend_github(&self, full_name: &str, hook_id: u64, guid: &str) -> u16 {
        let sent = {
            let mut record = self.shared.record();
            let hook = record.hook(Github, full_name, hook_id);
            let delivery = hook
                .deliveries
                .iter()
                .rev()
                .find(|d| d.request.guid == guid);
            delivery.expect("a delivery of that GUID").request.clone()
        };
        self.shared.attempt(full_name, hook_id, sent, true).await
    }
}

impl Shared {
    /// Sends `request` to hook `hook_id`'s URL and logs the attempt; the status code.
    async fn attempt(
        &self,
        full_name: &str,
        hook_id: u64,
        request: Arc<Sent>,
        redelivery: bool,
    ) -> u16 {
        let url = self.record().hook(Github, full_name, hook_id).url.clone();
        let delivered_at = now();
        let sent = self.post(&url, &request.headers, request.body.clone());
        let (status_code, status, duration) = sent.await;
        let id = self.next_id();
        let mut record = self.record();
        let hook = record.hook(Github, full_name, hook_id);
        hook.last_response = json!({ "code": status_code, "status": "active", "message": status });
        hook.deliveries.push(Delivery {
            id,
            delivered_at,
            redelivery,
            duration,
            status,
            status_code,
            request,
        });
        status_code
    }
}
