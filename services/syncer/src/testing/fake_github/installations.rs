//! The fake GitHub's installations of the App, for installations a test registers
//! (`FakeGithub::add_installation`), in GitHub's documented shapes:
//!
//! - `GET /app/installations/{id}` with the App JWT: "Get an installation for the authenticated
//!   app", 404 `Not Found` for an id the fake does not know;
//! - `GET /installation/repositories?per_page=&page=` with an installation token (checked by the
//!   `installation_token` middleware, which tells whose it is): "List repositories accessible to
//!   the app installation", `per_page` 30 by default and at most 100, `page` from 1, and a
//!   `Link: <…>; rel="next"` header while more remain.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::routes::{not_found, verify_app_jwt};
use super::{Shared, TokenInstallation};

/// An installation a test registered: its account and repositories (id, full name, default
/// branch), in the order they are listed.
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
        return not_found("Not Found");
    };
    let login = &found.account;
    // The account's id: any number, stable for the installation.
    let account_id = 1_000_000 + id;
    Json(json!({
        "id": id,
        "client_id": format!("Iv1.fake{}", shared.app_id),
        "account": {
            "login": login,
            "id": account_id,
            "node_id": format!("O_fake{account_id}"),
            "type": "Organization",
            "site_admin": false,
            "html_url": format!("https://github.com/{login}"),
            "url": format!("{}/users/{login}", shared.url),
        },
        "repository_selection": "selected",
        "access_tokens_url": format!("{}/app/installations/{id}/access_tokens", shared.url),
        "repositories_url": format!("{}/installation/repositories", shared.url),
        "html_url": format!("https://github.com/organizations/{login}/settings/installations/{id}"),
        "app_id": shared.app_id,
        "app_slug": "hooklog-test",
        "target_id": account_id,
        "target_type": "Organization",
        "permissions": { "contents": "read", "metadata": "read" },
        "events": ["push", "repository"],
        "created_at": "2026-11-30T10:00:00.000Z",
        "updated_at": "2026-11-30T10:00:00.000Z",
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct Paging {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /installation/repositories`, as the installation whose token the request carries. A
/// token of an installation the fake does not know lists nothing.
pub(super) async fn repositories(
    State(shared): State<Arc<Shared>>,
    Extension(TokenInstallation(installation)): Extension<TokenInstallation>,
    Query(paging): Query<Paging>,
) -> Response {
    let per_page = paging.per_page.unwrap_or(30).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    let repositories = {
        let mut record = shared.record();
        record.repository_listings += 1;
        record
            .installations
            .get(&installation)
            .map(|found| found.repositories.clone())
            .unwrap_or_default()
    };
    let total = repositories.len();
    let skipped = (page - 1).saturating_mul(per_page);
    let listed: Vec<Value> = repositories
        .iter()
        .skip(skipped)
        .take(per_page)
        .map(|(id, full_name, default_branch)| repository(&shared, *id, full_name, default_branch))
        .collect();
    let mut response =
        Json(json!({ "total_count": total, "repositories": listed })).into_response();
    if skipped.saturating_add(per_page) < total {
        let last = total.div_ceil(per_page);
        let url = format!(
            "{}/installation/repositories?per_page={per_page}",
            shared.url
        );
        let link = format!(
            "<{url}&page={}>; rel=\"next\", <{url}&page={last}>; rel=\"last\"",
            page + 1
        );
        let link = HeaderValue::try_from(link).expect("an ASCII link");
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// A repository as GitHub lists it (the fields hooklog reads, and a few around them).
fn repository(shared: &Shared, id: u64, full_name: &str, default_branch: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or(("", full_name));
    json!({
        "id": id,
        "node_id": format!("R_fake{id}"),
        "name": name,
        "full_name": full_name,
        "private": false,
        "owner": { "login": owner, "type": "Organization" },
        "html_url": format!("https://github.com/{full_name}"),
        "url": format!("{}/repos/{full_name}", shared.url),
        "fork": false,
        "archived": false,
        "default_branch": default_branch,
    })
}
