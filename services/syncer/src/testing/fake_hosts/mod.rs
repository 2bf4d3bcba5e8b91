//! A fake of the two repository hosts whose webhooks hooklog registers on a user's behalf:
//! GitHub's *repository webhooks* REST API and GitLab's *project hooks* API (v4), served by one
//! real HTTP server (axum on `127.0.0.1:0`), so the code under test goes through its real HTTP
//! client, auth headers, status handling and paging. It answers in the providers' documented
//! shapes and words, and plays their side of delivery too: it sends signed (GitHub) or
//! token-bearing (GitLab) deliveries to a hook's URL with the providers' headers.
//!
//! What it is built from, and where that matters:
//!
//! - GitHub, "REST API endpoints for repository webhooks" and "… for repository webhook
//!   deliveries" (<https://docs.github.com/en/rest/webhooks/repos>,
//!   <https://docs.github.com/en/rest/webhooks/repo-deliveries>). A hook's `config.secret` is
//!   answered as `"********"`, never its value. GitHub wants hooks to differ in `config` unless
//!   their events do not overlap, so a hook with an existing hook's URL *and a common event* is a
//!   422 "Hook already exists on this repository". "Update a repository webhook" says a `config`
//!   sent without `secret` *removes* the secret; so it does here (other config fields are kept
//!   when absent). `content_type` defaults to `form`, as GitHub's does, and a form hook is sent
//!   `payload=<url-encoded JSON>`, signed over that body: a client that forgets
//!   `"content_type": "json"` finds out here. A redelivery resends the stored request byte for
//!   byte (same GUID and signature), as in the App fake (`fake_github`).
//! - GitLab, "Project webhooks API" (<https://docs.gitlab.com/api/project_webhooks/>) and
//!   `lib/api/project_hooks.rb`: `:id` is the numeric id or the URL-encoded path; the hook's
//!   `token` is never returned; `url` is required on `PUT` as on `POST` (400 `url is missing`);
//!   a changed URL without `token` resets the token, as the docs say; `DELETE` answers
//!   `204 No Content` (`destroy_conditionally!`). GitLab has no uniqueness rule for hook URLs:
//!   the same URL twice is two hooks.
//! - GitLab's delivery headers ("Webhooks", *Delivery headers*,
//!   <https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers>, and
//!   `app/services/web_hook_service.rb`): `Idempotency-Key` is "consistent across webhook
//!   retries" (a resend, `WebHooks::Events::ResendService`, passes the logged key back), while
//!   `X-Gitlab-Event-UUID` is made afresh for every request not itself triggered by a webhook,
//!   so a retry carries a new one. `X-Gitlab-Webhook-UUID` is documented as "unique ID for each
//!   webhook", yet GitLab builds it with `SecureRandom.uuid` per request (the API docs' own
//!   event log shows two values for one hook): it is fresh per request here too, so a receiver
//!   cannot mistake it for the hook's identity.
//! - GitLab's newer HMAC *signing token* (`webhook-id` = the `Idempotency-Key`,
//!   `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//!   the secret given as `whsec_<base64 of 32 bytes>`; gitlab-org/gitlab!230944 and !231325,
//!   behind the `webhook_signing_token` flag) is not faked: GitLab's webhook docs do not
//!   describe it yet.
//!
//! - GitLab's git over HTTPS (`git_http`): a project's repository served by `git
//!   http-backend` behind GitLab's Basic auth (a token as the password of any user name).
//!
//! Tests register repositories and projects with the tokens that administer their hooks; any
//! other token is refused as each provider refuses it (GitHub 401, then 404 to hide the
//! repository; GitLab 401, then `404 Project Not Found`), and a token added with
//! `add_token_without_hook_rights` reads everything and is refused hooks (403). Faults are
//! armed by path, optionally by method, and answered before auth. This module owns the state,
//! start-up, access, faults and inspection; `github` and `gitlab` each provider's endpoints,
//! shapes and deliveries.

mod git_http;
mod github;
mod gitlab;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use self::git_http::GitRequest;
pub use self::gitlab::GitlabSent;
use Provider::{Github, Gitlab};

