//! A target's git `source` through the admin API: refused with 422 naming
//! `HOOKLOG_SYNCER_ALLOWED_SOURCES` unless the setting covers it, on whole path segments, and
//! never echoing a credential.

use hooklog_domain::source::AllowedSources;
use serde_json::{json, Value};

use crate::support::{code, App, Options};

const SETTING: &str = "HOOKLOG_SYNCER_ALLOWED_SOURCES";

async fn track(app: &App, repository: u64, source: &str) -> (u16, Value) {
    app.post(
        "/v1/admin/targets",
        json!({
            "installation_id": 77,
            "repository_id": repository,
            "repository": "octo/docs",
            "branch": "main",
            "source": source,
        }),
    )
    .await
}

#[tokio::test]
async fn with_the_setting_unset_a_source_is_refused_with_422_naming_it_and_nothing_is_tracked() {
    let app = App::start().await;
    let (status, body) = track(&app, 1, "/srv/git/docs.git").await;
    assert_eq!((status, code(&body)), (422, "source_not_allowed"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(SETTING), "{message}");

    let (status, listed) = app.get("/v1/admin/targets").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"], json!([]));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 0, "nothing was stored");
}

#[tokio::test]
async fn a_source_under_an_allowed_prefix_is_tracked_and_one_beside_or_above_it_is_not() {
    let allowed = AllowedSources::parse("/srv/git, https://git.example.com/org/").unwrap();
    let app = App::start_with(Options {
        allowed_sources: allowed,
        ..Options::default()
    })
    .await;

    let (status, body) = track(&app, 1, "/srv/git/docs.git").await;
    assert_eq!(status, 202, "{body}");
    let (target, at) = (&body["target_id"], &body["position"]);
    let (_, view) = app
        .get(&format!(
            "/v1/admin/targets/{}?min_position={at}",
            target.as_str().unwrap()
        ))
        .await;
    assert_eq!(view["source"], "/srv/git/docs.git", "{view}");
    let (status, body) = track(&app, 2, "https://git.example.com/org/docs.git").await;
    assert_eq!(status, 202, "{body}");

    for (repository, source, expected) in [
        (3, "/srv/gitevil/docs.git", "source_not_allowed"),
        (4, "/srv", "source_not_allowed"),
        (
            5,
            "https://git.example.com.evil.org/org/docs.git",
            "source_not_allowed",
        ),
        (
            6,
            "https://git.example.com/other/docs.git",
            "source_not_allowed",
        ),
        (7, "/srv/git/../../etc", "invalid_source"),
        (
            8,
            "https://git.example.com/org/%2e%2e/other",
            "invalid_source",
        ),
    ] {
        let (status, body) = track(&app, repository, source).await;
        assert_eq!((status, code(&body)), (422, expected), "{source}: {body}");
    }
    for secret in [
        "https://ghp_hunter2@git.example.com/org/docs.git",
        "https://bot:hunter2@git.example.com/org/docs.git",
    ] {
        let (status, body) = track(&app, 9, secret).await;
        assert_eq!((status, code(&body)), (422, "invalid_source"), "{body}");
        assert!(!body.to_string().contains("hunter2"), "{body}");
    }
}
