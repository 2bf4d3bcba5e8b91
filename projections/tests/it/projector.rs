//! Read models from `HOOKLOG_EVENTS`: what each event leaves in the tables, exactly-once batches
//! and a projection that stops at a message it cannot apply.

use async_nats::HeaderMap;
use hooklog_domain::connector_target::{RemovalReason, TargetEvent};
use hooklog_domain::ids::SyncId;
use hooklog_infra::streams::{self, event_headers as h};
use hooklog_projections::query::{self, PageRequest, SyncRunFilter, TargetFilter};
use hooklog_projections::testing::{sha, EventFeed};
use hooklog_projections::Projection;

use crate::support::Env;

#[tokio::test]
async fn a_lifecycle_leaves_instances_targets_sync_runs_and_delivery_effects() {
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    let targets = feed.lifecycle(7, 3, 7).await;
    let projector = env.projector(1000);
    env.caught_up(Projection::Connector).await;

    let instance = query::instance(&env.pool, &"github-installation-7".parse_instance())
        .await
        .unwrap()
        .expect("instance row");
    assert_eq!(instance.status, "connected");
    assert_eq!(instance.account.as_deref(), Some("octo-7"));
    assert_eq!(instance.targets, 3);
    // Sync 7 of every target failed: the instance is degraded.
    assert_eq!(instance.failed_targets, 3);
    assert_eq!(instance.health, "degraded");
    assert_eq!(instance.repositories.0.as_array().unwrap().len(), 3);

    let target = query::target(&env.pool, targets[0])
        .await
        .unwrap()
        .expect("target row");
    assert_eq!(target.status, "failed");
    assert_eq!(target.last_sync_id, Some(SyncId::nth(targets[0], 7).0));
    assert_eq!(
        target.last_synced_sha.as_deref(),
        Some(sha(6 * 1_000_003).as_str())
    );
    assert_eq!(
        target.last_error.as_deref(),
        Some("the tree could not be fetched")
    );
    // Sync 6 had a push queued behind it; sync 7, requested after, cleared it.
    assert_eq!(target.queued_sha, None);

    let runs = query::sync_runs(
        &env.pool,
        &SyncRunFilter {
            target: Some(targets[0]),
            status: None,
        },
        &PageRequest {
            cursor: None,
            limit: Some(500),
        },
    )
    .await
    .unwrap();
    let statuses: Vec<&str> = runs.items.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "completed",
            "completed",
            "completed",
            "partial",
            "completed",
            "failed"
        ]
    );
    let partial = &runs.items[4];
    assert_eq!(
        (
            partial.created,
            partial.updated,
            partial.deleted,
            partial.skipped
        ),
        (5, 2, 2, 1)
    );
    assert_eq!(partial.failures.0[0]["path"], "docs/5.md");
    assert_eq!(
        partial.duration_ms,
        Some(2),
        "requested, started, completed: 1 ms apart"
    );
    assert!(partial.started_at.is_some() && partial.completed_at.is_some());
    let delivery = format!("push-{}-5", targets[0]);
    assert_eq!(partial.delivery_id.as_deref(), Some(delivery.as_str()));

    let effects = env
        .count(&format!(
            "SELECT count(*) FROM delivery_effects WHERE delivery_id = '{delivery}'"
        ))
        .await;
    assert_eq!(
        effects, 1,
        "a decision is the delivery's outcome, not one of its effects"
    );
    // The worker's decisions are read models too: one outcome per delivery, dead letters apart.
    let outcome: (String, String, i64) = sqlx::query_as(
        "SELECT outcome, detail, stream_sequence FROM delivery_outcomes WHERE delivery_id = $1",
    )
    .bind(&delivery)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        outcome,
        (
            "processed".to_owned(),
            format!("push to target {}", targets[0]),
            5_000
        )
    );
    let dead: (String, String) = sqlx::query_as(
        "SELECT delivery_id, reason FROM dead_letters ORDER BY stream_sequence LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(dead.1, "missing field `repository`");
    let dead_outcome = env
        .count(&format!(
            "SELECT count(*) FROM delivery_outcomes WHERE delivery_id = '{}' AND outcome = 'dead_letter'",
            dead.0
        ))
        .await;
    assert_eq!(dead_outcome, 1);
    projector.stop().await;
}

