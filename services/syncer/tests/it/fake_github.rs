//! A fake GitHub at the syncer's true external edge: a real HTTP server (axum on port 0) that
//! answers the App endpoints the `GithubApp` source calls, in GitHub's documented shapes, from a
//! real git repository read with the `git` command. It verifies App JWTs with the App's public
//! key, issues installation tokens and requires them, records what it was asked, and fails on
//! demand (rate limits, bad gateways, truncated trees).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::repo::TestRepo;

/// The App the fake knows by default: its id and the throwaway key pair in `tests/fixtures`.
pub const APP_ID: u64 = 4242;
pub const PRIVATE_KEY: &str = include_str!("../fixtures/test-app-key.pem");
pub const PUBLIC_KEY: &str = include_str!("../fixtures/test-app-key.pub.pem");

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
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    tokens: HashSet<String>,
    issued: u64,
    exchanges: usize,
    verified_jwts: Vec<String>,
    blob_fetches: HashMap<String, usize>,
    tree_fetches: usize,
    faults: Vec<Armed>,
    truncated: bool,
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
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            repo_dir,
            app_id,
            key,
            url: url.clone(),
            record: Mutex::default(),
        });
        let app = Router::new()
            .route(
                "/app/installations/{installation}/access_tokens",
                post(access_tokens),
            )
            .route("/repos/{owner}/{repo}/git/trees/{sha}", get(tree))
            .route("/repos/{owner}/{repo}/git/blobs/{sha}", get(blob))
            .route("/repos/{owner}/{repo}/branches/{*branch}", get(branch))
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

    /// Forgets every token issued, as GitHub does when a token is revoked.
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

    /// Whether the request carries a token this fake issued, as `token` or `Bearer`.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("token ")
                    .or_else(|| v.strip_prefix("Bearer "))
            });
        presented.is_some_and(|token| self.record().tokens.contains(token))
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

#[derive(Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
}

/// `POST /app/installations/{installation}/access_tokens`: a verified App JWT buys a token.
async fn access_tokens(
    State(shared): State<Arc<Shared>>,
    Path(installation): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[shared.app_id.to_string()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let verified = jwt.and_then(|jwt| {
        jsonwebtoken::decode::<AppClaims>(jwt, &shared.key, &validation)
            .ok()
            .map(|data| (jwt, data.claims))
    });
    let Some((jwt, claims)) = verified else {
        return message(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    };
    if claims.exp - claims.iat > 600 {
        return message(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
        );
    }
    let token = {
        let mut record = shared.record();
        record.exchanges += 1;
        record.issued += 1;
        record.verified_jwts.push(jwt.to_owned());
        let token = format!("ghs_fake{installation}x{}", record.issued);
        record.tokens.insert(token.clone());
        token
    };
    let expires_at = (OffsetDateTime::now_utc() + time::Duration::hours(1))
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&Rfc3339)
        .expect("RFC 3339");
    let body = json!({
        "token": token,
        "expires_at": expires_at,
        "permissions": { "contents": "read", "metadata": "read" },
        "repository_selection": "all",
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Deserialize)]
struct TreeQuery {
    recursive: Option<String>,
}

/// `GET /repos/{owner}/{repo}/git/trees/{sha}[?recursive=1]`, of a commit or a tree.
async fn tree(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<TreeQuery>,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let Some(tree_sha) = resolve(&shared, &sha, "tree").await else {
        return not_found("Not Found");
    };
    // GitHub recurses for any value of `recursive`.
    let recursive = query.recursive.is_some();
    let truncated = {
        let mut record = shared.record();
        record.tree_fetches += 1;
        recursive && record.truncated
    };
    let args: &[&str] = if recursive && !truncated {
        &["ls-tree", "-r", "-t", "-l", "-z", &tree_sha]
    } else {
        &["ls-tree", "-l", "-z", &tree_sha]
    };
    let listing = shared.git(args).await.expect("ls-tree of a resolved tree");
    let api = format!("{}/repos/{owner}/{repo}/git", shared.url);
    let entries: Vec<Value> = String::from_utf8(listing)
        .expect("UTF-8 paths")
        .split_terminator('\0')
        .map(|record| {
            let (meta, path) = record.split_once('\t').expect("a tab before the path");
            let fields: Vec<&str> = meta.split_whitespace().collect();
            let (mode, kind, sha, size) = (fields[0], fields[1], fields[2], fields[3]);
            let mut entry = json!({ "path": path, "mode": mode, "type": kind, "sha": sha });
            match kind {
                "blob" => {
                    entry["size"] = json!(size.parse::<u64>().expect("a blob size"));
                    entry["url"] = json!(format!("{api}/blobs/{sha}"));
                }
                "tree" => entry["url"] = json!(format!("{api}/trees/{sha}")),
                _ => {}
            }
            entry
        })
        .collect();
    Json(json!({
        "sha": tree_sha,
        "url": format!("{api}/trees/{tree_sha}"),
        "tree": entries,
        "truncated": truncated,
    }))
    .into_response()
}

/// `GET /repos/{owner}/{repo}/git/blobs/{sha}`: base64 wrapped at 60 characters, like GitHub.
async fn blob(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    *shared.record().blob_fetches.entry(sha.clone()).or_default() += 1;
    if resolve(&shared, &sha, "blob").await.as_deref() != Some(sha.as_str()) {
        return not_found("Not Found");
    }
    let bytes = shared
        .git(&["cat-file", "blob", &sha])
        .await
        .expect("a blob");
    let encoded = STANDARD.encode(&bytes);
    let mut content = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for line in encoded.as_bytes().chunks(60) {
        content.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        content.push('\n');
    }
    Json(json!({
        "sha": sha,
        "node_id": format!("B_{sha}"),
        "size": bytes.len(),
        "url": format!("{}/repos/{owner}/{repo}/git/blobs/{sha}", shared.url),
        "content": content,
        "encoding": "base64",
    }))
    .into_response()
}

/// `GET /repos/{owner}/{repo}/branches/{branch}`.
async fn branch(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let reference = format!("refs/heads/{branch}^{{commit}}");
    let Some(out) = shared
        .git(&["rev-parse", "--verify", "--quiet", &reference])
        .await
    else {
        return not_found("Branch not found");
    };
    let sha = String::from_utf8(out).expect("hex").trim().to_owned();
    Json(json!({
        "name": branch,
        "commit": {
            "sha": sha,
            "url": format!("{}/repos/{owner}/{repo}/commits/{sha}", shared.url),
        },
        "protected": false,
    }))
    .into_response()
}

/// The full SHA of `sha` peeled to `kind`, when `sha` is hex and names one.
async fn resolve(shared: &Shared, sha: &str, kind: &str) -> Option<String> {
    if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let peeled = format!("{sha}^{{{kind}}}");
    let out = shared
        .git(&["rev-parse", "--verify", "--quiet", &peeled])
        .await?;
    Some(String::from_utf8(out).ok()?.trim().to_owned())
}

fn not_found(text: &str) -> Response {
    message(StatusCode::NOT_FOUND, text)
}

fn message(status: StatusCode, text: &str) -> Response {
    let body = json!({
        "message": text,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, Json(body)).into_response()
}
