//! Idempotency that holds under concurrency: a command keyed by its delivery and cause commits
//! once, whether two processes run it at the same moment or a redelivery runs it again after a
//! crash left its events committed but its outcome unrecorded.

use std::sync::Arc;

use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::ids::{InstallationId, InstanceId};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::{CommandBus, Executed};
use serde_json::json;

use crate::support::{Harness, INSTALLATION};

fn ping() -> InstanceCommand {
    // Not idempotent by itself: every ping the instance is sent is recorded.
    InstanceCommand::RecordPing {
        hook_id: Some(30),
        zen: Some("Keep it logically awesome.".to_owned()),
    }
}

fn pings(events: &[(String, serde_json::Value, serde_json::Value)]) -> usize {
    events
        .iter()
        .filter(|(t, _, _)| t == "WebhookPinged")
        .count()
}

#[tokio::test]
async fn one_keyed_command_run_by_two_processes_at_once_commits_once() {
    let h = Harness::start_with(0, false).await;
    let instance = InstanceId(InstallationId(INSTALLATION));
    // Two buses over one database stand for two processes: no lock stripe keeps them apart.
    let buses = [
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
    ];
    for round in 0..10 {
        let meta = CommandMetadata::from_delivery(&format!("ping-{round}"));
        let runs = (0..8).map(|n| {
            let (bus, meta) = (buses[n % 2].clone(), meta.clone());
            async move { bus.instance(instance, ping(), &meta).await }
        });
        let results = futures::future::join_all(runs).await;
        let handled = results
            .iter()
            .filter(|r| matches!(r, Ok(Executed::Handled)))
            .count();
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(Executed::Handled | Executed::AlreadyApplied))),
            "round {round}: {results:?}"
        );
        assert_eq!(handled, 1, "round {round}: {results:?}");
    }
    let events = h.events("ConnectorInstance", &instance.to_string()).await;
    assert_eq!(pings(&events), 10, "{events:?}");
}

#[tokio::test]
async fn a_delivery_whose_commands_committed_before_a_crash_is_not_decided_again() {
    let h = Harness::start().await;
    let instance = InstanceId(InstallationId(INSTALLATION));
    // A worker committed the ping's command, then died before recording the outcome.
    let executed = h
        .bus
        .instance(instance, ping(), &CommandMetadata::from_delivery("ping-1"))
        .await
        .unwrap();
    assert_eq!(executed, Executed::Handled);
    // JetStream hands the delivery out again: the re-run would record a second ping.
    let body = json!({"zen": "Keep it logically awesome.", "hook_id": 30, "installation": {"id": INSTALLATION}});
    h.publish("ping", "ping-1", &body).await;
    assert_eq!(h.outcome("ping-1").await.0, "processed");
    h.drained().await;
    let events = h.events("ConnectorInstance", &instance.to_string()).await;
    assert_eq!(pings(&events), 1, "{events:?}");
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM command_keys WHERE aggregate_id = $1")
            .bind(instance.to_string())
            .fetch_all(&h.pool)
            .await
            .unwrap();
    assert_eq!(keys, ["delivery:ping-1/ping-1"]);
}
