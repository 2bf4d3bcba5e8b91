//! The fake GitHub's App webhook: deliveries sent like GitHub's (signed, with GitHub's headers)
//! to a configured URL, the delivery log GitHub keeps of them, and the App endpoints that read it
//! and redeliver, in GitHub's documented shapes:
//!
//! - `GET /app/hook/deliveries?per_page=&cursor=`, newest first, paged by an opaque cursor
//!   (`v1_<id>`: the items older than `<id>`) and a `Link: <…>; rel="next"` header;
//! - `GET /app/hook/deliveries/{delivery_id}`, one item with the request it sent;
//! - `POST /app/hook/deliveries/{delivery_id}/attempts`, a redelivery: `202` at once, then the
//!   stored request sent again, byte for byte, and logged as a new item.
//!
//! Tests add deliveries with `FakeGithub::deliver` (posted now) or `FakeGithub::record_lost`
//! (logged as attempted, never posted), and wait for redeliveries with
//! `FakeGithub::redeliveries_settled`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::routes::{message, not_found, verify_app_jwt};
use super::{FakeGithub, Shared};

/// The id of the fake App's webhook, sent as `X-GitHub-Hook-ID`.
const HOOK_ID: u64 = 4242000;
/// How long after its first attempt GitHub still redelivers a delivery.
const REDELIVERY_WINDOW: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// One delivery in the fake's log: its id there, its GUID (`X-GitHub-Delivery`) and the status
/// code of hooklog's answer (0 when there was none).
#[derive(Debug, Clone)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub status_code: u16,
}

/// The webhook's configuration, its delivery log and what the log's endpoints were asked.
#[derive(Default)]
pub(super) struct HookLog {
    url: Option<String>,
    secret: Option<String>,
    /// In ascending id order.
    items: Vec<Item>,
    last_id: u64,
    pages: usize,
    cursors: Vec<Option<String>>,
    redelivery_requests: Vec<u64>,
    redelivered_guids: Vec<String>,
    /// Redeliveries spawned and not yet awaited by `redeliveries_settled`.
    in_flight: Vec<JoinHandle<()>>,
}

/// One attempt at a delivery, as GitHub logs it.
struct Item {
    id: u64,
    delivered_at: SystemTime,
    redelivery: bool,
    duration: f64,
    status: String,
    status_code: u16,
    request: Arc<Signed>,
}

/// A delivery's request, kept to be sent again as it was.
struct Signed {
    guid: String,
    event: String,
    action: Option<String>,
    installation_id: Option<u64>,
    repository_id: Option<u64>,
    /// In GitHub's spelling and order.
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl FakeGithub {
    /// Where deliveries and redeliveries are POSTed: hooklog's ingress, e.g.
    /// `http://127.0.0.1:PORT/v1/webhooks/connectors/github`. Until it is set, every attempt
    /// fails to connect.
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.record().hooks.url = Some(url.to_owned());
    }

    /// The webhook secret deliveries are signed with (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256
    /// of the body>`); until it is set, deliveries carry no signature, as GitHub's do then.
    pub fn set_webhook_secret(&self, secret: &str) {
        self.shared.record().hooks.secret = Some(secret.to_owned());
    }

    /// Sends a new `event` delivery of `body` like GitHub (a new GUID and id, GitHub's headers,
    /// signed) to the webhook URL, waiting up to 10 s for the answer, and logs it.
    /// `action`, `installation.id` and `repository.id` are read from the body when present.
    pub async fn deliver(&self, event: &str, body: &[u8]) -> HookDelivery {
        let request = Arc::new(self.shared.sign(event, body));
        let delivered_at = SystemTime::now();
        let (status_code, status, duration) = send(&self.shared, &request).await;
        self.shared.record().hooks.log(Item {
            id: 0,
            delivered_at,
            redelivery: false,
            duration,
            status,
            status_code,
            request,
        })
    }

    /// Logs, and keeps for redelivery, a signed `event` delivery of `body` that GitHub attempted
    /// at `delivered_at` and hooklog never got, without sending anything: `status_code` 0 for
    /// one that failed to connect, 503 for one refused, or even 200 for one GitHub counts as
    /// answered but hooklog lost.
    pub fn record_lost(
        &self,
        event: &str,
        body: &[u8],
        delivered_at: SystemTime,
        status_code: u16,
    ) -> HookDelivery {
        let request = Arc::new(self.shared.sign(event, body));
        self.shared.record().hooks.log(Item {
            id: 0,
            delivered_at,
            redelivery: false,
            duration: 0.0,
            status: status_of(status_code),
            status_code,
            request,
        })
    }

