//! `/v1/admin/repositories`: connect, read, retry and disconnect through the real write side
//! and read model; answers never carry the token or the webhook secret, and what cannot be
//! done says why.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{code, App, Options};

const TOKEN: &str = "ghp_admin-api-test-token-0123456789";

fn options() -> Options {
    Options {
        secrets_key: Some([9; 32]),
        public_url: Some("https://hooklog.example.com/".to_owned()),
        ..Options::default()
    }
}

fn body(repository: &str) -> Value {
    json!({"provider": "github", "repository": repository, "branch": "main", "token": TOKEN})
}

#[tokio::test]
async fn a_connection_is_made_read_and_disconnected_without_its_secrets_in_any_answer() {
    let app = App::start_with(options()).await;
    let (status, created) = app
        .post("/v1/admin/repositories", body("octo-org/docs"))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "pending");
    assert_eq!(
        created["hook_url"],
        format!("https://hooklog.example.com/v1/webhooks/repositories/{id}")
    );
    assert_eq!(created["events"][0]["event_type"], "RepositoryConnected");
    let position = created["position"]
        .as_u64()
        .expect("the relay published it");

    let (status, one) = app
        .get(&format!(
            "/v1/admin/repositories/{id}?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        (one["status"].as_str(), one["repository"].as_str()),
        (Some("pending"), Some("octo-org/docs"))
    );
    assert!(one["secret_id"].as_str().is_some_and(|s| !s.is_empty()));
    let (status, list) = app.get("/v1/admin/repositories?provider=github").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["connection_id"], id.as_str());
    let (status, _) = app.get("/v1/admin/repositories?status=gone").await;
    assert_eq!(status, 400);

    // The same branch again (any case of the name) is refused with the connection it has.
    let (status, again) = app
        .post("/v1/admin/repositories", body("Octo-Org/Docs"))
        .await;
    assert_eq!(
        (status, code(&again)),
        (409, "already_connected"),
        "{again}"
    );
    // Nothing to retry while it is pending.
    let (status, retry) = app
        .post(&format!("/v1/admin/repositories/{id}/retry"), json!({}))
        .await;
    assert_eq!((status, code(&retry)), (409, "not_failed"), "{retry}");

    let (status, gone) = app
        .call(
            Method::DELETE,
            &format!("/v1/admin/repositories/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{gone}");
    assert_eq!(gone["status"], "disconnecting");
    // Asking again while the webhook is being deleted changes nothing.
    let (status, twice) = app
        .call(
            Method::DELETE,
            &format!("/v1/admin/repositories/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, twice["status"].as_str()),
        (202, Some("disconnecting"))
    );
    assert_eq!(twice["events"], json!([]));

    let secret: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM vault_secrets WHERE kind = 'webhook_secret'")
            .fetch_optional(&app.pool)
            .await
            .unwrap();
    assert!(secret.is_some(), "the secret is sealed in the vault");
    for answer in [&created, &one, &list, &gone] {
        assert!(!answer.to_string().contains(TOKEN), "{answer}");
    }
}

#[tokio::test]
async fn unknown_ids_bad_input_and_missing_settings_are_answered_with_what_is_wrong() {
    let app = App::start_with(options()).await;
    let unknown = "0b5e1c9a-3c1f-4d0e-8f7a-2a4b6c8d0e1f";
    for (method, path) in [
        (Method::GET, format!("/v1/admin/repositories/{unknown}")),
        (Method::DELETE, format!("/v1/admin/repositories/{unknown}")),
        (
            Method::POST,
            format!("/v1/admin/repositories/{unknown}/retry"),
        ),
    ] {
        let (status, answer) = app.call(method.clone(), &path, None).await;
        assert_eq!(
            (status, code(&answer)),
            (404, "connection_not_found"),
            "{method} {path}: {answer}"
        );
    }
    let (status, answer) = app.get("/v1/admin/repositories/not-a-uuid").await;
    assert_eq!((status, code(&answer)), (400, "bad_id"));

    let cases = [
        (
            json!({"provider": "bitbucket", "repository": "o/r", "branch": "main", "token": TOKEN}),
            "invalid_provider",
        ),
        (
            json!({"provider": "github", "repository": "just-a-name", "branch": "main", "token": TOKEN}),
            "invalid_repository",
        ),
        (
            json!({"provider": "gitlab", "repository": "group/name", "branch": "a..b", "token": TOKEN}),
            "invalid_branch",
        ),
        (
            json!({"provider": "github", "repository": "o/r", "branch": "main", "token": ""}),
            "invalid_token",
        ),
    ];
    for (request, expected) in cases {
        let (status, answer) = app.post("/v1/admin/repositories", request.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (422, expected),
            "{request}: {answer}"
        );
    }
    let (status, answer) = app
        .post(
            "/v1/admin/repositories",
            json!({"provider": "github", "repository": "o/r"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    let without_key = App::start_with(Options {
        public_url: Some("https://hooklog.example.com".into()),
        ..Options::default()
    })
    .await;
    let (status, answer) = without_key
        .post("/v1/admin/repositories", body("o/r"))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (503, "secrets_key_not_set"),
        "{answer}"
    );
    assert!(
        answer.to_string().contains("HOOKLOG_SECRETS_KEY"),
        "{answer}"
    );
    let without_url = App::start_with(Options {
        secrets_key: Some([1; 32]),
        ..Options::default()
    })
    .await;
    let (status, answer) = without_url
        .post("/v1/admin/repositories", body("o/r"))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (503, "public_url_not_set"),
        "{answer}"
    );
}