/// A hook as a test inspects it, of either provider. `secret` is GitHub's `config.secret` or
/// GitLab's `token`, as last set; `events` are GitHub's event names or GitLab's enabled
/// `*_events` flags (`"push_events"`, …); GitLab hooks are always `active`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHook {
    pub id: u64,
    pub url: String,
    pub secret: Option<String>,
    /// GitLab's `signing_token`, as set.
    pub signing_token: Option<String>,
    pub events: Vec<String>,
    pub active: bool,
}

/// The running fake; the server stops when it is dropped.
pub struct FakeRepoHosts {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    url: String,
    record: Mutex<Record>,
    /// Hook and delivery ids, one sequence, far from any test's repository or project ids.
    last_id: AtomicU64,
    /// Sends deliveries: 10 s to answer, redirects not followed, as both providers do.
    client: reqwest::Client,
}

#[derive(Default)]
struct Record {
    repos: Vec<Repo>,
    /// Tokens that read every repository and project and administer no hooks.
    read_only: HashSet<String>,
    faults: Vec<Armed>,
    requests: Vec<(String, String)>,
    git_requests: Vec<GitRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Github,
    Gitlab,
}

/// A GitHub repository (`owner/name`) or a GitLab project (`group/…/name`), the tokens that
/// administer its hooks, and its hooks in creation order.
struct Repo {
    provider: Provider,
    name: String,
    id: u64,
    tokens: HashSet<String>,
    hooks: Vec<Hook>,
    /// The work tree a GitLab project's git-over-HTTPS serves (`git_http`).
    git_dir: Option<std::path::PathBuf>,
}

/// A hook of either provider, with the fields only one of them has.
struct Hook {
    id: u64,
    url: String,
    secret: Option<String>,
    events: Vec<String>,
    active: bool,
    created_at: String,
    updated_at: String,
    /// GitHub's `config.content_type` and `config.insecure_ssl`, `last_response`, and the
    /// delivery log in ascending id order.
    content_type: String,
    insecure_ssl: String,
    last_response: Value,
    deliveries: Vec<github::Delivery>,
    /// GitLab's `push_events_branch_filter` and `enable_ssl_verification`.
    branch_filter: String,
    ssl_verification: bool,
    /// GitLab's `signing_token`, and the hook's events ("Get a list of project webhook
    /// events"), in ascending id order.
    signing_token: Option<String>,
    gitlab_events: Vec<Value>,
}

/// Why a request may not see a repository: each provider answers these in its own words.
enum Refusal {
    /// No token, or one the provider does not know (401).
    Unknown,
    /// A token that may not see this repository or project (404).
    Hidden,
    /// A token that may see it, not administer its hooks (403).
    ReadOnly,
}

/// An endpoint's answer; a refusal is boxed, a `Response` being too large to return in an `Err`.
type Answer = Result<Response, Refused>;

struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

struct Armed {
    method: Option<String>,
    path_contains: String,
    status: u16,
    times: usize,
}

