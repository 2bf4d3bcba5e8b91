//! What goes wrong: poison payloads become dead letters; PostgreSQL outages are waited out with
//! nothing lost; two workers share one consumer without handling a delivery twice.

use std::time::Duration;

use hooklog_domain::ids::{InstallationId, InstanceId, TargetId};

use crate::support::{installation, push, sha, Harness, INSTALLATION, SECRET};

const REPO: &str = "octo/docs";

#[tokio::test]
async fn a_payload_without_the_fields_its_event_needs_is_a_dead_letter_and_is_not_redelivered() {
    let h = Harness::start().await;
    let mut body = push(REPO, "refs/heads/main", &sha(0xa), &sha(1));
    body.as_object_mut().unwrap().remove("repository");
    let seq = h.publish("push", "poison", &body).await;
    h.publish(
        "push",
        "bad-sha",
        &push(REPO, "refs/heads/main", "not-a-sha", &sha(1)),
    )
    .await;
    let (outcome, detail) = h.outcome("poison").await;
    assert_eq!(outcome, "dead_letter");
    assert!(detail.contains("missing field `repository`"), "{detail}");
    let (kind, payload) = h.decision("poison").await.unwrap();
    assert_eq!(kind, "DeliveryDeadLettered");
    let dead = &payload["DeliveryDeadLettered"];
    assert_eq!(dead["stream_sequence"].as_u64(), Some(seq));
    assert_eq!(dead["event"], "push");
    assert_eq!(dead["reason"], detail.as_str());
    let (outcome, detail) = h.outcome("bad-sha").await;
    assert_eq!(outcome, "dead_letter");
    assert!(detail.contains("not-a-sha"), "{detail}");
    // Terminated: nothing pending, nothing redelivered, and the raw delivery is still stored.
    h.drained().await;
    let stored =
        h.js.get_stream(hooklog_infra::streams::DELIVERIES_STREAM)
            .await
            .unwrap();
    assert!(stored.get_raw_message(seq).await.is_ok());
}

#[tokio::test]
async fn a_message_not_verified_by_the_ingress_is_a_dead_letter_and_never_acted_on() {
    use hooklog_domain::github::{Signature, WebhookSecret};
    use sha2::Digest;

    let h = Harness::start().await;
    h.connect(REPO).await;
    let main = h.track(REPO, "main").await;
    // Someone with NATS credentials publishes an `installation.deleted`: made-up signature,
    // then a copied digest with a body it does not belong to, then no signature at all.
    let body = serde_json::to_vec(&installation("deleted")).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(&body));
    let forged = Signature::sign(&WebhookSecret::new("a guess"), &body).to_string();
    h.publish_signed(
        "installation",
        "forged",
        "forged",
        body.clone(),
        Some(&forged),
        Some(&digest),
    )
    .await;
    let signed_other = Signature::sign(&WebhookSecret::new(SECRET), b"{}").to_string();
    h.publish_signed(
        "installation",
        "swapped",
        "swapped",
        body.clone(),
        Some(&signed_other),
        Some(&digest),
    )
    .await;
    h.publish_signed(
        "installation",
        "unsigned",
        "unsigned",
        body,
        None,
        Some(&digest),
    )
    .await;
    for (id, reason) in [
        ("forged", "does not match"),
        ("swapped", "does not match"),
        ("unsigned", "missing"),
    ] {
        let (outcome, detail) = h.outcome(id).await;
        assert_eq!(outcome, "dead_letter", "{id}");
        assert!(
            detail.contains(reason) && detail.contains("not acted on"),
            "{id}: {detail}"
        );
    }
    h.drained().await;
    h.cascades_done().await;
    let target_events = h.events("ConnectorTarget", &main.to_string()).await;
    assert!(
        target_events
            .iter()
            .all(|(kind, ..)| kind != "TargetRemoved"),
        "the target was not removed: {target_events:?}"
    );
    let instance = InstanceId(InstallationId(INSTALLATION)).to_string();
    let instance_events = h.events("ConnectorInstance", &instance).await;
    assert!(
        instance_events
            .iter()
            .all(|(kind, ..)| kind != "InstanceDeleted"),
        "the installation was not deleted"
    );
    // The same delivery, signed with the webhook secret, is acted on.
    h.publish("installation", "genuine", &installation("deleted"))
        .await;
    assert_eq!(h.outcome("genuine").await.0, "processed");
    h.events_ending_with("ConnectorTarget", &main.to_string(), "TargetRemoved")
        .await;
}

#[tokio::test]
async fn deliveries_wait_out_a_postgres_outage_and_none_is_lost() {
    let mut h = Harness::start_with(1, true).await;
    let targets: Vec<TargetId> = {
        let mut ids = vec![];
        for branch in ["b0", "b1", "b2", "b3", "b4"] {
            ids.push(h.track(REPO, branch).await);
        }
        ids
    };
    h.outage.as_mut().unwrap().cut();
    for (i, branch) in ["b0", "b1", "b2", "b3", "b4"].iter().enumerate() {
        for n in 0..4u64 {
            let body = push(
                REPO,
                &format!("refs/heads/{branch}"),
                &sha(0xa),
                &sha(100 + n),
            );
            h.publish("push", &format!("outage-{i}-{n}"), &body).await;
        }
    }
    // The worker is failing and backing off meanwhile: nothing is decided.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.decisions().await.is_empty());
    h.outage.as_mut().unwrap().restore().await;
    for i in 0..5 {
        for n in 0..4 {
            assert_eq!(h.outcome(&format!("outage-{i}-{n}")).await.0, "processed");
        }
    }
    // Per target: the first head processed is requested, the three others queue behind it.
    for target in targets {
        let mut events = h.target_events(target).await;
        events.sort();
        assert_eq!(
            events,
            [
                "SyncQueued",
                "SyncQueued",
                "SyncQueued",
                "SyncRequested",
                "TargetTracked"
            ]
        );
    }
}

