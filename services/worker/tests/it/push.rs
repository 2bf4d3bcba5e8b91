//! Pushes: one sync per head, however many deliveries carry it; refs that are not tracked
//! branches are ignored; branch deletion and recreation; auto-tracking.

use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::ids::{Branch, InstallationId, InstanceId, RepositoryId, TargetId};
use hooklog_domain::metadata::CommandMetadata;
use serde_json::json;

use crate::support::{push, sha, Harness, INSTALLATION, REPOSITORY};

const REPO: &str = "octo/docs";

#[tokio::test]
async fn a_push_to_a_tracked_branch_requests_one_sync_and_a_redelivery_days_later_changes_nothing()
{
    let h = Harness::start().await;
    let target = h.track(REPO, "main").await;
    let body = push(REPO, "refs/heads/main", &sha(0xa), &sha(1));
    h.publish("push", "d-1", &body).await;
    let (outcome, detail) = h.outcome("d-1").await;
    assert_eq!(outcome, "processed", "{detail}");
    let events = h.events("ConnectorTarget", &target.to_string()).await;
    let kinds: Vec<_> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(kinds, ["TargetTracked", "SyncRequested"]);
    let (_, payload, metadata) = &events[1];
    assert_eq!(payload["SyncRequested"]["head_sha"], sha(1));
    assert_eq!(payload["SyncRequested"]["reason"], "push");
    assert_eq!(metadata["delivery_id"], "d-1");
    assert_eq!(metadata["correlation_id"], "d-1");
    assert_eq!(metadata["actor"], "github");

    // GitHub's manual redelivery keeps the delivery id; past the duplicate window it is a new
    // message on the stream.
    h.publish_as("push", "d-1", "d-1-redelivered", &body).await;
    h.drained().await;
    assert_eq!(
        h.target_events(target).await,
        ["TargetTracked", "SyncRequested"]
    );
}

#[tokio::test]
async fn distinct_deliveries_of_one_head_request_one_sync_and_later_heads_queue_behind_it() {
    let h = Harness::start().await;
    let target = h.track(REPO, "main").await;
    for i in 0..20 {
        h.publish(
            "push",
            &format!("same-{i}"),
            &push(REPO, "refs/heads/main", &sha(0xa), &sha(1)),
        )
        .await;
    }
    h.publish(
        "push",
        "next",
        &push(REPO, "refs/heads/main", &sha(1), &sha(2)),
    )
    .await;
    h.drained().await;
    let events = h.target_events(target).await;
    assert_eq!(
        events.iter().filter(|e| *e == "SyncRequested").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "SyncQueued").count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_push_to_an_untracked_branch_or_a_tag_is_recorded_as_ignored() {
    let h = Harness::start().await;
    let tracked = h.track(REPO, "main").await;
    h.publish(
        "push",
        "other-branch",
        &push(REPO, "refs/heads/feature", &sha(0xa), &sha(1)),
    )
    .await;
    h.publish(
        "push",
        "tag",
        &push(REPO, "refs/tags/v1.0", &sha(0xa), &sha(1)),
    )
    .await;
    let (outcome, detail) = h.outcome("other-branch").await;
    assert_eq!(
        (
            outcome.as_str(),
            detail.contains("no target tracks octo/docs@feature")
        ),
        ("ignored", true),
        "{detail}"
    );
    let (outcome, detail) = h.outcome("tag").await;
    assert_eq!(
        (outcome.as_str(), detail.contains("not a branch")),
        ("ignored", true),
        "{detail}"
    );
    let untracked = TargetId::for_branch(
        InstallationId(INSTALLATION),
        RepositoryId(REPOSITORY),
        &Branch::parse("feature").unwrap(),
    );
    assert!(h.target_events(untracked).await.is_empty());
    assert_eq!(h.target_events(tracked).await, ["TargetTracked"]);
}

#[tokio::test]
async fn a_deleted_branch_disables_its_target_until_a_push_recreates_it() {
    let h = Harness::start().await;
    let target = h.track(REPO, "main").await;
    let mut deletion = push(REPO, "refs/heads/main", &sha(1), &"0".repeat(40));
    deletion["deleted"] = json!(true);
    h.publish("push", "deleted", &deletion).await;
    assert_eq!(h.outcome("deleted").await.0, "processed");
    let mut recreation = push(REPO, "refs/heads/main", &"0".repeat(40), &sha(2));
    recreation["created"] = json!(true);
    recreation["forced"] = json!(true);
    h.publish("push", "recreated", &recreation).await;
    assert_eq!(h.outcome("recreated").await.0, "processed");
    let events = h.events("ConnectorTarget", &target.to_string()).await;
    let kinds: Vec<_> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "TargetTracked",
            "TargetDisabled",
            "TargetEnabled",
            "SyncRequested"
        ]
    );
    assert_eq!(events[1].1["TargetDisabled"]["reason"], "branch_deleted");
    assert_eq!(events[3].1["SyncRequested"]["forced"], true);
}

#[tokio::test]
async fn auto_track_follows_the_first_push_to_a_default_branch_only() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    let meta = CommandMetadata::from_operator("test", "r-1");
    let instance = InstanceId(InstallationId(INSTALLATION));
    h.bus
        .instance(
            instance,
            InstanceCommand::SetAutoTrack { enabled: true },
            &meta,
        )
        .await
        .unwrap();

    let mut to_default = push(REPO, "refs/heads/trunk", &sha(0xa), &sha(1));
    to_default["repository"]["default_branch"] = json!("trunk");
    h.publish("push", "default", &to_default).await;
    let mut to_feature = push(REPO, "refs/heads/feature", &sha(0xa), &sha(2));
    to_feature["repository"]["default_branch"] = json!("trunk");
    h.publish("push", "feature", &to_feature).await;

    let (outcome, detail) = h.outcome("default").await;
    assert_eq!(outcome, "processed", "{detail}");
    assert_eq!(h.outcome("feature").await.0, "ignored");
    let trunk = TargetId::for_branch(
        InstallationId(INSTALLATION),
        RepositoryId(REPOSITORY),
        &Branch::parse("trunk").unwrap(),
    );
    // The process manager tracks the target and hands it the push.
    let events = h
        .events_ending_with("ConnectorTarget", &trunk.to_string(), "SyncRequested")
        .await;
    let kinds: Vec<_> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(kinds, ["TargetTracked", "SyncRequested"]);
    assert_eq!(events[1].1["SyncRequested"]["delivery_id"], "default");
    let instance_events: Vec<_> = h.events("ConnectorInstance", &instance.to_string()).await;
    let attached = instance_events
        .iter()
        .find(|(t, _, _)| t == "TargetAttached")
        .expect("attached");
    assert_eq!(attached.1["TargetAttached"]["auto_tracked"], true);
}
