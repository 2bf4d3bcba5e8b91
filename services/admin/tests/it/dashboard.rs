//! The dashboard's page and assets (open, embedded, pinned to this origin by their
//! Content-Security-Policy) and `GET /v1/admin/session`, which the page logs in with. The page
//! itself is driven in Chromium by `services/hooklog/tests/it/admin/dashboard.rs`.

use hooklog_domain::github_delivery::RedeliveryPolicy;
use hooklog_syncer::testing::{FakeGithub, APP_ID, PUBLIC_KEY};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{answer, code, App, Options, READ_TOKEN};

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_token_and_load_nothing_from_elsewhere() {
    let app = App::start().await;
    for (path, content_type, needle) in [
        ("/", "text/html", "/dashboard/app.js"),
        ("/dashboard/app.js", "text/javascript", "sessionStorage"),
        ("/dashboard/app.css", "text/css", "[hidden]"),
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {:?}",
            headers["content-type"]
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle}");
        // Nothing from another host: no absolute http(s) URL in any asset.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_session_names_the_token_and_what_it_may_do() {
    let app = App::start().await;
    let (status, write) = app.get("/v1/admin/session").await;
    assert_eq!(status, 200);
    assert_eq!(write, json!({"name": "admin", "access": "write"}));
    let (status, read) = answer(
        app.http
            .request(Method::GET, format!("{}/v1/admin/session", app.url))
            .bearer_auth(READ_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read, json!({"name": "read", "access": "read"}));
    let (status, wrong) = answer(
        app.http
            .request(Method::GET, format!("{}/v1/admin/session", app.url))
            .bearer_auth("not-a-token-of-this-listener"),
    )
    .await;
    assert_eq!(status, 401, "{wrong}");
    assert!(!code(&wrong).is_empty());
}

/// The setup callback as the browser GitHub redirects sees it: status and the page's message.
async fn setup(app: &App, query: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/github/setup?{query}", app.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (status, location.unwrap_or(body))
}

/// A new state from `POST /v1/admin/github/install`.
async fn issued(app: &App) -> String {
    let (status, link) = app.post("/v1/admin/github/install", json!({})).await;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().unwrap();
    let state = url
        .strip_prefix("https://github.com/apps/hooklog-test/installations/new?state=")
        .unwrap_or_else(|| panic!("{url}"));
    assert!(state.len() >= 32, "{state}");
    state.to_owned()
}

#[tokio::test]
async fn connect_github_checks_its_state_once_then_the_installation_with_github() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start(dir.path().to_path_buf(), APP_ID, PUBLIC_KEY).await;
    github.add_installation(77, "octo-org", &[(9, "octo-org/docs", "main")]);
    let app = App::start_with(Options {
        github_app: Some((github.app_config(), RedeliveryPolicy::default())),
        ..Options::default()
    })
    .await;

    // Without a state hooklog issued, GitHub is never asked.
    for query in [
        "installation_id=77&setup_action=install",
        "installation_id=77&setup_action=install&state=forged0123456789abcdef0123456789",
    ] {
        let (status, page) = setup(&app, query).await;
        assert_eq!(status, 400, "{query}: {page}");
    }
    assert_eq!(github.installation_lookups(), 0);

    // An installation GitHub does not know is refused, and uses up its state.
    let state = issued(&app).await;
    let (status, page) = setup(
        &app,
        &format!("installation_id=78&setup_action=install&state={state}"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("does not know installation 78"), "{page}");

    let state = issued(&app).await;
    let (status, location) = setup(
        &app,
        &format!("installation_id=77&setup_action=install&state={state}"),
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/#instances"));
    // The projector shows it soon after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let (status, instance) = loop {
        let answer = app.get("/v1/admin/instances/77").await;
        if answer.0 == 200 || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{instance}");
    assert_eq!(instance["account"], "octo-org");
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, metadata FROM events WHERE aggregate_id = 'github-installation-77'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events[0].0, "InstanceConnected");
    assert_eq!(events[0].1["actor"], "operator:admin", "{events:?}");

    // A state works once, and not after it expired.
    let (status, page) = setup(
        &app,
        &format!("installation_id=77&setup_action=install&state={state}"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("already used"), "{page}");
    let state = issued(&app).await;
    sqlx::query("UPDATE github_setup_states SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = setup(
        &app,
        &format!("installation_id=77&setup_action=install&state={state}"),
    )
    .await;
    assert_eq!(status, 400);
    // Only the SHA-256 of a state is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT state_sha256 FROM github_setup_states")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|s| s.len() == 64 && *s != state));

    // The picker lists what the installation gave the App.
    let (status, repositories) = app.get("/v1/admin/instances/77/repositories").await;
    assert_eq!(status, 200, "{repositories}");
    assert_eq!(
        repositories,
        json!([{"id": 9, "full_name": "octo-org/docs", "default_branch": "main", "private": false}])
    );
    assert_eq!(github.rejected_jwts(), 0);
}

#[tokio::test]
async fn connect_github_without_the_slug_or_the_app_names_the_settings() {
    let app = App::start().await;
    let (status, body) = app.post("/v1/admin/github/install", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (503, "github_app_slug_not_configured")
    );
    assert!(
        body.to_string().contains("HOOKLOG_GITHUB_APP_SLUG"),
        "{body}"
    );
    let (status, body) = app.get("/v1/admin/instances/77/repositories").await;
    assert_eq!((status, code(&body)), (503, "github_app_not_configured"));
    let (status, body) = answer(
        app.http
            .request(Method::POST, format!("{}/v1/admin/github/install", app.url))
            .bearer_auth(READ_TOKEN),
    )
    .await;
    assert_eq!(status, 403, "{body}");
}
