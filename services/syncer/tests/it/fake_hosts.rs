//! The fake repository hosts over real HTTP: GitHub repository webhooks and GitLab project hooks
//! created, listed, paged, updated and deleted in the providers' shapes, each provider's 401,
//! 404, 403 and 422, armed faults, and deliveries as the providers send them to a receiver
//! started here (GitHub's signatures and redeliveries, GitLab's token and retry key).

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use hooklog_domain::github::{signature, WebhookSecret};
use hooklog_syncer::testing::{FakeHook, FakeRepoHosts};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::Sha1;

const REPO: &str = "Octo/Plugins";
const PROJECT: &str = "group/sub/plugins";
const GH: &str = "ghp_admin";
const GL: &str = "glpat-admin";
const URL: &str = "https://hooklog.test/hook";
const NONE: Value = Value::Null;
const PR: &str = "pull_request";
const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

/// The status, the JSON body (null when there is none) and the headers of an answer.
type Answer = (u16, Value, HeaderMap);

struct Hosts {
    fake: FakeRepoHosts,
    http: reqwest::Client,
}

impl Hosts {
    async fn new() -> Self {
        let fake = FakeRepoHosts::start().await;
        fake.add_github_repository(REPO, 1296269, GH);
        fake.add_github_repository("octo/other", 2, "ghp_other");
        fake.add_gitlab_project(PROJECT, 42, GL);
        fake.add_gitlab_project("group/other", 43, "glpat-other");
        let http = hooklog_infra::http::client().expect("a client");
        Self { fake, http }
    }

    /// `method` on the GitHub API's `path` with `token` as a bearer token ("" for none).
    async fn gh(&self, token: &str, method: Method, path: &str, body: Value) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.fake.url()));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        send(request, body).await
    }

    /// `method` on the GitLab API's `path` with `token` as `PRIVATE-TOKEN` ("" for none).
    async fn gl(&self, token: &str, method: Method, path: &str, body: Value) -> Answer {
        let url = format!("{}{path}", self.fake.gitlab_api_url());
        let mut request = self.http.request(method, url);
        if !token.is_empty() {
            request = request.header("private-token", token);
        }
        send(request, body).await
    }
}

async fn send(mut request: reqwest::RequestBuilder, body: Value) -> Answer {
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the fake answers");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = response.bytes().await.expect("a body");
    let json = serde_json::from_slice(&bytes).unwrap_or(NONE);
    (status, json, headers)
}

/// Asserts that `actual` has every field of `expected` with its value (of a nested object, the
/// fields it names).
fn has(actual: &Value, expected: Value) {
    for (key, value) in expected.as_object().expect("an object") {
        match value {
            Value::Object(_) => has(&actual[key], value.clone()),
            _ => assert_eq!(&actual[key], value, "{key} of {actual}"),
        }
    }
}

/// `has` with the JSON object written inline: `has!(value, { "key": value, … })`.
macro_rules! has {
    ($actual:expr, $($expected:tt)+) => {
        has(&$actual, json!($($expected)+))
    };
}

/// Asserts an answer's status and that its body has the fields of the object given.
macro_rules! answers {
    ($answer:expr, $status:expr, $($body:tt)+) => {{
        let (status, body, _): Answer = $answer;
        assert_eq!(status, $status, "{body}");
        has(&body, json!($($body)+));
    }};
}

/// A header's value.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers[name].to_str().expect("a visible value")
}

/// The headers as a JSON object, for `has`.
fn headers(headers: &HeaderMap) -> Value {
    let pairs = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())));
    Value::Object(pairs.collect())
}

fn fake(hook: &FakeHook) -> Value {
    json!({ "id": hook.id, "url": hook.url, "secret": hook.secret, "events": hook.events,
        "active": hook.active })
}

/// The URL a `Link` header names as `rel="next"`.
fn next(headers: &HeaderMap) -> Option<String> {
    let mut links = headers.get("link")?.to_str().unwrap().split(", ");
    let next = links.find_map(|l| l.strip_suffix(">; rel=\"next\""))?;
    Some(next.trim_start_matches('<').to_owned())
}