#[tokio::test]
async fn lists_page_with_cursors_without_skipping_or_repeating() {
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    feed.lifecycle(8, 7, 1).await;
    let projector = env.projector(2);
    env.caught_up(Projection::Connector).await;

    let mut seen = vec![];
    let mut cursor = None;
    loop {
        let page = query::targets(
            &env.pool,
            &TargetFilter::default(),
            &PageRequest {
                cursor: cursor.clone(),
                limit: Some(3),
            },
        )
        .await
        .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|t| t.target_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));

    for bad in [Some("x".to_owned()), Some("-1".to_owned())] {
        let err = query::targets(
            &env.pool,
            &TargetFilter::default(),
            &PageRequest {
                cursor: bad,
                limit: None,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, query::QueryError::BadCursor(_)), "{err}");
    }
    let err = query::targets(
        &env.pool,
        &TargetFilter {
            instance: None,
            connection: None,
            status: Some("sleeping".into()),
        },
        &PageRequest::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("idle, queued, running"), "{err}");
    projector.stop().await;
}

#[tokio::test]
async fn removing_a_target_with_a_sync_in_flight_fails_its_run() {
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    let targets = feed.lifecycle(9, 1, 1).await;
    let sync_id = SyncId::nth(targets[0], 2);
    let at = feed.at();
    feed.target(
        targets[0],
        TargetEvent::SyncRequested {
            sync_id,
            head_sha: sha(99),
            delivery_id: None,
            reason: hooklog_domain::connector_target::SyncReason::Manual,
            forced: false,
            before_sha: None,
            at,
        },
        None,
    )
    .await;
    let at = feed.at();
    feed.target(
        targets[0],
        TargetEvent::TargetRemoved {
            reason: RemovalReason::Operator,
            at,
        },
        None,
    )
    .await;
    let projector = env.projector(1);
    env.caught_up(Projection::Connector).await;

    let run = query::sync_run(&env.pool, sync_id)
        .await
        .unwrap()
        .expect("run");
    assert_eq!(run.status, "failed");
    assert_eq!(run.reason, "manual");
    assert!(run.error.unwrap().contains("removed (operator)"));
    let target = query::target(&env.pool, targets[0]).await.unwrap().unwrap();
    assert_eq!(
        (target.status.as_str(), target.removed_reason.as_deref()),
        ("removed", Some("operator"))
    );
    projector.stop().await;
}

#[tokio::test]
async fn a_message_the_projection_cannot_read_stops_it_there_and_nothing_after_is_applied() {
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    feed.lifecycle(10, 1, 1).await;
    let good = env.last_sequence(Projection::Connector).await;
    let mut headers = HeaderMap::new();
    headers.insert(h::AGGREGATE_TYPE, "ConnectorTarget");
    headers.insert(h::AGGREGATE_ID, "7a0c4a52-3d3b-5d0e-9f7e-2b9c2b8f6a11");
    headers.insert(h::SEQUENCE, "1");
    headers.insert(h::EVENT_TYPE, "TargetTracked");
    headers.insert(h::EVENT_VERSION, "9");
    feed.raw(
        streams::event_subject("ConnectorTarget", "7a0c4a52-3d3b-5d0e-9f7e-2b9c2b8f6a11"),
        headers,
        b"{}".to_vec(),
    )
    .await;
    feed.lifecycle(11, 1, 1).await;

    let projector = env.projector(1);
    let reached = query::wait_for(&env.pool, "connector", good, crate::support::PATIENCE)
        .await
        .unwrap();
    assert!(reached);
    // It keeps retrying the unreadable message and never moves past it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.position(Projection::Connector).await, good);
    assert_eq!(
        env.count("SELECT count(*) FROM instances WHERE installation_id = 11")
            .await,
        0
    );
    projector.stop().await;
}

trait ParseInstance {
    fn parse_instance(&self) -> hooklog_domain::ids::InstanceId;
}

impl ParseInstance for str {
    fn parse_instance(&self) -> hooklog_domain::ids::InstanceId {
        hooklog_domain::ids::InstanceId::parse(self).expect("instance id")
    }
}