    /// Waits until every redelivery asked so far has been sent and logged.
    pub async fn redeliveries_settled(&self) {
        loop {
            let handles = std::mem::take(&mut self.shared.record().hooks.in_flight);
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                handle.await.expect("a redelivery finishes");
            }
        }
    }

    /// The delivery ids redeliveries were asked for (with a verified JWT), in order.
    pub fn redelivery_requests(&self) -> Vec<u64> {
        self.shared.record().hooks.redelivery_requests.clone()
    }

    /// The GUID of each redelivery asked of a delivery in the log, in order.
    pub fn redelivered_guids(&self) -> Vec<String> {
        self.shared.record().hooks.redelivered_guids.clone()
    }

    /// Pages of the delivery log served (with a verified JWT).
    pub fn delivery_pages(&self) -> usize {
        self.shared.record().hooks.pages
    }

    /// The `cursor` of each page of the delivery log asked, in order (`None` for the first).
    pub fn delivery_cursors(&self) -> Vec<Option<String>> {
        self.shared.record().hooks.cursors.clone()
    }

    /// Items in the delivery log: every delivery and redelivery attempted.
    pub fn hook_deliveries(&self) -> usize {
        self.shared.record().hooks.items.len()
    }
}

impl HookLog {
    /// Appends `item` under a new id, greater than every one before.
    fn log(&mut self, mut item: Item) -> HookDelivery {
        self.last_id += 1;
        item.id = self.last_id;
        let delivery = HookDelivery {
            id: item.id,
            guid: item.request.guid.clone(),
            status_code: item.status_code,
        };
        self.items.push(item);
        delivery
    }

    fn item(&self, id: &str) -> Option<&Item> {
        let id: u64 = id.parse().ok()?;
        self.items.iter().find(|item| item.id == id)
    }
}

impl Shared {
    /// A new delivery of `body` as GitHub would send it, signed with the webhook secret.
    fn sign(&self, event: &str, body: &[u8]) -> Signed {
        let guid = uuid::Uuid::new_v4().to_string();
        let secret = self.record().hooks.secret.clone();
        let mut headers = vec![
            ("Accept", "*/*".to_owned()),
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", "GitHub-Hookshot/fake".to_owned()),
            ("X-GitHub-Delivery", guid.clone()),
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Hook-ID", HOOK_ID.to_string()),
            (
                "X-GitHub-Hook-Installation-Target-ID",
                self.app_id.to_string(),
            ),
            (
                "X-GitHub-Hook-Installation-Target-Type",
                "integration".to_owned(),
            ),
        ];
        if let Some(secret) = secret {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
            mac.update(body);
            let signature = hex::encode(mac.finalize().into_bytes());
            headers.push(("X-Hub-Signature-256", format!("sha256={signature}")));
        }
        let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        Signed {
            guid,
            event: event.to_owned(),
            action: payload["action"].as_str().map(str::to_owned),
            installation_id: payload["installation"]["id"].as_u64(),
            repository_id: payload["repository"]["id"].as_u64(),
            headers,
            body: Bytes::copy_from_slice(body),
        }
    }
}

impl Item {
    /// The item as GitHub lists it.
    fn json(&self) -> Value {
        let delivered_at = OffsetDateTime::from(self.delivered_at)
            .replace_nanosecond(0)
            .expect("whole seconds")
            .format(&Rfc3339)
            .expect("RFC 3339");
        json!({
            "id": self.id,
            "guid": self.request.guid,
            "delivered_at": delivered_at,
            "redelivery": self.redelivery,
            "duration": (self.duration * 100.0).round() / 100.0,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.request.event,
            "action": self.request.action,
            "installation_id": self.request.installation_id,
            "repository_id": self.request.repository_id,
            "throttled_at": null,
        })
    }
}

/// Posts `request` to the webhook URL: the answer's status code and GitHub's words for it, and
/// the seconds it took.
async fn send(shared: &Shared, request: &Signed) -> (u16, String, f64) {
    let url = shared.record().hooks.url.clone();
    let started = Instant::now();
    let outcome = match url {
        None => Err("failed to connect to host"),
        Some(url) => {
            let mut post = shared.hook_client.post(url);
            for (name, value) in &request.headers {
                post = post.header(*name, value);
            }
            match post.body(request.body.clone()).send().await {
                Ok(response) => {
                    let code = response.status().as_u16();
                    // Read to the end, so the duration covers the answer.
                    let _ = response.bytes().await;
                    Ok(code)
                }
                Err(e) if e.is_timeout() => Err("timed out"),
                Err(_) => Err("failed to connect to host"),
            }
        }
    };
    let duration = started.elapsed().as_secs_f64();
    match outcome {
        Ok(code) => (code, status_of(code), duration),
        Err(status) => (0, status.to_owned(), duration),
    }
}

