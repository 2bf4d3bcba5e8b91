//! Installation and repository lifecycle deliveries, and what they cascade to.

use hooklog_domain::ids::{InstallationId, InstanceId};
use serde_json::json;

use crate::support::{
    installation, installation_created, installation_repositories_removed, push, repository, sha,
    Harness, INSTALLATION,
};

const REPO: &str = "octo/docs";

fn instance() -> String {
    InstanceId(InstallationId(INSTALLATION)).to_string()
}

#[tokio::test]
async fn a_deleted_installation_removes_its_targets() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    let main = h.track(REPO, "main").await;
    let dev = h.track(REPO, "dev").await;
    h.publish("installation", "deleted", &installation("deleted"))
        .await;
    let (outcome, detail) = h.outcome("deleted").await;
    assert_eq!(outcome, "processed", "{detail}");
    for target in [main, dev] {
        let events = h
            .events_ending_with("ConnectorTarget", &target.to_string(), "TargetRemoved")
            .await;
        let (_, payload, metadata) = events.last().unwrap();
        assert_eq!(payload["TargetRemoved"]["reason"], "installation_deleted");
        assert_eq!(metadata["delivery_id"], "deleted");
        // Caused by the instance's `InstanceDeleted`, through the process manager.
        let causation = metadata["causation_id"].as_str().unwrap();
        assert!(
            causation.starts_with(&format!("ConnectorInstance:{}:", instance())),
            "{causation}"
        );
        assert_eq!(metadata["actor"], "system:process-manager");
    }
    // A push after the deletion is refused by the removed target and recorded as ignored.
    h.publish(
        "push",
        "late-push",
        &push(REPO, "refs/heads/main", &sha(0xa), &sha(1)),
    )
    .await;
    let (outcome, detail) = h.outcome("late-push").await;
    assert_eq!(outcome, "ignored");
    assert!(detail.contains("removed"), "{detail}");
}

#[tokio::test]
async fn repositories_removed_from_the_installation_disable_their_targets() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    let main = h.track(REPO, "main").await;
    h.publish(
        "installation_repositories",
        "removed",
        &installation_repositories_removed(REPO),
    )
    .await;
    let (outcome, detail) = h.outcome("removed").await;
    assert_eq!(outcome, "processed", "{detail}");
    let events = h
        .events_ending_with("ConnectorTarget", &main.to_string(), "TargetDisabled")
        .await;
    assert_eq!(
        events.last().unwrap().1["TargetDisabled"]["reason"],
        "repository_removed"
    );
    h.publish(
        "push",
        "push-after",
        &push(REPO, "refs/heads/main", &sha(0xa), &sha(1)),
    )
    .await;
    let (outcome, detail) = h.outcome("push-after").await;
    assert_eq!(outcome, "ignored");
    assert!(detail.contains("disabled"), "{detail}");
}

#[tokio::test]
async fn a_renamed_repository_keeps_syncing_under_its_new_name() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    let main = h.track(REPO, "main").await;
    h.publish(
        "repository",
        "renamed",
        &repository("renamed", "octo/handbook"),
    )
    .await;
    assert_eq!(h.outcome("renamed").await.0, "processed");
    h.events_ending_with("ConnectorTarget", &main.to_string(), "RepositoryRenamed")
        .await;
    h.publish(
        "push",
        "push-new-name",
        &push("octo/handbook", "refs/heads/main", &sha(0xa), &sha(1)),
    )
    .await;
    assert_eq!(h.outcome("push-new-name").await.0, "processed");
    let events = h.events("ConnectorTarget", &main.to_string()).await;
    let kinds: Vec<_> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        ["TargetTracked", "RepositoryRenamed", "SyncRequested"]
    );
    assert_eq!(events[1].1["RepositoryRenamed"]["from"], REPO);
    assert_eq!(events[1].1["RepositoryRenamed"]["to"], "octo/handbook");
}

#[tokio::test]
async fn a_deleted_repository_removes_its_targets_whatever_its_name_says() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    let main = h.track(REPO, "main").await;
    // An action that changes nothing is ignored, not dead-lettered, for a name hooklog does not
    // take; and a deletion goes by the repository's id.
    let mut archived = repository("renamed", "not a/valid name/..");
    archived["action"] = json!("archived");
    h.publish("repository", "repo-archived", &archived).await;
    let (outcome, detail) = h.outcome("repo-archived").await;
    assert_eq!(outcome, "ignored", "{detail}");
    let mut body = repository("renamed", "not a/valid name/..");
    body["action"] = json!("deleted");
    h.publish("repository", "repo-deleted", &body).await;
    assert_eq!(h.outcome("repo-deleted").await.0, "processed");
    let events = h
        .events_ending_with("ConnectorTarget", &main.to_string(), "TargetRemoved")
        .await;
    assert_eq!(
        events.last().unwrap().1["TargetRemoved"]["reason"],
        "repository_deleted"
    );
}

#[tokio::test]
async fn suspension_permissions_and_pings_are_recorded_on_the_instance() {
    let h = Harness::start().await;
    h.connect(REPO).await;
    for action in ["suspend", "unsuspend", "new_permissions_accepted"] {
        h.publish("installation", action, &installation(action))
            .await;
        assert_eq!(h.outcome(action).await.0, "processed", "{action}");
    }
    let mut ping = json!({"zen": "Keep it logically awesome.", "hook_id": 30, "installation": {"id": INSTALLATION}});
    h.publish("ping", "ping", &ping).await;
    assert_eq!(h.outcome("ping").await.0, "processed");
    ping["installation"] = serde_json::Value::Null;
    h.publish("ping", "app-ping", &ping).await;
    assert_eq!(h.outcome("app-ping").await.0, "processed");
    let kinds: Vec<_> = h
        .events("ConnectorInstance", &instance())
        .await
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(
        kinds,
        [
            "InstanceConnected",
            "InstanceSuspended",
            "InstanceUnsuspended",
            "PermissionsAccepted",
            "WebhookPinged"
        ]
    );
    // A second `created` for the same installation is a refused command, recorded as ignored.
    h.publish("installation", "created-again", &installation_created(REPO))
        .await;
    let (outcome, detail) = h.outcome("created-again").await;
    assert_eq!(outcome, "ignored");
    assert!(detail.contains("already connected"), "{detail}");
}

#[tokio::test]
async fn events_hooklog_does_not_act_on_are_recorded_as_ignored() {
    let h = Harness::start().await;
    h.publish("star", "star", &json!({"action": "created"}))
        .await;
    let (outcome, detail) = h.outcome("star").await;
    assert_eq!(outcome, "ignored");
    assert!(
        detail.contains("`star` deliveries are recorded, not acted on"),
        "{detail}"
    );
}