impl FakeRepoHosts {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Shared {
            url: format!("http://127.0.0.1:{port}"),
            record: Mutex::default(),
            last_id: AtomicU64::new(5_000_000),
            client: hooklog_infra::http::client_builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        });
        let mut app = Router::new();
        for depth in [
            "",
            "/hooks",
            "/hooks/{hook_id}",
            "/hooks/{hook_id}/deliveries",
            "/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
        ] {
            app = app.route(
                &format!("/repos/{{owner}}/{{repo}}{depth}"),
                any(github::api),
            );
        }
        for depth in ["", "/hooks", "/hooks/{hook_id}", "/hooks/{hook_id}/events"] {
            app = app.route(&format!("/api/v4/projects/{{id}}{depth}"), any(gitlab::api));
        }
        let app = app
            .fallback(
                |State(shared): State<Arc<Shared>>, request: Request| async move {
                    let path = request.uri().path();
                    if git_http::is_git(path) {
                        return git_http::serve(shared, request).await;
                    }
                    match path.starts_with("/api/v4/") {
                        true => gitlab::message(StatusCode::NOT_FOUND, "404 Not Found"),
                        false => github::message(StatusCode::NOT_FOUND, "Not Found"),
                    }
                },
            )
            .layer(middleware::from_fn_with_state(shared.clone(), faults))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake hosts serve");
        });
        Self { shared, server }
    }

    /// The GitHub API root, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The GitLab API root, `url()` + `/api/v4`; deliveries name `url()` as `X-Gitlab-Instance`.
    pub fn gitlab_api_url(&self) -> String {
        format!("{}/api/v4", self.shared.url)
    }

    /// Registers the GitHub repository `owner/name` (matched case-insensitively) as `id`, whose
    /// hooks `token` may administer; registering it again adds another token.
    pub fn add_github_repository(&self, full_name: &str, id: u64, token: &str) {
        self.register(Github, full_name, id, token);
    }

    /// Registers the GitLab project `group/…/name` (found by path, case-insensitively, or by
    /// `id`), whose hooks `token` may administer; registering it again adds another token.
    pub fn add_gitlab_project(&self, path_with_namespace: &str, id: u64, token: &str) {
        self.register(Gitlab, path_with_namespace, id, token);
    }

    /// Serves the work tree `dir` as the registered GitLab project's repository, over git's
    /// smart HTTP at `url()/<path_with_namespace>.git`, to the project's tokens (`git_http`).
    pub fn serve_gitlab_repository(&self, path_with_namespace: &str, dir: std::path::PathBuf) {
        let mut record = self.shared.record();
        let repo = record
            .repos
            .iter_mut()
            .find(|r| r.provider == Gitlab && r.name.eq_ignore_ascii_case(path_with_namespace))
            .expect("the project is registered");
        repo.git_dir = Some(dir);
    }

    /// Every git request made of the fake GitLab, oldest first.
    pub fn git_requests(&self) -> Vec<GitRequest> {
        self.shared.record().git_requests.clone()
    }

    fn register(&self, provider: Provider, name: &str, id: u64, token: &str) {
        let mut record = self.shared.record();
        let same = |r: &Repo| r.provider == provider && r.name.eq_ignore_ascii_case(name);
        if !record.repos.iter().any(same) {
            let (name, tokens, hooks) = (name.to_owned(), HashSet::new(), Vec::new());
            record.repos.push(Repo {
                provider,
                name,
                id,
                tokens,
                hooks,
                git_dir: None,
            });
        }
        let repo = record
            .repos
            .iter_mut()
            .find(|r| same(r))
            .expect("registered");
        repo.tokens.insert(token.to_owned());
    }

    /// A token that reads every repository and project, registered or not yet, and is answered
    /// 403 on their hooks (unless also registered for one): a token without admin rights.
    pub fn add_token_without_hook_rights(&self, token: &str) {
        self.shared.record().read_only.insert(token.to_owned());
    }

    /// Answers `status` (with the provider's JSON message) instead of the route, before auth, to
    /// the next `times` requests of any method whose path and query contain `path_contains`.
    pub fn fail(&self, path_contains: &str, status: u16, times: usize) {
        self.arm(None, path_contains, status, times);
    }

    /// `fail`, for requests of `method` only.
    pub fn fail_method(&self, method: &str, path_contains: &str, status: u16, times: usize) {
        self.arm(
            Some(method.to_ascii_uppercase()),
            path_contains,
            status,
            times,
        );
    }

    fn arm(&self, method: Option<String>, path_contains: &str, status: u16, times: usize) {
        let path_contains = path_contains.to_owned();
        let armed = Armed {
            method,
            path_contains,
            status,
            times,
        };
        self.shared.record().faults.push(armed);
    }

    /// Every request served (faulted or not), as method and path (as sent, without the query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.record().requests.clone()
    }

    /// The hooks of the GitHub repository `full_name`, in creation order.
    pub fn github_hooks(&self, full_name: &str) -> Vec<FakeHook> {
        self.hooks(Github, full_name)
    }

    /// The hooks of the GitLab project `path`, in creation order.
    pub fn gitlab_hooks(&self, path: &str) -> Vec<FakeHook> {
        self.hooks(Gitlab, path)
    }

    fn hooks(&self, provider: Provider, name: &str) -> Vec<FakeHook> {
        let mut record = self.shared.record();
        let hooks = record.repo(provider, name).hooks.iter();
        let fake = |h: &Hook| FakeHook {
            id: h.id,
            url: h.url.clone(),
            secret: h.secret.clone(),
            signing_token: h.signing_token.clone(),
            events: h.events.clone(),
            active: h.active,
        };
        hooks.map(fake).collect()
    }

    /// Creates a hook on `full_name` as if someone had before: `push`, active, JSON, with
    /// `secret`. Its id.
    pub fn add_github_hook(&self, full_name: &str, url: &str, secret: Option<&str>) -> u64 {
        self.add_hook(Github, full_name, url, secret, "push")
    }

    /// Creates a hook on the project `path` as if someone had before: push events, with
    /// `token`. Its id.
    pub fn add_gitlab_hook(&self, path: &str, url: &str, token: Option<&str>) -> u64 {
        self.add_hook(Gitlab, path, url, token, "push_events")
    }

    fn add_hook(
        &self,
        provider: Provider,
        name: &str,
        url: &str,
        secret: Option<&str>,
        event: &str,
    ) -> u64 {
        let mut hook = Hook::new(self.shared.next_id(), url, vec![event.to_owned()]);
        hook.secret = secret.map(str::to_owned);
        let id = hook.id;
        self.shared.record().repo(provider, name).hooks.push(hook);
        id
    }
}

