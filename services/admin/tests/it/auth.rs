//! Who may do what: no token or a wrong one is 401 on every admin route, the read token reads
//! but never writes (403), the write token does both; with no token configured the API is
//! closed while health, readiness and metrics stay open.

use std::time::Duration;

use hooklog_admin::Tokens;
use reqwest::header::WWW_AUTHENTICATE;

use crate::routes::{concrete, is_admin, is_write, method, ROUTES};
use serde_json::Value;

use crate::support::{answer, code, App, Options, READ_TOKEN, WRITE_TOKEN};

/// Status, error code and `WWW-Authenticate` of one call; a live feed is not read past its
/// headers.
async fn probe(app: &App, verb: &str, path: &str, token: Option<&str>) -> (u16, String, bool) {
    let mut request = app
        .http
        .request(method(verb), format!("{}{path}", app.url))
        .timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get(WWW_AUTHENTICATE).is_some();
    if path.ends_with("/feed") && status == 200 {
        return (status, String::new(), challenge);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, code(&body).to_owned(), challenge)
}

#[tokio::test]
async fn every_admin_route_needs_a_token_and_the_read_token_never_writes() {
    let app = App::start_with(Options {
        pipeline: false,
        ..Options::default()
    })
    .await;
    for (verb, template) in ROUTES.iter().filter(|(_, t)| is_admin(t)) {
        let path = concrete(template);
        let (status, code, challenge) = probe(&app, verb, &path, None).await;
        assert_eq!(
            (status, code.as_str(), challenge),
            (401, "unauthorized", true),
            "{verb} {path} without a token"
        );

        let (status, code, challenge) = probe(&app, verb, &path, Some("not-the-token")).await;
        assert_eq!(
            (status, code.as_str(), challenge),
            (401, "unauthorized", true),
            "{verb} {path} with a wrong token"
        );

        // Redeliveries, Connect GitHub and the repository picker need the GitHub App (and its
        // slug), which this listener does not have: it says so.
        let needs_app = (is_write(verb) && template.starts_with("/v1/admin/github/"))
            || template.ends_with("/repositories");
        let says_so = |code: &str| {
            needs_app
                && matches!(
                    code,
                    "github_app_not_configured" | "github_app_slug_not_configured"
                )
        };
        let (status, code, _) = probe(&app, verb, &path, Some(READ_TOKEN)).await;
        if is_write(verb) {
            assert_eq!(
                (status, code.as_str()),
                (403, "read_only_token"),
                "{verb} {path} with the read token"
            );
        } else {
            assert!(
                status != 401 && status != 403 && (status < 500 || says_so(&code)),
                "{verb} {path} with the read token: {status} {code}"
            );
        }

        let (status, code, _) = probe(&app, verb, &path, Some(WRITE_TOKEN)).await;
        assert!(
            status != 401 && status != 403 && (status < 500 || says_so(&code)),
            "{verb} {path} with the write token: {status} {code}"
        );
    }
}

#[tokio::test]
async fn with_no_token_configured_the_admin_api_is_closed_but_health_and_metrics_are_open() {
    let app = App::start_with(Options {
        tokens: Tokens::default(),
        pipeline: false,
        ..Options::default()
    })
    .await;
    for (verb, template) in ROUTES {
        let path = concrete(template);
        let (status, code, challenge) = probe(&app, verb, &path, Some(WRITE_TOKEN)).await;
        if is_admin(template) {
            assert_eq!(
                (status, code.as_str(), challenge),
                (401, "admin_api_closed", true),
                "{verb} {path}"
            );
        } else if template.starts_with("/v1/audit/") {
            // Open to anyone, with or without a token: here there is no key, checkpoint or
            // tile yet, so each says so (404), but never asks for a token.
            let (without, _, _) = probe(&app, verb, &path, None).await;
            for status in [status, without] {
                assert_eq!(status, 404, "{verb} {path} must stay open");
            }
        } else {
            assert_eq!(status, 200, "{verb} {path} must stay open");
        }
    }
    let (status, body) =
        crate::support::answer(app.http.get(format!("{}/v1/admin/instances", app.url))).await;
    assert_eq!(status, 401);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no admin token is configured"),
        "{message}"
    );
}

#[tokio::test]
async fn a_read_token_alone_reads_and_still_cannot_write() {
    let app = App::start_with(Options {
        tokens: Tokens::new(None, Some(&READ_TOKEN.into())),
        pipeline: false,
        ..Options::default()
    })
    .await;
    let (status, _, _) = probe(&app, "GET", "/v1/admin/instances", Some(READ_TOKEN)).await;
    assert_eq!(status, 200);
    let (status, code, _) = probe(&app, "POST", "/v1/admin/instances", Some(READ_TOKEN)).await;
    assert_eq!((status, code.as_str()), (403, "read_only_token"));
    let (status, code, _) = probe(&app, "POST", "/v1/admin/instances", Some(WRITE_TOKEN)).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
}

#[tokio::test]
async fn a_named_token_is_its_holders_actor_and_a_named_read_token_never_writes() {
    let mut tokens = Tokens::new(Some(&WRITE_TOKEN.into()), None);
    tokens.add(
        "alice",
        hooklog_admin::Access::Write,
        &"alice-token-0123456789".into(),
    );
    tokens.add(
        "bob",
        hooklog_admin::Access::Read,
        &"bob-token-0123456789".into(),
    );
    let app = App::start_with(Options {
        tokens,
        ..Options::default()
    })
    .await;
    let connect = serde_json::json!({"installation_id": 5151});
    let (status, body, _) = probe_json(
        &app,
        "POST",
        "/v1/admin/instances",
        "bob-token-0123456789",
        &connect,
    )
    .await;
    assert_eq!((status, code(&body)), (403, "read_only_token"));
    let (status, body, _) = probe_json(
        &app,
        "POST",
        "/v1/admin/instances",
        "alice-token-0123456789",
        &connect,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let position = body["position"].as_u64().unwrap();
    let path = format!(
        "/v1/admin/aggregates/ConnectorInstance/github-installation-5151/events?min_position={position}"
    );
    let (status, history, _) =
        probe_json(&app, "GET", &path, "bob-token-0123456789", &Value::Null).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["items"][0]["metadata"]["actor"], "operator:alice");
    // The single read-write token keeps its name.
    let (status, _) = app
        .post(
            "/v1/admin/instances",
            serde_json::json!({"installation_id": 5152}),
        )
        .await;
    assert_eq!(status, 202);
    let (_, history) = app
        .get("/v1/admin/aggregates/ConnectorInstance/github-installation-5152/events")
        .await;
    assert_eq!(history["items"][0]["metadata"]["actor"], "operator:admin");
}

async fn probe_json(
    app: &App,
    verb: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value, ()) {
    let mut request = app
        .http
        .request(method(verb), format!("{}{path}", app.url))
        .bearer_auth(token);
    if !body.is_null() {
        request = request.json(body);
    }
    let (status, body) = answer(request).await;
    (status, body, ())
}
