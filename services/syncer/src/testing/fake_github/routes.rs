//! The fake GitHub's endpoints, each in GitHub's documented shape: the App JWT check they share,
//! the installation-token exchange, trees, blobs, branches and tarballs (a redirect, then
//! `git archive` from the download host), answered from the served repository with `git`. The
//! App webhook's delivery log is in `hooks`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Shared;

#[derive(Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
}

/// The App JWT `headers` carry as `Authorization: Bearer`, verified as GitHub does: RS256 with
/// the App's public key, issued by the App's id, living at most 10 minutes. A verified JWT is
/// recorded in `verified_jwts`; any other (or none) counts in `rejected_jwts` and is answered
/// 401 in GitHub's words.
pub(super) fn verify_app_jwt(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<String, Box<Response>> {
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
    let rejection = match verified {
        None => "A JSON web token could not be decoded",
        Some((_, claims)) if claims.exp - claims.iat > 600 => {
            "'Expiration time' claim ('exp') is too far in the future"
        }
        Some((jwt, _)) => {
            shared.record().verified_jwts.push(jwt.to_owned());
            return Ok(jwt.to_owned());
        }
    };
    shared.record().rejected_jwts += 1;
    Err(Box::new(message(StatusCode::UNAUTHORIZED, rejection)))
}

/// `POST /app/installations/{installation}/access_tokens`: a verified App JWT buys a token.
pub(super) async fn access_tokens(
    State(shared): State<Arc<Shared>>,
    Path(installation): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Err(rejection) = verify_app_jwt(&shared, &headers) {
        return *rejection;
    }
    let token = {
        let mut record = shared.record();
        record.exchanges += 1;
        record.issued += 1;
        let token = format!("ghs_fake{installation}x{}", record.issued);
        record.tokens.insert(token.clone(), installation);
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
pub(super) struct TreeQuery {
    recursive: Option<String>,
}

/// `GET /repos/{owner}/{repo}/git/trees/{sha}[?recursive=1]`, of a commit or a tree.
pub(super) async fn tree(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<TreeQuery>,
) -> Response {
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
pub(super) async fn blob(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Response {
    *shared.record().blob_fetches.entry(sha.clone()).or_default() += 1;
    let Some(bytes) = shared.blob(&sha).await else {
        return not_found("Not Found");
    };
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
pub(super) async fn branch(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Response {
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

/// `GET /repos/{owner}/{repo}/tarball/{sha}`: `302 Found` to the download host, whose URL carries
/// a download token (codeload's `?token=`) rather than asking for the installation's.
pub(super) async fn tarball(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Response {
    shared.record().tarball_fetches += 1;
    let Some(commit) = resolve(&shared, &sha, "commit").await else {
        return not_found("Not Found");
    };
    let token = {
        let mut record = shared.record();
        record.issued += 1;
        let token = format!("dl{}", record.issued);
        record.download_tokens.insert(token.clone());
        token
    };
    let location = format!(
        "{}/codeload/{owner}/{repo}/legacy.tar.gz/{commit}?token={token}",
        shared.download_url
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    token: Option<String>,
}

/// `GET /codeload/{owner}/{repo}/legacy.tar.gz/{sha}?token=…`, the download host: the commit as
/// GitHub archives it, every path under `{owner}-{repo}-{short sha}/`.
pub(super) async fn codeload(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let known = {
        let mut record = shared.record();
        record.archive_downloads += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            record.archive_downloads_with_credentials += 1;
        }
        query
            .token
            .is_some_and(|t| record.download_tokens.contains(&t))
    };
    let commit = resolve(&shared, &sha, "commit").await;
    let (true, Some(commit)) = (known, commit) else {
        return not_found("Not Found");
    };
    let top = format!("{owner}-{repo}-{}", &commit[..7]);
    let prefix = format!("--prefix={top}/");
    let archive = shared
        .git(&["archive", "--format=tar.gz", &prefix, &commit])
        .await
        .expect("git archive of a resolved commit");
    let disposition = format!("attachment; filename={top}.tar.gz");
    (
        [
            (header::CONTENT_TYPE, "application/x-gzip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        archive,
    )
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

pub(super) fn not_found(text: &str) -> Response {
    message(StatusCode::NOT_FOUND, text)
}

pub(super) fn message(status: StatusCode, text: &str) -> Response {
    let body = json!({
        "message": text,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, Json(body)).into_response()
}
