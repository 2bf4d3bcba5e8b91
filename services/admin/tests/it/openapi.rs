//! The OpenAPI document describes exactly the routes the listener serves.

use std::collections::BTreeSet;

use crate::routes::ROUTES;
use crate::support::{App, Options};

/// A listener (without the pipeline) and the document it serves, which must answer 200.
async fn served_document() -> (App, serde_json::Value) {
    let app = App::start_with(Options {
        pipeline: false,
        ..Options::default()
    })
    .await;
    let (status, doc) = app.get("/v1/admin/openapi.json").await;
    assert_eq!(status, 200);
    (app, doc)
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_only_those() {
    let (app, doc) = served_document().await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "OpenAPI {version}");
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer")));

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "post", "patch", "delete", "put", "head", "options"]
                .contains(&method.as_str())
            {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );

    // Every documented admin route answers something other than "no such route".
    for (method, path) in &served {
        let path = crate::routes::concrete(path);
        if path.ends_with("/feed") {
            continue;
        }
        let (status, body) = app.call(crate::routes::method(method), &path, None).await;
        assert_ne!(
            crate::support::code(&body),
            "route_not_found",
            "{method} {path}: {status}"
        );
        assert_ne!(status, 405, "{method} {path}");
    }
}

#[tokio::test]
async fn the_openapi_document_passes_an_openapi_validator() {
    let (_app, doc) = served_document().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let output = std::process::Command::new(hooklog_infra::testing::openapi_validator_bin())
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the document does not validate:\n{said}"
    );
    assert!(said.contains("OK"), "{said}");
}
