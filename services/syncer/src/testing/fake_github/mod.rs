//! A fake GitHub at the syncer's true external edge: a real HTTP server (axum on port 0) that
//! answers the App endpoints the `GithubApp` source calls, in GitHub's documented shapes, from a
//! real git repository read with the `git` command. It verifies App JWTs with the App's public
//! key, issues installation tokens and requires them, records what it was asked, and fails on
//! demand (rate limits, bad gateways, truncated trees).
//!
//! Like GitHub, it answers a commit's tarball with a redirect to a download host: the same server
//! named `localhost` instead of `127.0.0.1`, so the client sees another host (and must not send
//! its token there), with a download token in the URL as codeload has.
//!
//! It also plays the App's webhook (`hooks`): it signs and sends deliveries to a URL a test
//! sets, keeps GitHub's delivery log of them, and serves the App endpoints that page through that
//! log and redeliver, with the same App JWT.
//!
//! This module owns the fake's state, its armed faults, its counters, its in-memory blob store
//! and start-up; `routes` holds the endpoint handlers, `hooks` the webhook and its log,
//! `installations` the App's installations a test registers and their repository listings.

mod hooks;
mod installations;
mod routes;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use jsonwebtoken::DecodingKey;
use secrecy::SecretString;

pub use self::hooks::HookDelivery;
use self::hooks::HookLog;
use self::routes::{access_tokens, blob, branch, codeload, message, not_found, tarball, tree};
use super::TestRepo;
use crate::source::github::{GithubApp, GithubAppConfig};

/// The App the fake knows by default: its id and the throwaway key pair in `tests/fixtures`.
pub const APP_ID: u64 = 4242;
pub const PRIVATE_KEY: &str = include_str!("../../../tests/fixtures/test-app-key.pem");
pub const PUBLIC_KEY: &str = include_str!("../../../tests/fixtures/test-app-key.pub.pem");

/// A failure the fake answers instead of the real thing.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// 403 with `X-RateLimit-Remaining: 0` and a reset `reset_in_secs` from now.
    RateLimit403 { reset_in_secs: u64 },
    /// 429 with `Retry-After`.
    TooMany429 { retry_after_secs: u64 },
    /// 502 Bad Gateway.
    BadGateway,
}

/// The running fake; the server stops when it is dropped.
pub struct FakeGithub {
    url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    repo_dir: PathBuf,
    app_id: u64,
    key: DecodingKey,
    url: String,
    /// Where tarball redirects lead: this server under another host name.
    download_url: String,
    record: Mutex<Record>,
    /// Every blob of the repository by SHA, from one `git cat-file --batch-all-objects --batch`,
    /// read again when a SHA is missing (a commit made since): a process per blob request made a
    /// 10,000-blob sync take half a minute.
    blobs: tokio::sync::RwLock<HashMap<String, Bytes>>,
    /// Sends webhook deliveries: 10 s to answer, redirects not followed, as GitHub does.
    hook_client: reqwest::Client,
}

#[derive(Default)]
struct Record {
    /// Each installation token issued, and the installation it is for.
    tokens: HashMap<String, u64>,
    issued: u64,
    exchanges: usize,
    verified_jwts: Vec<String>,
    rejected_jwts: usize,
    blob_fetches: HashMap<String, usize>,
    tree_fetches: usize,
    tarball_fetches: usize,
    archive_downloads: usize,
    archive_downloads_with_credentials: usize,
    download_tokens: HashSet<String>,
    faults: Vec<Armed>,
    truncated: bool,
    hooks: HookLog,
    installations: HashMap<u64, installations::FakeInstallation>,
    installation_lookups: usize,
    repository_listings: usize,
    /// Tokens that read the repository as a person or a fine-grained token does (no
    /// installation), and how many requests each made.
    repository_tokens: HashMap<String, usize>,
}

struct Armed {
    path_contains: String,
    fault: Fault,
    times: usize,
}