/// A webhook receiver on port 0 that keeps every request and answers 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let kept = got.clone();
        let keep = move |headers: HeaderMap, body: Bytes| async move {
            kept.lock().unwrap().push((headers, body));
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(keep));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got, server }
    }

    fn got(&self, n: usize) -> (HeaderMap, Bytes) {
        self.got.lock().unwrap()[n].clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn github_hooks_are_created_listed_updated_and_deleted_in_githubs_shapes() {
    let h = Hosts::new().await;
    let hooks = "/repos/octo/plugins/hooks";
    let create = json!({ "name": "web", "active": true, "events": ["push"],
        "config": { "url": URL, "content_type": "json", "secret": "s3cret" } });
    let (status, hook, answer) = h.gh(GH, POST, hooks, create).await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_u64().unwrap();
    let url = format!("{}/repos/Octo/Plugins/hooks/{id}", h.fake.url());
    has!(hook, { "type": "Repository", "name": "web", "active": true, "events": ["push"],
        "config": { "url": URL, "content_type": "json", "insecure_ssl": "0", "secret": "********" },
        "url": url, "ping_url": format!("{url}/pings"), "test_url": format!("{url}/test"),
        "deliveries_url": format!("{url}/deliveries"),
        "last_response": { "code": null, "status": "unused", "message": null } });
    assert!(hook["created_at"].is_string() && hook["updated_at"].is_string());
    assert_eq!(text(&answer, "location"), url);
    assert_eq!(h.gh(GH, GET, hooks, NONE).await.1, json!([hook]));

    let one = format!("{hooks}/{id}");
    let rotate = json!({ "add_events": ["pull_request"], "config": { "secret": "rotated" } });
    answers!(h.gh(GH, PATCH, &one, rotate).await, 200, { "events": ["push", "pull_request"] });
    has!(fake(&h.fake.github_hooks(REPO)[0]), { "id": id, "url": URL, "secret": "rotated",
        "events": ["push", "pull_request"], "active": true });
    // "If you previously had a secret set, you must provide the same secret … or the secret
    // will be removed."
    let off = json!({ "active": false, "remove_events": ["push"], "config": {} });
    let (status, hook, _) = h.gh(GH, PATCH, &one, off).await;
    assert_eq!((status, hook["config"].get("secret")), (200, None));
    has!(fake(&h.fake.github_hooks(REPO)[0]), { "url": URL, "secret": null,
        "events": ["pull_request"], "active": false });

    assert_eq!(h.gh(GH, DELETE, &one, NONE).await.0, 204);
    answers!(h.gh(GH, DELETE, &one, NONE).await, 404, { "message": "Not Found" });
    assert_eq!(h.gh(GH, PATCH, &one, json!({})).await.0, 404);
    assert!(h.fake.github_hooks(REPO).is_empty());
}

#[tokio::test]
async fn github_answers_422_for_a_url_already_hooked_for_an_event_and_for_no_url() {
    let h = Hosts::new().await;
    h.fake.add_github_hook(REPO, URL, None);
    let hooks = "/repos/octo/plugins/hooks";
    let again = json!({ "events": ["push"], "config": { "url": URL } });
    answers!(h.gh(GH, POST, hooks, again).await, 422, { "message": "Validation Failed",
        "errors": [{ "resource": "Hook", "code": "custom",
            "message": "Hook already exists on this repository" }] });
    let no_url = json!({ "config": {} });
    answers!(h.gh(GH, POST, hooks, no_url).await, 422, { "message": "Validation Failed" });
    // Hooks may share a config when their events do not overlap.
    let other = json!({ "events": ["issues"], "config": { "url": URL } });
    assert_eq!(h.gh(GH, POST, hooks, other).await.0, 201);
    assert_eq!(h.fake.github_hooks(REPO).len(), 2);
}

#[tokio::test]
async fn github_refuses_tokens_as_github_does_and_pages_hooks_by_link() {
    let h = Hosts::new().await;
    let (repo, hooks) = ("/repos/octo/PLUGINS", "/repos/octo/plugins/hooks");
    answers!(h.gh("", GET, repo, NONE).await, 401, { "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest", "status": "401" });
    assert_eq!(h.gh("nope", GET, repo, NONE).await.0, 401);
    answers!(h.gh("ghp_other", GET, hooks, NONE).await, 404, { "message": "Not Found" });
    h.fake.add_token_without_hook_rights("ghp_read");
    answers!(h.gh("ghp_read", GET, repo, NONE).await, 200, { "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "full_name": REPO, "name": "Plugins",
        "default_branch": "main", "private": true, "owner": { "login": "Octo" } });
    answers!(h.gh("ghp_read", GET, hooks, NONE).await, 403,
        { "message": "Resource not accessible by personal access token" });
    let classic = h.http.get(format!("{}{hooks}", h.fake.url()));
    let classic = classic.header("authorization", format!("token {GH}"));
    assert_eq!(send(classic, NONE).await.0, 200);

    let add = |n| h.fake.add_github_hook(REPO, &format!("{URL}/{n}"), None);
    let ids: Vec<u64> = (0..3).map(add).collect();
    let (_, first, answer) = h.gh(GH, GET, &format!("{hooks}?per_page=2"), NONE).await;
    let page_two = h.http.get(next(&answer).expect("a next page"));
    let (_, second, answer) = send(page_two.bearer_auth(GH), NONE).await;
    let listed = [&first[0]["id"], &first[1]["id"], &second[0]["id"]];
    assert_eq!(json!(listed), json!(ids));
    assert_eq!((second.as_array().unwrap().len(), next(&answer)), (1, None));
}

#[tokio::test]
async fn gitlab_hooks_are_added_listed_edited_and_deleted_in_gitlabs_shapes() {
    let h = Hosts::new().await;
    let hooks = "/projects/group%2Fsub%2Fplugins/hooks";
    let add = json!({ "url": URL, "token": "gl-hook-secret", "push_events": true,
        "pipeline_events": true, "merge_requests_events": false,
        "push_events_branch_filter": "main", "enable_ssl_verification": true });
    let (status, hook, _) = h.gl(GL, POST, hooks, add.clone()).await;
    assert_eq!(status, 201, "{hook}");
    has!(hook, { "url": URL, "project_id": 42, "alert_status": "executable",
        "push_events": true, "pipeline_events": true, "merge_requests_events": false,
        "push_events_branch_filter": "main", "enable_ssl_verification": true });
    assert!(hook["created_at"].is_string() && hook.get("token").is_none());
    assert!(!hook.to_string().contains("gl-hook-secret"));
    // GitLab has no uniqueness rule for hook URLs.
    let (status, twin, _) = h.gl(GL, POST, hooks, add).await;
    assert_eq!(status, 201);
    assert_ne!(twin["id"], hook["id"]);
    let (status, list, answer) = h.gl(GL, GET, "/projects/42/hooks", NONE).await;
    assert_eq!((status, list), (200, json!([hook, twin])));
    has!(headers(&answer), { "x-total": "2", "x-next-page": "" });
    answers!(h.gl(GL, GET, "/projects/group%2Fsub%2Fplugins", NONE).await, 200, { "id": 42,
        "path_with_namespace": PROJECT, "name": "plugins", "default_branch": "main" });

    let id = hook["id"].as_u64().unwrap();
    let one = format!("/projects/42/hooks/{id}");
    let edit = json!({ "url": URL, "token": "rotated", "pipeline_events": false });
    assert_eq!(h.gl(GL, PUT, &one, edit).await.0, 200);
    has!(fake(&h.fake.gitlab_hooks(PROJECT)[0]), { "id": id, "url": URL, "secret": "rotated",
        "events": ["push_events"], "active": true });
    // "When you change the webhook URL, the secret token is reset and not retained."
    let moved = json!({ "url": format!("{URL}/moved") });
    assert_eq!(h.gl(GL, PUT, &one, moved).await.0, 200);
    assert_eq!(h.fake.gitlab_hooks(PROJECT)[0].secret, None);
    let no_url = json!({ "token": "x" });
    answers!(h.gl(GL, PUT, &one, no_url).await, 400, { "error": "url is missing" });
    assert_eq!(h.gl(GL, DELETE, &one, NONE).await.0, 204);
    answers!(h.gl(GL, DELETE, &one, NONE).await, 404, { "message": "404 Not found" });
    assert_eq!(h.fake.gitlab_hooks(PROJECT).len(), 1);
}

#[tokio::test]
async fn gitlab_refuses_tokens_as_gitlab_does() {
    let h = Hosts::new().await;
    let (project, hooks) = ("/projects/group%2Fsub%2Fplugins", "/projects/42/hooks");
    answers!(h.gl("", GET, project, NONE).await, 401, { "message": "401 Unauthorized" });
    assert_eq!(h.gl(GH, GET, project, NONE).await.0, 401);
    let other = h.gl("glpat-other", GET, hooks, NONE).await;
    answers!(other, 404, { "message": "404 Project Not Found" });
    let url = format!("{}{hooks}", h.fake.gitlab_api_url());
    assert_eq!(send(h.http.get(url).bearer_auth(GL), NONE).await.0, 200);
    h.fake.add_token_without_hook_rights("glpat-read");
    assert_eq!(h.gl("glpat-read", GET, project, NONE).await.0, 200);
    answers!(h.gl("glpat-read", GET, hooks, NONE).await, 403, { "message": "403 Forbidden" });
}

#[tokio::test]
async fn faults_answer_before_auth_by_path_or_method_and_every_request_is_recorded() {
    let h = Hosts::new().await;
    let id = h.fake.add_github_hook(REPO, URL, None);
    let hooks = "/repos/octo/plugins/hooks";
    let (one, log) = (format!("{hooks}/{id}"), format!("{hooks}/{id}/deliveries"));
    h.fake.fail("/hooks", 502, 1);
    assert_eq!(h.gh("", GET, hooks, NONE).await.0, 502);
    assert_eq!(h.gh("", GET, hooks, NONE).await.0, 401);
    h.fake.fail_method("DELETE", "/hooks/", 503, 1);
    assert_eq!(h.gh(GH, GET, &log, NONE).await.0, 200);
    assert_eq!(h.gh(GH, DELETE, &one, NONE).await.0, 503);
    assert_eq!(h.fake.github_hooks(REPO).len(), 1);
    assert_eq!(h.gh(GH, DELETE, &one, NONE).await.0, 204);
    h.fake.fail("/projects/42", 500, 1);
    let faulted = h.gl(GL, GET, "/projects/42/hooks", NONE).await;
    answers!(faulted, 500, { "message": "500 Internal Server Error" });
    let requests = h.fake.requests();
    let got: Vec<String> = requests.iter().map(|(m, p)| format!("{m} {p}")).collect();
    let gl = "/api/v4/projects/42/hooks";
    let expected = format!("GET {hooks}|GET {hooks}|GET {log}|DELETE {one}|DELETE {one}|GET {gl}");
    assert_eq!(got.join("|"), expected);
}

#[tokio::test]
async fn send_github_signs_with_the_hooks_current_secret_and_logs_and_redelivers() {
    let (h, receiver) = (Hosts::new().await, Receiver::start().await);
    let fake = &h.fake;
    let config = json!({ "url": receiver.url, "content_type": "json", "secret": "s3cret" });
    let hooks = "/repos/octo/plugins/hooks";
    let (_, hook, _) = h.gh(GH, POST, hooks, json!({ "config": config })).await;
    let id = hook["id"].as_u64().unwrap();
    let body = br#"{"action":"opened","number":7}"#.to_vec();
    let (status, guid) = fake.send_github(REPO, id, PR, body.clone()).await;
    let (first, got) = receiver.got(0);
    assert_eq!((status, got), (200, Bytes::from(body.clone())));
    has!(headers(&first), { "x-github-event": PR, "x-github-delivery": guid,
        "x-github-hook-id": id.to_string(), "content-type": "application/json",
        "x-github-hook-installation-target-type": "repository",
        "x-github-hook-installation-target-id": "1296269" });
    assert!(text(&first, "user-agent").starts_with("GitHub-Hookshot/"));
    let sha256 = Some(text(&first, "x-hub-signature-256"));
    assert!(signature::verify(sha256, &body, &[WebhookSecret::new("s3cret")]).is_ok());
    assert!(signature::verify(sha256, &body, &[WebhookSecret::new("other")]).is_err());
    let mut sha1 = Hmac::<Sha1>::new_from_slice(b"s3cret").unwrap();
    sha1.update(&body);
    let sha1 = format!("sha1={}", hex::encode(sha1.finalize().into_bytes()));
    assert_eq!(text(&first, "x-hub-signature"), sha1);

    let new = json!({ "config": { "url": receiver.url, "content_type": "json", "secret": "new" } });
    h.gh(GH, PATCH, &format!("{hooks}/{id}"), new).await;
    let (_, second) = fake.send_github(REPO, id, PR, body.clone()).await;
    let signed = receiver.got(1).0;
    let sha256 = Some(text(&signed, "x-hub-signature-256"));
    assert!(signature::verify(sha256, &body, &[WebhookSecret::new("new")]).is_ok());
    assert_eq!(fake.resend_github(REPO, id, &guid).await, 200);
    let (again, got) = receiver.got(2);
    assert_eq!(got, Bytes::from(body));
    for name in ["x-github-delivery", "x-hub-signature-256"] {
        assert_eq!(again[name], first[name], "{name}");
    }

    let deliveries = format!("{hooks}/{id}/deliveries?per_page=2");
    let (_, page, answer) = h.gh(GH, GET, &deliveries, NONE).await;
    let guids = [&page[0]["guid"], &page[1]["guid"]];
    assert_eq!(guids, [&json!(guid), &json!(second)]);
    has!(page[0], { "redelivery": true, "status_code": 200, "status": "OK", "event": PR,
        "action": "opened", "repository_id": 1296269, "installation_id": null,
        "throttled_at": null });
    assert!(page[0]["delivered_at"].is_string() && page[0]["duration"].is_number());
    let older = h.http.get(next(&answer).expect("older deliveries"));
    let (_, rest, answer) = send(older.bearer_auth(GH), NONE).await;
    has!(rest[0], { "guid": guid, "redelivery": false });
    assert_eq!((rest.as_array().unwrap().len(), next(&answer)), (1, None));
}

#[tokio::test]
async fn send_gitlab_sends_the_token_and_keeps_the_idempotency_key_on_retry() {
    let (h, receiver) = (Hosts::new().await, Receiver::start().await);
    let (fake, push) = (&h.fake, "Push Hook");
    let id = fake.add_gitlab_hook(PROJECT, &receiver.url, Some("gl-secret"));
    let body = br#"{"object_kind":"push"}"#.to_vec();
    let (status, sent) = fake.send_gitlab(PROJECT, id, push, body.clone()).await;
    let (first, got) = receiver.got(0);
    assert_eq!((status, got), (200, Bytes::from(body.clone())));
    has!(headers(&first), { "x-gitlab-token": "gl-secret", "x-gitlab-event": push,
        "x-gitlab-instance": fake.url(), "idempotency-key": sent.idempotency_key,
        "x-gitlab-event-uuid": sent.event_uuid, "x-gitlab-webhook-uuid": sent.webhook_uuid,
        "content-type": "application/json" });
    assert!(text(&first, "user-agent").starts_with("GitLab/"));

    let retry = fake.retry_gitlab(PROJECT, id, &sent, push, body.clone());
    let (_, retried) = retry.await;
    let again = receiver.got(1).0;
    assert_eq!(text(&again, "idempotency-key"), sent.idempotency_key);
    assert_ne!(text(&again, "x-gitlab-event-uuid"), sent.event_uuid);
    assert_eq!(retried.idempotency_key, sent.idempotency_key);
    let (_, next) = fake.send_gitlab(PROJECT, id, push, body.clone()).await;
    assert_ne!(next.idempotency_key, sent.idempotency_key);

    let bare = fake.add_gitlab_hook(PROJECT, &receiver.url, None);
    fake.send_gitlab(PROJECT, bare, "Pipeline Hook", body).await;
    let bare = receiver.got(3).0;
    assert_eq!(text(&bare, "x-gitlab-event"), "Pipeline Hook");
    assert!(bare.get("x-gitlab-token").is_none());
}

#[tokio::test]
async fn a_gitlab_hook_with_a_signing_token_signs_its_deliveries_in_the_standard_webhooks_form() {
    use hooklog_domain::gitlab::{SignedHeaders, SigningKey};
    let (h, receiver) = (Hosts::new().await, Receiver::start().await);
    let hooks = "/projects/42/hooks";
    let token = format!("whsec_{}", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    for bad in [
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "whsec_c2hvcnQ=",
        "whsec_!!",
    ] {
        let add = json!({ "url": receiver.url, "token": "t", "signing_token": bad });
        let (status, _, _) = h.gl(GL, POST, hooks, add).await;
        assert_eq!(status, 422, "{bad}");
    }
    assert!(
        h.fake.gitlab_hooks(PROJECT).is_empty(),
        "a refused hook was kept"
    );
    let add = json!({ "url": receiver.url, "token": "t", "signing_token": token });
    let (status, hook, _) = h.gl(GL, POST, hooks, add).await;
    assert_eq!(status, 201, "{hook}");
    has!(hook, { "token_present": true, "signing_token_present": true });
    assert!(!hook.to_string().contains(&token));
    let id = hook["id"].as_u64().unwrap();
    assert_eq!(
        h.fake.gitlab_hooks(PROJECT)[0].signing_token.as_deref(),
        Some(token.as_str())
    );

    let body = br#"{"object_kind":"push"}"#.to_vec();
    let (_, sent) = h
        .fake
        .send_gitlab(PROJECT, id, "Push Hook", body.clone())
        .await;
    let (got, _) = receiver.got(0);
    assert_eq!(text(&got, "webhook-id"), sent.idempotency_key);
    let signed = SignedHeaders {
        id: text(&got, "webhook-id"),
        timestamp: text(&got, "webhook-timestamp"),
        signature: text(&got, "webhook-signature"),
    };
    let key = SigningKey::from_token(&token).unwrap();
    assert_eq!(
        key.verify(signed, &body, std::time::SystemTime::now()),
        Ok(())
    );
    assert!(key
        .verify(signed, b"{}", std::time::SystemTime::now())
        .is_err());

    // Without a signing token: the id and timestamp, no signature.
    let bare = h.fake.add_gitlab_hook(PROJECT, &receiver.url, Some("t"));
    h.fake.send_gitlab(PROJECT, bare, "Push Hook", body).await;
    let (got, _) = receiver.got(1);
    assert!(got.get("webhook-signature").is_none());
    assert!(!text(&got, "webhook-timestamp").is_empty());
}

#[tokio::test]
async fn gitlab_lists_a_hooks_events_newest_first_with_the_token_redacted() {
    let (h, receiver) = (Hosts::new().await, Receiver::start().await);
    let id = h
        .fake
        .add_gitlab_hook(PROJECT, &receiver.url, Some("gl-secret"));
    let body = br#"{"object_kind":"pipeline"}"#.to_vec();
    let (_, first) = h
        .fake
        .send_gitlab(PROJECT, id, "Pipeline Hook", body.clone())
        .await;
    let (_, second) = h
        .fake
        .send_gitlab(PROJECT, id, "Merge Request Hook", body)
        .await;
    let events = format!("/projects/42/hooks/{id}/events");
    let (status, list, _) = h.gl(GL, GET, &events, NONE).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    has!(list[0], { "trigger": "merge_request_hooks", "response_status": "200",
        "url": receiver.url });
    has!(list[0]["request_headers"], { "Idempotency-Key": second.idempotency_key,
        "X-Gitlab-Token": "[REDACTED]" });
    has!(list[1], { "trigger": "pipeline_hooks", "request_data": {"object_kind": "pipeline"} });
    assert_eq!(
        list[1]["request_headers"]["Idempotency-Key"],
        first.idempotency_key.as_str()
    );
    assert!(!Value::Array(list.clone()).to_string().contains("gl-secret"));
    let (status, _, _) = h.gl(GL, GET, &format!("{events}?per_page=21"), NONE).await;
    assert_eq!(status, 400);
    let (status, _, _) = h
        .gl(GL, GET, "/projects/42/hooks/999999/events", NONE)
        .await;
    assert_eq!(status, 404);
}
