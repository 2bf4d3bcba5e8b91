//! A connection's webhook log reconciled with the stream: a delivery GitHub attempted and
//! hooklog never stored is recorded missing and redelivered with the connection's token, under
//! the GitHub reconciler's policy, and the App's missing deliveries are left to the App's pass.

use std::time::{Duration, Instant, SystemTime};

use hooklog_domain::clock::Timestamp;
use hooklog_domain::github_delivery::{
    GithubAttempt, GithubDeliveryCommand, GithubDeliveryStatus, RedeliveryPolicy,
};
use hooklog_reconciler::ReconcilerConfig;
use hooklog_repositories::Redelivery;
use hooklog_syncer::source::github::{AppClient, GithubAppConfig};
use secrecy::SecretString;
use serde_json::Value;

use crate::support::*;

fn redelivery(world: &World) -> Redelivery {
    let github = GithubAppConfig {
        api_url: world.hosts.url(),
        retries: 1,
        max_rate_limit_wait: Duration::from_secs(1),
        ..GithubAppConfig::default()
    };
    Redelivery {
        js: world.backends.js.clone(),
        policy: ReconcilerConfig {
            settle: Duration::ZERO,
            projection_wait: Duration::from_secs(10),
            ..ReconcilerConfig::new(0)
        },
        github,
    }
}

async fn pass(world: &World, redelivery: &Redelivery) -> hooklog_repositories::PassReport {
    hooklog_repositories::run_pass(
        &world.bus,
        &world.vault,
        &world.api,
        Duration::ZERO,
        Some(redelivery),
    )
    .await
    .expect("the pass runs")
}

/// The read model's row of `guid`, once `done` accepts it.
async fn row(world: &World, guid: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row: Option<Value> =
            sqlx::query_scalar("SELECT to_jsonb(g) FROM github_deliveries g WHERE guid = $1")
                .bind(guid)
                .fetch_optional(&world.backends.pool)
                .await
                .unwrap();
        if let Some(row) = row.filter(&done) {
            return row;
        }
        assert!(Instant::now() < deadline, "{guid} never got there");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_delivery_the_webhooks_log_has_and_the_stream_lacks_is_redelivered_with_the_token() {
    let world = World::start().await;
    let id = world.connect("github", REPO, TOKEN).await.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let ping = serde_json::to_vec(&serde_json::json!({
        "zen": "Design for failure.", "hook_id": hook,
        "hook": {"type": "Repository", "id": hook},
    }))
    .unwrap();
    // One delivery stored, one GitHub attempted while nothing answered.
    let (code, stored) = world
        .hosts
        .send_github(REPO, hook, "ping", ping.clone())
        .await;
    assert_eq!(code, 202);
    world.decided(&stored).await;
    let lost = world.hosts.lose_github(REPO, hook, "ping", ping);
    // A delivery of the App's log, missing too: not this log's to ask for.
    let app_guid = "app-delivery-missing";
    let seen = GithubAttempt {
        connection_id: None,
        github_id: 77,
        event: "push".to_owned(),
        action: None,
        installation_id: Some(1),
        repository_id: Some(2),
        delivered_at: Timestamp(SystemTime::now()),
        status: "Invalid HTTP Response: 503".to_owned(),
        status_code: 503,
        redelivery: false,
    };
    let record = GithubDeliveryCommand::RecordMissing {
        guid: app_guid.to_owned(),
        seen,
    };
    world
        .bus
        .github_delivery(app_guid, record, &World::meta())
        .await
        .unwrap();

    let redelivery = redelivery(&world);
    let report = pass(&world, &redelivery).await;
    assert_eq!((report.missing, report.redeliveries), (1, 1), "{report:?}");
    // GitHub (the fake) resends the request as it was: same GUID, same signature.
    let (event, body) = world.decided(&lost).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    let asked = row(&world, &lost, |r| r["status"] == "requested").await;
    assert_eq!(asked["connection_id"], id.to_string(), "{asked}");
    assert_eq!(asked["last_requested_by"], "reconciler");
    assert!(
        world
            .hosts
            .requests()
            .iter()
            .any(|(method, path)| method == "POST" && path.ends_with("/attempts")),
        "{:?}",
        world.hosts.requests()
    );

    // The next pass sees it on the stream; the stored one was never missing.
    let report = pass(&world, &redelivery).await;
    assert_eq!((report.missing, report.redeliveries), (0, 0), "{report:?}");
    row(&world, &lost, |r| r["status"] == "arrived").await;
    let state = world.bus.load_github_delivery(&stored).await.unwrap();
    assert_eq!(state.status(), GithubDeliveryStatus::Unknown);
    // The App's missing delivery was left alone.
    let app = world.bus.load_github_delivery(app_guid).await.unwrap();
    assert_eq!(app.status(), GithubDeliveryStatus::Missing);
    assert_eq!(app.attempts(), 0);

    // An operator's redelivery through the App is refused for a connection's delivery.
    let client = AppClient::with_token(&redelivery.github, SecretString::from("x")).unwrap();
    let refused = hooklog_reconciler::redeliver::by_operator(
        &world.bus,
        &client,
        &lost,
        RedeliveryPolicy::default(),
        &World::meta(),
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("repositories role"),
        "{refused}"
    );
}