impl FakeGithub {
    /// Serves `repo_dir` as every repository, to the App `app_id` whose public key is
    /// `public_key_pem`.
    pub async fn start(repo_dir: PathBuf, app_id: u64, public_key_pem: &str) -> Self {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("an RSA public key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let url = format!("http://127.0.0.1:{port}");
        let shared = Arc::new(Shared {
            repo_dir,
            app_id,
            key,
            url: url.clone(),
            download_url: format!("http://localhost:{port}"),
            record: Mutex::default(),
            blobs: tokio::sync::RwLock::default(),
            hook_client: hooklog_infra::http::client_builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        });
        // The repository API takes an installation token; the token exchange and the webhook's
        // delivery log take the App JWT, and the download host a download token (all checked by
        // their handlers).
        let repository_api = Router::new()
            .route("/repos/{owner}/{repo}/git/trees/{sha}", get(tree))
            .route("/repos/{owner}/{repo}/git/blobs/{sha}", get(blob))
            .route("/repos/{owner}/{repo}/branches/{*branch}", get(branch))
            .route("/repos/{owner}/{repo}/tarball/{sha}", get(tarball))
            .route(
                "/installation/repositories",
                get(installations::repositories),
            )
            .route_layer(middleware::from_fn_with_state(
                shared.clone(),
                installation_token,
            ));
        let app = Router::new()
            .route(
                "/app/installations/{installation}/access_tokens",
                post(access_tokens),
            )
            .route(
                "/app/installations/{installation}",
                get(installations::installation),
            )
            .route("/app/hook/deliveries", get(hooks::deliveries))
            .route("/app/hook/deliveries/{delivery_id}", get(hooks::delivery))
            .route(
                "/app/hook/deliveries/{delivery_id}/attempts",
                post(hooks::redeliver),
            )
            .merge(repository_api)
            .route(
                "/codeload/{owner}/{repo}/legacy.tar.gz/{sha}",
                get(codeload),
            )
            .fallback(|| async { not_found("Not Found") })
            .layer(middleware::from_fn_with_state(shared.clone(), faults))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake GitHub serves");
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// Serves `repo` to the App `APP_ID` with the fixture key.
    pub async fn start_for(repo: &TestRepo) -> Self {
        Self::start(repo.to_path_buf(), APP_ID, PUBLIC_KEY).await
    }

    /// A `GithubApp` configuration for this fake, as `APP_ID` with the fixture key; rate limits
    /// are waited out up to 5 s so tests stay fast.
    pub fn app_config(&self) -> GithubAppConfig {
        GithubAppConfig {
            api_url: self.url(),
            app_id: Some(APP_ID),
            private_key: Some(SecretString::from(PRIVATE_KEY)),
            retries: 3,
            max_rate_limit_wait: Duration::from_secs(5),
            ..GithubAppConfig::default()
        }
    }

    /// The `GithubApp` of `app_config`.
    pub fn app(&self) -> GithubApp {
        GithubApp::new(self.app_config()).expect("the App builds")
    }

    /// The API root, to use as `api_url`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Answers `fault` to the next `times` requests whose path (and query) contains
    /// `path_contains`.
    pub fn fail_next(&self, path_contains: &str, fault: Fault, times: usize) {
        self.shared.record().faults.push(Armed {
            path_contains: path_contains.to_owned(),
            fault,
            times,
        });
    }

    /// While on, a recursive tree lists only the root level and says `"truncated": true`.
    pub fn set_truncated(&self, truncated: bool) {
        self.shared.record().truncated = truncated;
    }

    /// Registers an installation of the App: `account`'s, with `repositories` (id, full name,
    /// default branch), as `GET /app/installations/{id}` and `GET /installation/repositories`
    /// answer them.
    pub fn add_installation(&self, id: u64, account: &str, repositories: &[(u64, &str, &str)]) {
        self.shared.record().installations.insert(
            id,
            installations::FakeInstallation {
                account: account.to_owned(),
                repositories: repositories
                    .iter()
                    .map(|(id, name, branch)| (*id, (*name).to_owned(), (*branch).to_owned()))
                    .collect(),
            },
        );
    }

    /// `GET /app/installations/{id}` requests answered (known or not).
    pub fn installation_lookups(&self) -> usize {
        self.shared.record().installation_lookups
    }

    /// `GET /installation/repositories` pages served.
    pub fn repository_listings(&self) -> usize {
        self.shared.record().repository_listings
    }

    /// Forgets every token issued, as GitHub does when a token is revoked.
    /// Lets `token` read the repository without an installation, as a personal or
    /// fine-grained token of someone who can read it does.
    pub fn add_repository_token(&self, token: &str) {
        self.shared
            .record()
            .repository_tokens
            .insert(token.to_owned(), 0);
    }

    /// Refuses `token` from now on, as GitHub refuses a revoked token (401).
    pub fn revoke_repository_token(&self, token: &str) {
        self.shared.record().repository_tokens.remove(token);
    }

    /// How many requests `token` (added by `add_repository_token`) made.
    pub fn repository_token_uses(&self, token: &str) -> usize {
        self.shared
            .record()
            .repository_tokens
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    pub fn revoke_tokens(&self) {
        self.shared.record().tokens.clear();
    }

    pub fn token_exchanges(&self) -> usize {
        self.shared.record().exchanges
    }

    /// The App JWTs that verified, in order.
    pub fn verified_jwts(&self) -> Vec<String> {
        self.shared.record().verified_jwts.clone()
    }

    /// Requests to an App JWT endpoint whose JWT was missing or did not verify (answered 401).
    pub fn rejected_jwts(&self) -> usize {
        self.shared.record().rejected_jwts
    }

    pub fn blob_fetches(&self) -> usize {
        self.shared.record().blob_fetches.values().sum()
    }

    pub fn blob_fetches_of(&self, sha: &str) -> usize {
        let record = self.shared.record();
        record.blob_fetches.get(sha).copied().unwrap_or(0)
    }

    /// Tree listings served (recursive or not).
    pub fn tree_fetches(&self) -> usize {
        self.shared.record().tree_fetches
    }

    /// Tarball requests answered with a redirect to the download host.
    pub fn tarball_fetches(&self) -> usize {
        self.shared.record().tarball_fetches
    }

    /// Requests to the download host (with a valid download token or not).
    pub fn archive_downloads(&self) -> usize {
        self.shared.record().archive_downloads
    }

    /// Requests to the download host that carried an `Authorization` header: a client that
    /// forwards its installation token across hosts.
    pub fn archive_downloads_with_credentials(&self) -> usize {
        self.shared.record().archive_downloads_with_credentials
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The installation of the token the request carries, as `token` or `Bearer`, when this
    /// fake issued it (and it was not revoked).
    fn token_installation(&self, headers: &HeaderMap) -> Option<u64> {
        let token = presented_token(headers)?;
        self.record().tokens.get(token).copied()
    }

    /// The blob `sha` (full, lowercase), from the store, which is read again from the
    /// repository when it lacks `sha`.
    async fn blob(&self, sha: &str) -> Option<Bytes> {
        if let Some(bytes) = self.blobs.read().await.get(sha) {
            return Some(bytes.clone());
        }
        let mut blobs = self.blobs.write().await;
        // Another request may have read the repository again while this one waited.
        if !blobs.contains_key(sha) {
            let out = self
                .git(&["cat-file", "--batch-all-objects", "--batch", "--unordered"])
                .await
                .expect("cat-file of every object");
            *blobs = parse_batch(&out);
        }
        blobs.get(sha).cloned()
    }

    async fn git(&self, args: &[&str]) -> Option<Vec<u8>> {
        let out = tokio::process::Command::new("git")
            .arg("-C")
            .arg(&self.repo_dir)
            .args(args)
            .output()
            .await
            .expect("git runs");
        out.status.success().then_some(out.stdout)
    }
}

/// The token a request presents, as `token <t>` or `Bearer <t>`.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("token ")
                .or_else(|| v.strip_prefix("Bearer "))
        })
}

/// The blobs of `git cat-file --batch` output: `<sha> <type> <size>\n<content>\n` per object.
fn parse_batch(out: &[u8]) -> HashMap<String, Bytes> {
    let out = Bytes::copy_from_slice(out);
    let mut blobs = HashMap::new();
    let mut at = 0;
    while at < out.len() {
        let line_end = at
            + out[at..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("a header");
        let header = std::str::from_utf8(&out[at..line_end]).expect("an ASCII header");
        let fields: Vec<&str> = header.split(' ').collect();
        let size: usize = fields[2].parse().expect("an object size");
        let content = line_end + 1;
        if fields[1] == "blob" {
            blobs.insert(fields[0].to_owned(), out.slice(content..content + size));
        }
        at = content + size + 1;
    }
    blobs
}

/// The installation whose token a request to the repository API carried, for the handlers
/// that answer as that installation (its repository listing).
#[derive(Debug, Clone, Copy)]
struct TokenInstallation(u64);

/// Answers 401 `Bad credentials`, as GitHub does, unless the request carries an installation
/// token this fake issued; the request goes on with the token's `TokenInstallation`.
async fn installation_token(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let personal = presented_token(request.headers()).is_some_and(|token| {
        let mut record = shared.record();
        let uses = record.repository_tokens.get_mut(token);
        uses.map(|uses| *uses += 1).is_some()
    });
    if personal {
        // Not an installation: it reads repositories, and `/installation/...` is not its.
        if request.uri().path().starts_with("/installation/") {
            return message(
                StatusCode::FORBIDDEN,
                "Resource not accessible by personal access token",
            );
        }
        return next.run(request).await;
    }
    let Some(installation) = shared.token_installation(request.headers()) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    request
        .extensions_mut()
        .insert(TokenInstallation(installation));
    next.run(request).await
}

/// Answers an armed fault instead of the route, when one matches.
async fn faults(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fault = {
        let mut record = shared.record();
        let armed = record
            .faults
            .iter_mut()
            .find(|a| a.times > 0 && target.contains(&a.path_contains));
        armed.map(|a| {
            a.times -= 1;
            a.fault
        })
    };
    match fault {
        Some(fault) => fault_response(fault),
        None => next.run(request).await,
    }
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimit403 { reset_in_secs } => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let reset = (now + Duration::from_secs(reset_in_secs)).as_secs();
            let mut response = message(StatusCode::FORBIDDEN, "API rate limit exceeded");
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
            response
        }
        Fault::TooMany429 { retry_after_secs } => {
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::BadGateway => message(StatusCode::BAD_GATEWAY, "Server Error"),
    }
}
