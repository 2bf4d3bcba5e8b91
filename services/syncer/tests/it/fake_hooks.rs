//! The fake GitHub's App webhook over real HTTP: its delivery log paged newest first by cursor
//! and `Link`, redeliveries re-sent byte for byte (same GUID and signature) to a receiver started
//! here, GitHub's 404, 422 and 401 answers, and armed faults on the new routes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use hooklog_syncer::testing::{FakeGithub, Fault, TestRepo, APP_ID, PRIVATE_KEY};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "it's a secret to everybody";

/// The fake GitHub and a client to call it with.
struct Hooks {
    fake: FakeGithub,
    http: reqwest::Client,
    _repo: TestRepo,
}

impl Hooks {
    async fn new() -> Self {
        let repo = TestRepo::new();
        let fake = FakeGithub::start_for(&repo).await;
        fake.set_webhook_secret(SECRET);
        Self {
            fake,
            http: hooklog_infra::http::client().expect("a client"),
            _repo: repo,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.url())
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .bearer_auth(app_jwt())
            .send()
            .await
            .expect("the fake answers")
    }

    async fn redeliver(&self, id: u64) -> reqwest::Response {
        let url = self.url(&format!("/app/hook/deliveries/{id}/attempts"));
        self.http
            .post(url)
            .bearer_auth(app_jwt())
            .send()
            .await
            .expect("the fake answers")
    }

    /// Every item of the log, newest first, in one page.
    async fn log(&self) -> Vec<Value> {
        let url = self.url("/app/hook/deliveries?per_page=100");
        self.get(&url).await.json().await.expect("a JSON array")
    }
}

/// An App JWT as the `GithubApp` makes them: `APP_ID`, a minute back, nine minutes ahead.
fn app_jwt() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({ "iat": now - 60, "exp": now + 540, "iss": APP_ID.to_string() });
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).expect("the fixture key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("a JWT")
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push_body(n: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "after": format!("{n:040x}"),
        "installation": { "id": 7 },
        "repository": { "id": 11, "full_name": "octo/plugins" },
    }))
    .unwrap()
}

/// A webhook receiver on port 0 that keeps what it is sent and answers `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let kept = got.clone();
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        let app = axum::Router::new().route(
            "/v1/webhooks/connectors/github",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
                kept.lock().unwrap().push((headers, body));
                status
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://127.0.0.1:{port}/v1/webhooks/connectors/github"),
            got,
            server,
        }
    }

    fn got(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("a {name} header"))
        .to_str()
        .unwrap()
}

fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().unwrap();
    let url = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("GitHub's next link: {link}"));
    Some(url.to_owned())
}

#[tokio::test]
async fn the_log_pages_newest_first_by_cursor_and_link_and_the_last_page_has_no_link() {
    let hooks = Hooks::new().await;
    let ids: Vec<u64> = (0..5)
        .map(|n| {
            hooks
                .fake
                .record_lost("push", &push_body(n), SystemTime::now(), 200)
                .id
        })
        .collect();
    assert_eq!(hooks.fake.hook_deliveries(), 5);

    let mut url = Some(hooks.url("/app/hook/deliveries?per_page=2"));
    let mut pages: Vec<Vec<u64>> = Vec::new();
    let mut first: Option<Value> = None;
    while let Some(at) = url.take() {
        let response = hooks.get(&at).await;
        assert_eq!(response.status(), 200);
        url = next_link(&response);
        let items: Vec<Value> = response.json().await.unwrap();
        first.get_or_insert_with(|| items[0].clone());
        pages.push(items.iter().map(|i| i["id"].as_u64().unwrap()).collect());
        assert!(pages.len() <= 3, "the walk ends");
    }

    let newest_first: Vec<u64> = ids.iter().rev().copied().collect();
    assert_eq!(
        pages,
        vec![
            newest_first[0..2].to_vec(),
            newest_first[2..4].to_vec(),
            newest_first[4..].to_vec()
        ]
    );
    assert_eq!(hooks.fake.delivery_pages(), 3);
    assert_eq!(
        hooks.fake.delivery_cursors(),
        vec![
            None,
            Some(format!("v1_{}", newest_first[1])),
            Some(format!("v1_{}", newest_first[3])),
        ]
    );
    let item = first.unwrap();
    let keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected = vec![
        "id",
        "guid",
        "delivered_at",
        "redelivery",
        "duration",
        "status",
        "status_code",
        "event",
        "action",
        "installation_id",
        "repository_id",
        "throttled_at",
    ];
    let mut keys = keys;
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(item["status"], "OK");
    assert_eq!(item["status_code"], 200);
    assert_eq!(item["event"], "push");
    assert_eq!(item["action"], Value::Null);
    assert_eq!(item["installation_id"], 7);
    assert_eq!(item["repository_id"], 11);
    assert_eq!(item["redelivery"], false);
    let delivered_at = item["delivered_at"].as_str().unwrap();
    assert!(
        delivered_at.len() == 20 && delivered_at.ends_with('Z'),
        "{delivered_at}"
    );
}

