//! The dashboard's page and assets (open, embedded, pinned to this origin by their
//! Content-Security-Policy) and `GET /v1/admin/session`, which the page logs in with. The page
//! itself is driven in Chromium by `services/hooklog/tests/it/admin/dashboard.rs`.

use reqwest::Method;
use serde_json::json;

use crate::support::{answer, code, App, READ_TOKEN};

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
