//! The fake's GitLab git-over-HTTPS side: a project's repository served by git's own smart
//! HTTP server (`git http-backend`, run as a CGI per request) under
//! `/<path_with_namespace>.git/…`, behind GitLab's HTTP Basic auth, where a project access
//! token is the password of any user name ("Clone repository using personal access token",
//! <https://docs.gitlab.com/user/profile/personal_access_tokens/>). A request without
//! credentials is answered `401` with `WWW-Authenticate: Basic realm="GitLab"`, one with a
//! token that does not read the project `401` too (GitLab's `HTTP Basic: Access denied`).
//! Every request is recorded with its path and query and whether it carried a token, so tests
//! see that no credential travelled in a URL.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::AsyncWriteExt;

use super::Provider::Gitlab;
use super::Shared;

/// A git request the fake answered (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    /// The request's path and query, as sent.
    pub path_and_query: String,
    /// The token it carried as its Basic password, if any.
    pub token: Option<String>,
    pub status: u16,
}

/// `/<project>.git<suffix>` split into the project's path and the suffix git asks for.
fn split(path: &str) -> Option<(&str, &str)> {
    let (project, rest) = path.trim_start_matches('/').split_once(".git/")?;
    matches!(rest, "info/refs" | "git-upload-pack").then_some((project, rest))
}

/// Whether `path` is a git request this fake serves.
pub(super) fn is_git(path: &str) -> bool {
    split(path).is_some()
}

fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded
        .split_once(':')
        .map(|(_, password)| password.to_owned())
}

pub(super) async fn serve(shared: Arc<Shared>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let token = basic_password(request.headers());
    let (status, response) = answer(&shared, request, token.as_deref()).await;
    shared.record().git_requests.push(GitRequest {
        path_and_query,
        token,
        status: status.as_u16(),
    });
    response
}

async fn answer(shared: &Shared, request: Request, token: Option<&str>) -> (StatusCode, Response) {
    let path = request.uri().path().to_owned();
    let Some((project, suffix)) = split(&path) else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let dir: Option<PathBuf> = {
        let record = shared.record();
        let repo = record
            .repos
            .iter()
            .find(|r| r.provider == Gitlab && r.name.eq_ignore_ascii_case(project));
        match (repo, token) {
            (None, _) => return refused(StatusCode::NOT_FOUND, "Not Found"),
            (Some(_), None) => {
                let mut response = refused(StatusCode::UNAUTHORIZED, "HTTP Basic: Access denied").1;
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"GitLab\""),
                );
                return (StatusCode::UNAUTHORIZED, response);
            }
            (Some(repo), Some(token)) if !repo.tokens.contains(token) => {
                return refused(StatusCode::UNAUTHORIZED, "HTTP Basic: Access denied")
            }
            (Some(repo), Some(_)) => repo.git_dir.clone(),
        }
    };
    let Some(dir) = dir else {
        return refused(StatusCode::NOT_FOUND, "The project has no repository");
    };
    backend(request, dir, suffix).await
}

fn refused(status: StatusCode, text: &str) -> (StatusCode, Response) {
    (status, (status, text.to_owned()).into_response())
}

/// Runs `git http-backend` for `suffix` of the repository in `dir` (a work tree), the request's
/// body on its standard input, and turns its CGI answer into a response.
async fn backend(request: Request, dir: PathBuf, suffix: &str) -> (StatusCode, Response) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let root = dir.parent().expect("a parent").to_path_buf();
    let name = dir
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{name}/.git/{suffix}"))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING))
        .env(
            "GIT_PROTOCOL",
            parts
                .headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git http-backend runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&body).await.expect("the body reaches git");
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .expect("git http-backend ends");
    let cgi = out.stdout;
    let split_at = cgi
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| cgi.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&cgi[..split_at.0]).into_owned();
    let mut status = StatusCode::OK;
    let mut response = Response::builder();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok());
            status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(status);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    let body = Body::from(cgi[split_at.0 + split_at.1..].to_vec());
    let response = response.status(status).body(body).expect("a response");
    (status, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_smart_http_paths_of_a_project_are_git_requests() {
        assert_eq!(
            split("/group/sub/handbook.git/info/refs"),
            Some(("group/sub/handbook", "info/refs"))
        );
        assert_eq!(
            split("/group/handbook.git/git-upload-pack"),
            Some(("group/handbook", "git-upload-pack"))
        );
        assert_eq!(split("/group/handbook.git/git-receive-pack"), None);
        assert_eq!(split("/api/v4/projects/1"), None);
    }
}