#[tokio::test]
async fn a_redelivery_answers_202_and_resends_the_same_bytes_guid_and_signature() {
    let hooks = Hooks::new().await;
    let receiver = Receiver::start(200).await;
    hooks.fake.set_webhook_url(&receiver.url);
    let body = push_body(1);
    let original = hooks.fake.deliver("push", &body).await;
    assert_eq!(original.status_code, 200);

    let response = hooks.redeliver(original.id).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    hooks.fake.redeliveries_settled().await;

    let got = receiver.got();
    assert_eq!(got.len(), 2, "the delivery, then its redelivery");
    for (headers, bytes) in &got {
        assert_eq!(bytes.as_ref(), body.as_slice());
        assert_eq!(header(headers, "x-hub-signature-256"), signature(&body));
        assert_eq!(header(headers, "x-github-delivery"), original.guid);
        assert_eq!(header(headers, "x-github-event"), "push");
        assert_eq!(header(headers, "x-github-hook-id"), "4242000");
        assert_eq!(
            header(headers, "x-github-hook-installation-target-id"),
            APP_ID.to_string()
        );
        assert_eq!(
            header(headers, "x-github-hook-installation-target-type"),
            "integration"
        );
        assert_eq!(header(headers, "content-type"), "application/json");
        assert_eq!(header(headers, "user-agent"), "GitHub-Hookshot/fake");
    }
    assert_eq!(got[0].0, got[1].0, "the same headers");

    let log = hooks.log().await;
    assert_eq!(log.len(), 2);
    assert_eq!(hooks.fake.hook_deliveries(), 2);
    assert!(log[0]["id"].as_u64().unwrap() > original.id);
    assert_eq!(log[0]["guid"], original.guid.as_str());
    assert_eq!(log[0]["redelivery"], true);
    assert_eq!(log[0]["status"], "OK");
    assert_eq!(log[1]["id"], original.id);
    assert_eq!(log[1]["redelivery"], false);
    assert_eq!(hooks.fake.redelivery_requests(), vec![original.id]);
    assert_eq!(hooks.fake.redelivered_guids(), vec![original.guid.clone()]);

    let one = hooks
        .get(&hooks.url(&format!("/app/hook/deliveries/{}", original.id)))
        .await;
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["guid"], original.guid.as_str());
    assert_eq!(
        one["request"]["payload"],
        serde_json::from_slice::<Value>(&body).unwrap()
    );
    assert_eq!(
        one["request"]["headers"]["X-GitHub-Delivery"],
        original.guid.as_str()
    );
    assert_eq!(one["response"], json!({ "headers": {}, "payload": null }));
}

