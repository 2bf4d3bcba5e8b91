//! Cascades run in the process manager, never in a request: a disconnect whose client hangs up
//! and whose process is killed mid-way still removes every target once hooklog runs again.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::{connect, items, track, Stack, WRITE_TOKEN};
use crate::support::{wait_ready, Served};

const INSTALLATION: u64 = 77;
const TARGETS: usize = 150;

#[tokio::test]
async fn a_disconnect_killed_50_ms_in_with_its_client_gone_removes_all_150_targets_after_restart() {
    let mut stack = Stack::start().await;
    connect(&stack, INSTALLATION).await;
    for n in 0..TARGETS {
        track(&stack, INSTALLATION, &format!("branch-{n}")).await;
    }
    let instance = format!("github-installation-{INSTALLATION}");

    // The client sends the DELETE and is gone 50 ms later, with the process.
    let request = stack
        .http
        .request(
            Method::DELETE,
            format!("http://{}/v1/admin/instances/{instance}", stack.admin),
        )
        .bearer_auth(WRITE_TOKEN)
        .send();
    let client = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(50)).await;
    stack.served.child.kill().unwrap();
    stack.served.child.wait().unwrap();
    client.abort();

    // Whether the disconnect committed before the kill is up to the race; once it has, the
    // cascade must finish on its own. Send it again if it did not commit.
    let env = Stack::env_for(
        &stack.nats.url(),
        &stack.db_url,
        &stack.ingress,
        &stack.admin,
    );
    stack.served = Served::start(stack.dir.path(), &["--role", super::READ_SIDE_ROLES], &env);
    wait_ready(&stack.admin, &mut stack.served).await;
    let disconnected: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_id = $1 \
         AND event_type = 'InstanceDisconnected')",
    )
    .bind(&instance)
    .fetch_one(&stack.pool)
    .await
    .unwrap();
    if !disconnected {
        eprintln!("the disconnect had not committed when the process died; sending it again");
        let (status, body) = stack
            .call(
                WRITE_TOKEN,
                Method::DELETE,
                &format!("/v1/admin/instances/{instance}"),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = stack
            .read(&format!(
                "/v1/admin/targets?instance={instance}&status=removed&limit=500"
            ))
            .await;
        if items(&page).len() == TARGETS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {TARGETS} targets removed after 60 s\n{}",
            items(&page).len(),
            stack.served.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let instance_view = stack.read(&format!("/v1/admin/instances/{instance}")).await;
    assert_eq!(instance_view["status"], "disconnected", "{instance_view}");
    // Each target was removed once, by the process manager, for the disconnect.
    let removals: Vec<(String, serde_json::Value)> =
        sqlx::query_as::<_, (String, sqlx::types::Json<serde_json::Value>)>(
            "SELECT aggregate_id, metadata FROM events WHERE aggregate_type = 'ConnectorTarget' \
         AND event_type = 'TargetRemoved'",
        )
        .fetch_all(&stack.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, meta)| (id, meta.0))
        .collect();
    assert_eq!(removals.len(), TARGETS);
    assert!(removals
        .iter()
        .all(|(_, meta)| meta["actor"] == json!("system:process-manager")));
}