#[tokio::test]
async fn two_workers_share_the_work_and_each_delivery_is_handed_out_once() {
    let h = Harness::start_with(2, false).await;
    // One push per target: no two deliveries touch the same aggregate, so nothing conflicts
    // and any second attempt could only be a double hand-out.
    let mut targets = vec![];
    for t in 0..100 {
        targets.push(h.track(REPO, &format!("branch-{t}")).await);
    }
    for t in 0..100u64 {
        let body = push(
            REPO,
            &format!("refs/heads/branch-{t}"),
            &sha(0xa),
            &sha(1000 + t),
        );
        h.publish("push", &format!("shared-{t}"), &body).await;
    }
    h.drained().await;
    let decisions = h.decisions().await;
    let processed: Vec<_> = decisions
        .iter()
        .filter_map(|d| d.get("DeliveryProcessed"))
        .collect();
    assert_eq!(processed.len(), 100);
    assert!(
        processed.iter().all(|d| d["attempts"] == 1),
        "a delivery was handed out more than once"
    );
    for target in targets {
        let events = h.target_events(target).await;
        assert_eq!(
            events.iter().filter(|e| *e == "SyncRequested").count(),
            1,
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn a_bus_sees_what_another_process_committed_since_it_last_looked() {
    use std::sync::Arc;

    use hooklog_domain::clock::SystemClock;
    use hooklog_domain::connector_target::{Push, TargetCommand, TargetStatus};
    use hooklog_domain::ids::CommitSha;
    use hooklog_domain::metadata::CommandMetadata;
    use hooklog_write::CommandBus;

    let h = Harness::start_with(0, false).await;
    let target = h.track(REPO, "main").await;
    // Two buses over one database stand for two processes, each with its own cache.
    let (a, b) = (
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
    );
    let push = |n: u64| {
        TargetCommand::RecordPush(Push {
            head_sha: CommitSha::parse(&sha(n)).unwrap(),
            before_sha: CommitSha::parse(&sha(0xa)).unwrap(),
            forced: false,
            deleted: false,
            delivery_id: format!("d-{n}"),
        })
    };
    a.target(target, push(1), &CommandMetadata::from_delivery("d-1"))
        .await
        .unwrap();
    b.target(target, push(2), &CommandMetadata::from_delivery("d-2"))
        .await
        .unwrap();
    // `a` cached the target after sync 1 was requested; it must see `b`'s queued head 2.
    let seen = a.load_target(target).await.unwrap();
    assert_eq!(
        seen.follow_up().map(|f| f.head_sha.as_str().to_owned()),
        Some(sha(2))
    );
    b.target(
        target,
        TargetCommand::Disable {
            reason: hooklog_domain::connector_target::DisableReason::Operator,
        },
        &CommandMetadata::from_operator("t", "r"),
    )
    .await
    .unwrap();
    a.target(target, push(3), &CommandMetadata::from_delivery("d-3"))
        .await
        .unwrap_err();
    assert!(matches!(
        a.load_target(target).await.unwrap().status(),
        TargetStatus::Disabled(_)
    ));
    assert_eq!(
        h.target_events(target).await,
        [
            "TargetTracked",
            "SyncRequested",
            "SyncQueued",
            "TargetDisabled"
        ]
    );
}

#[tokio::test]
async fn concurrent_commands_on_one_aggregate_from_two_processes_all_land() {
    use std::sync::Arc;

    use hooklog_domain::clock::SystemClock;
    use hooklog_domain::connector_target::{Push, TargetCommand};
    use hooklog_domain::ids::CommitSha;
    use hooklog_domain::metadata::CommandMetadata;
    use hooklog_write::CommandBus;

    let h = Harness::start_with(0, false).await;
    let target = h.track(REPO, "main").await;
    let buses = [
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
        CommandBus::new(h.pool.clone(), Arc::new(SystemClock)),
    ];
    let pushes = (0..40u64).map(|n| {
        let bus = buses[(n % 2) as usize].clone();
        async move {
            let command = TargetCommand::RecordPush(Push {
                head_sha: CommitSha::parse(&sha(100 + n)).unwrap(),
                before_sha: CommitSha::parse(&sha(0xa)).unwrap(),
                forced: false,
                deleted: false,
                delivery_id: format!("c-{n}"),
            });
            bus.target(
                target,
                command,
                &CommandMetadata::from_delivery(&format!("c-{n}")),
            )
            .await
        }
    });
    let results = futures::future::join_all(pushes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut events = h.target_events(target).await;
    events.sort();
    let queued = events.iter().filter(|e| *e == "SyncQueued").count();
    assert_eq!((events.len(), queued), (1 + 1 + 39, 39), "{events:?}");
}