#[tokio::test]
async fn a_lost_delivery_is_redelivered_and_failures_are_logged_in_githubs_words() {
    let hooks = Hooks::new().await;
    let body = push_body(2);
    let lost = hooks.fake.record_lost("push", &body, SystemTime::now(), 0);
    assert_eq!(lost.status_code, 0);

    // Nothing listens on a port just given back.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    hooks
        .fake
        .set_webhook_url(&format!("http://127.0.0.1:{port}/hook"));
    assert_eq!(hooks.redeliver(lost.id).await.status(), 202);
    hooks.fake.redeliveries_settled().await;
    let log = hooks.log().await;
    assert_eq!(log[0]["status_code"], 0);
    assert_eq!(log[0]["status"], "failed to connect to host");

    let refusing = Receiver::start(503).await;
    hooks.fake.set_webhook_url(&refusing.url);
    assert_eq!(hooks.redeliver(lost.id).await.status(), 202);
    hooks.fake.redeliveries_settled().await;
    let log = hooks.log().await;
    assert_eq!(log[0]["status_code"], 503);
    assert_eq!(log[0]["status"], "Invalid HTTP Response: 503");

    let receiver = Receiver::start(200).await;
    hooks.fake.set_webhook_url(&receiver.url);
    assert_eq!(hooks.redeliver(lost.id).await.status(), 202);
    hooks.fake.redeliveries_settled().await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.as_ref(), body.as_slice());
    assert_eq!(header(&got[0].0, "x-github-delivery"), lost.guid);
    assert_eq!(header(&got[0].0, "x-hub-signature-256"), signature(&body));
    assert_eq!(hooks.log().await[0]["status"], "OK");
    assert_eq!(hooks.fake.hook_deliveries(), 4);
    assert_eq!(hooks.fake.redelivered_guids(), vec![lost.guid; 3]);
}

#[tokio::test]
async fn redelivering_an_unknown_id_answers_404() {
    let hooks = Hooks::new().await;
    hooks
        .fake
        .record_lost("push", &push_body(3), SystemTime::now(), 0);

    let response = hooks.redeliver(999_999).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Not Found");
    hooks.fake.redeliveries_settled().await;
    assert_eq!(hooks.fake.hook_deliveries(), 1);
    assert_eq!(hooks.fake.redelivery_requests(), vec![999_999]);
    let one = hooks.get(&hooks.url("/app/hook/deliveries/999999")).await;
    assert_eq!(one.status(), 404);
}

#[tokio::test]
async fn redelivering_past_githubs_three_day_window_answers_422_and_sends_nothing() {
    let hooks = Hooks::new().await;
    let receiver = Receiver::start(200).await;
    hooks.fake.set_webhook_url(&receiver.url);
    let four_days_ago = SystemTime::now() - Duration::from_secs(4 * 24 * 60 * 60);
    let old = hooks
        .fake
        .record_lost("push", &push_body(4), four_days_ago, 0);

    let response = hooks.redeliver(old.id).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Validation Failed");
    hooks.fake.redeliveries_settled().await;
    assert!(receiver.got().is_empty());
    assert_eq!(hooks.fake.hook_deliveries(), 1);
    assert_eq!(hooks.fake.redelivery_requests(), vec![old.id]);
}

#[tokio::test]
async fn a_bad_jwt_answers_401_and_is_counted_rejected() {
    let hooks = Hooks::new().await;
    let response = hooks
        .http
        .get(hooks.url("/app/hook/deliveries"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "A JSON web token could not be decoded");
    assert_eq!(hooks.fake.rejected_jwts(), 1);
    assert_eq!(
        hooks.fake.delivery_pages(),
        0,
        "a rejected request is not served"
    );
    assert!(hooks.fake.verified_jwts().is_empty());

    let response = hooks.get(&hooks.url("/app/hook/deliveries")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(hooks.fake.verified_jwts().len(), 1);
    assert_eq!(hooks.fake.rejected_jwts(), 1);
}

#[tokio::test]
async fn armed_faults_apply_to_the_delivery_log() {
    let hooks = Hooks::new().await;
    hooks
        .fake
        .fail_next("/app/hook/deliveries", Fault::BadGateway, 1);
    let url = hooks.url("/app/hook/deliveries");
    assert_eq!(hooks.get(&url).await.status(), 502);
    assert_eq!(hooks.get(&url).await.status(), 200);
    assert_eq!(hooks.fake.delivery_pages(), 1);
}