/// GitHub's `status` of an attempt answered `code` (0: not answered).
fn status_of(code: u16) -> String {
    match code {
        0 => "failed to connect to host".to_owned(),
        200..=299 => "OK".to_owned(),
        code => format!("Invalid HTTP Response: {code}"),
    }
}

#[derive(Deserialize)]
pub(super) struct DeliveriesQuery {
    per_page: Option<usize>,
    cursor: Option<String>,
}

/// `GET /app/hook/deliveries?per_page=&cursor=`: "List deliveries for an app webhook", newest
/// first, `per_page` 30 by default and at most 100, and a `Link` to the next page while older
/// items remain.
pub(super) async fn deliveries(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<DeliveriesQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(rejection) = verify_app_jwt(&shared, &headers) {
        return *rejection;
    }
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let (page, next) = {
        let mut record = shared.record();
        let hooks = &mut record.hooks;
        hooks.pages += 1;
        hooks.cursors.push(query.cursor.clone());
        let before = match query.cursor.as_deref() {
            None => u64::MAX,
            Some(cursor) => match cursor.strip_prefix("v1_").and_then(|id| id.parse().ok()) {
                Some(id) => id,
                None => return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed"),
            },
        };
        let mut older = hooks.items.iter().rev().filter(|item| item.id < before);
        let page: Vec<&Item> = older.by_ref().take(per_page).collect();
        let more = older.next().is_some();
        let next = page.last().filter(|_| more).map(|last| last.id);
        (page.into_iter().map(Item::json).collect::<Vec<_>>(), next)
    };
    let mut response = Json(Value::Array(page)).into_response();
    if let Some(last) = next {
        let link = format!(
            "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{last}>; rel=\"next\"",
            shared.url
        );
        let link = HeaderValue::try_from(link).expect("an ASCII link");
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// `GET /app/hook/deliveries/{delivery_id}`: "Get a delivery for an app webhook", the item with
/// the request it sent (the response is not kept).
pub(super) async fn delivery(
    State(shared): State<Arc<Shared>>,
    Path(delivery_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(rejection) = verify_app_jwt(&shared, &headers) {
        return *rejection;
    }
    let record = shared.record();
    let Some(item) = record.hooks.item(&delivery_id) else {
        return not_found("Not Found");
    };
    let request_headers: Map<String, Value> = item
        .request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let payload: Value = serde_json::from_slice(&item.request.body).unwrap_or(Value::Null);
    let mut body = item.json();
    body["url"] = json!(record.hooks.url);
    body["request"] = json!({ "headers": request_headers, "payload": payload });
    body["response"] = json!({ "headers": {}, "payload": null });
    Json(body).into_response()
}

/// `POST /app/hook/deliveries/{delivery_id}/attempts`: "Redeliver a delivery for an app
/// webhook". `202 Accepted` at once, then the delivery's request is sent again as it was (same
/// GUID, headers, signature and body) and logged as a new item; 404 for an id not in the log and
/// 422 for a delivery older than GitHub's 3-day window.
pub(super) async fn redeliver(
    State(shared): State<Arc<Shared>>,
    Path(delivery_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(rejection) = verify_app_jwt(&shared, &headers) {
        return *rejection;
    }
    let request = {
        let mut record = shared.record();
        let hooks = &mut record.hooks;
        if let Ok(id) = delivery_id.parse() {
            hooks.redelivery_requests.push(id);
        }
        let Some(item) = hooks.item(&delivery_id) else {
            return not_found("Not Found");
        };
        let request = item.request.clone();
        let age = SystemTime::now().duration_since(item.delivered_at);
        hooks.redelivered_guids.push(request.guid.clone());
        if age.is_ok_and(|age| age > REDELIVERY_WINDOW) {
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
        }
        request
    };
    let task = shared.clone();
    let handle = tokio::spawn(async move {
        let delivered_at = SystemTime::now();
        let (status_code, status, duration) = send(&task, &request).await;
        task.record().hooks.log(Item {
            id: 0,
            delivered_at,
            redelivery: true,
            duration,
            status,
            status_code,
            request,
        });
    });
    shared.record().hooks.in_flight.push(handle);
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}