impl Drop for FakeRepoHosts {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Posts a delivery: the answer's status code (0 when none came), GitHub's words for the
    /// outcome, and the seconds it took.
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, String, f64) {
        let started = Instant::now();
        let mut post = self.client.post(url);
        for (name, value) in headers {
            post = post.header(*name, value);
        }
        let outcome = match post.body(body).send().await {
            // Read to the end, so the duration covers the answer.
            Ok(response) => Ok((response.status().as_u16(), response.bytes().await)),
            Err(e) if e.is_timeout() => Err("timed out"),
            Err(_) => Err("failed to connect to host"),
        };
        let duration = started.elapsed().as_secs_f64();
        match outcome {
            Ok((code @ 200..=299, _)) => (code, "OK".to_owned(), duration),
            Ok((code, _)) => (code, format!("Invalid HTTP Response: {code}"), duration),
            Err(status) => (0, status.to_owned(), duration),
        }
    }
}

impl Record {
    /// The registered repository or project `name`, for the test-facing helpers.
    fn repo(&mut self, provider: Provider, name: &str) -> &mut Repo {
        let found = self.repos.iter_mut();
        let mut found = found.filter(|r| r.provider == provider);
        let repo = found.find(|r| r.name.eq_ignore_ascii_case(name));
        repo.unwrap_or_else(|| panic!("no {provider:?} repository {name} is registered"))
    }

    /// Its hook `id`, for the test-facing helpers.
    fn hook(&mut self, provider: Provider, name: &str, id: u64) -> &mut Hook {
        let hook = self.repo(provider, name).hook(&id.to_string());
        hook.unwrap_or_else(|| panic!("{name} has no hook {id}"))
    }

    /// The repository or project `key` (its name, or a GitLab project's numeric id) as `token`
    /// may see it, and administer its hooks when `hooks`.
    fn visible(
        &mut self,
        provider: Provider,
        token: Option<&str>,
        key: &str,
        hooks: bool,
    ) -> Result<&mut Repo, Refusal> {
        let token = token.unwrap_or_default();
        let read_only = self.read_only.contains(token);
        let mut ours = self.repos.iter().filter(|r| r.provider == provider);
        if token.is_empty() || !(read_only || ours.any(|r| r.tokens.contains(token))) {
            return Err(Refusal::Unknown);
        }
        let number = key.parse::<u64>().ok().filter(|_| provider == Gitlab);
        let repo = self.repos.iter_mut().find(|r| {
            r.provider == provider && (r.name.eq_ignore_ascii_case(key) || Some(r.id) == number)
        });
        let repo = repo
            .filter(|r| read_only || r.tokens.contains(token))
            .ok_or(Refusal::Hidden)?;
        if hooks && !repo.tokens.contains(token) {
            return Err(Refusal::ReadOnly);
        }
        Ok(repo)
    }
}

