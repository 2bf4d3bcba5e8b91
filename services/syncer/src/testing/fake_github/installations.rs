//! The fake GitHub's installations: `GET /app/installations/{id}` (App JWT) and
//! `GET /installation/repositories` (the installation's token, paged with `per_page`/`page`
//! and a `Link` header), in GitHub's shapes, for installations a test registers.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::routes::{message, verify_app_jwt};
use super::Shared;

/// An installation a test registered: its account and repositories (id, full name, default
/// branch).
#[derive(Debug, Clone)]
pub(super) struct FakeInstallation {
    pub account: String,
    pub repositories: Vec<(u64, String, String)>,
}

/// `GET /app/installations/{id}`.
pub(super) async fn installation(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Err(rejection) = verify_app_jwt(&shared, &headers) {
        return *rejection;
    }
    let found = {
        let mut record = shared.record();
        record.installation_lookups += 1;
        record.installations.get(&id).cloned()
    };
    let Some(found) = found else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    Json(json!({
        "id": id,
        "account": {"login": found.account, "id": id * 10, "type": "Organization"},
        "repository_selection": "selected",
        "app_id": shared.app_id,
        "app_slug": "hooklog-test",
        "target_id": id * 10,
        "target_type": "Organization",
        "permissions": {"contents": "read", "metadata": "read"},
        "events": ["push", "repository"],
        "created_at": "2026-11-30T10:00:00Z",
        "updated_at": "2026-11-30T10:00:00Z",
        "suspended_at": null,
        "html_url": format!("https://github.com/organizations/{}/settings/installations/{id}", found.account),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct Paging {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /installation/repositories`, as the installation whose token the request carries.
pub(super) async fn repositories(
    State(shared): State<Arc<Shared>>,
    Query(paging): Query<Paging>,
    headers: HeaderMap,
) -> Response {
    let token = super::presented_token(&headers)
        .unwrap_or_default()
        .to_owned();
    let per_page = paging.per_page.unwrap_or(30).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    let found = {
        let mut record = shared.record();
        if !record.tokens.contains(&token) {
            return message(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
        record.repository_listings += 1;
        // Tokens are issued as `ghs_fake<installation>x<n>`.
        let installation = token
            .strip_prefix("ghs_fake")
            .and_then(|rest| rest.split('x').next())
            .and_then(|id| id.parse::<u64>().ok());
        installation.and_then(|id| record.installations.get(&id).cloned())
    };
    let Some(found) = found else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let all = &found.repositories;
    let items: Vec<_> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(id, full_name, default_branch)| {
            let name = full_name.rsplit('/').next().unwrap_or(full_name);
            json!({
                "id": id,
                "name": name,
                "full_name": full_name,
                "private": false,
                "default_branch": default_branch,
                "owner": {"login": found.account},
                "html_url": format!("https://github.com/{full_name}"),
            })
        })
        .collect();
    let mut response =
        Json(json!({"total_count": all.len(), "repositories": items})).into_response();
    if page * per_page < all.len() {
        let next = format!(
            "<{}/installation/repositories?per_page={per_page}&page={}>; rel=\"next\"",
            shared.url,
            page + 1
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}