impl Repo {
    fn hook(&mut self, id: &str) -> Option<&mut Hook> {
        self.hooks.iter_mut().find(|h| h.id.to_string() == id)
    }

    /// Removes hook `id`: whether there was one.
    fn remove(&mut self, id: &str) -> bool {
        let before = self.hooks.len();
        self.hooks.retain(|h| h.id.to_string() != id);
        self.hooks.len() < before
    }
}

impl Hook {
    fn new(id: u64, url: &str, events: Vec<String>) -> Self {
        Self {
            id,
            url: url.to_owned(),
            secret: None,
            events,
            active: true,
            created_at: now(),
            updated_at: now(),
            content_type: "json".to_owned(),
            insecure_ssl: "0".to_owned(),
            last_response: json!({ "code": null, "status": "unused", "message": null }),
            deliveries: Vec::new(),
            branch_filter: String::new(),
            ssl_verification: true,
            signing_token: None,
            gitlab_events: Vec::new(),
        }
    }
}

/// `page` and `per_page` (both providers' offset paging) and `cursor` (GitHub's delivery log).
#[derive(Deserialize, Default)]
struct PageQuery {
    per_page: Option<usize>,
    page: Option<usize>,
    cursor: Option<String>,
}

/// `items` paged by `per_page` (`default`, at most 100) and `page` (from 1), with a `Link` to
/// the other pages of `base`; GitLab adds its `X-Total` and `X-Next-Page` headers.
fn paged(
    items: Vec<Value>,
    query: &PageQuery,
    default: usize,
    base: &str,
    gitlab: bool,
) -> Response {
    let per_page = query.per_page.unwrap_or(default).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let (total, pages) = (items.len(), items.len().div_ceil(per_page).max(1));
    let items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link = |n: usize, rel| format!("<{base}?per_page={per_page}&page={n}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page < pages {
        links.extend([link(page + 1, "next"), link(pages, "last")]);
    }
    if page > 1 {
        links.extend([link(page - 1, "prev"), link(1, "first")]);
    }
    let mut response = Json(Value::Array(items)).into_response();
    let headers = response.headers_mut();
    if !links.is_empty() {
        let links = HeaderValue::try_from(links.join(", ")).expect("an ASCII link");
        headers.insert(header::LINK, links);
    }
    if gitlab {
        let next = Some(page + 1).filter(|n| *n <= pages);
        let next = next.map_or_else(String::new, |n| n.to_string());
        headers.insert("x-total", total.into());
        headers.insert(
            "x-next-page",
            HeaderValue::try_from(next).expect("a number"),
        );
    }
    response
}

/// Now, in whole seconds, as both providers write times.
fn now() -> String {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0);
    now.expect("whole seconds")
        .format(&Rfc3339)
        .expect("RFC 3339")
}

/// The request body when it is a JSON object.
fn json_object(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn strings(value: &Value) -> Option<Vec<String>> {
    let items = value.as_array()?.iter().filter_map(Value::as_str);
    Some(items.map(str::to_owned).collect())
}

/// The bearer token of `Authorization` (`Bearer <t>`, or GitHub's `token <t>`).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
}

/// The number of `/`-separated segments of the request's raw path (a GitLab project path,
/// URL-encoded, is one), which tells the routes of one handler apart.
fn depth(request_path: &str) -> usize {
    request_path.split('/').count()
}

/// Records the request, then answers an armed fault instead of the route when one matches.
async fn faults(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or(&*path, |p| p.as_str())
        .to_owned();
    let fault = {
        let mut record = shared.record();
        record.requests.push((method.clone(), path.clone()));
        let armed = record.faults.iter_mut().find(|a| {
            let method_matches = a.method.as_ref().is_none_or(|m| *m == method);
            a.times > 0 && method_matches && target.contains(&a.path_contains)
        });
        armed.map(|a| {
            a.times -= 1;
            a.status
        })
    };
    let Some(status) = fault else {
        return next.run(request).await;
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Fault");
    match path.starts_with("/api/v4/") {
        true => gitlab::message(status, &format!("{} {reason}", status.as_u16())),
        false => github::message(status, reason),
    }
}
