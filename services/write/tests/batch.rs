//! The batch writer against a real PostgreSQL: what a batch decides is what the bus would have
//! decided one command after another, it commits all or nothing, a conflict with another writer
//! writes nothing, and a rolled-back unit leaves no trace.

use std::sync::Arc;

use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::connector_target::{Push, TargetCommand, TargetError, TargetOwner};
use hooklog_domain::ids::{
    Branch, CommitSha, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::{AggregateRef, CommandBus, CommandError, Commands, Executed};
use sqlx::PgPool;

const INSTALLATION: InstallationId = InstallationId(77);
const REPOSITORY: RepositoryId = RepositoryId(9);

async fn database() -> PgPool {
    let (url, _) = hooklog_infra::testing::fresh_database_url();
    hooklog_infra::postgres::connect_and_migrate(&url)
        .await
        .expect("a migrated database")
}

fn sha(n: u64) -> CommitSha {
    CommitSha::parse(&format!("{n:040x}")).unwrap()
}

fn push(delivery: &str, before: u64, after: u64) -> TargetCommand {
    TargetCommand::RecordPush(Push {
        head_sha: sha(after),
        before_sha: sha(before),
        forced: false,
        deleted: false,
        delivery_id: delivery.to_owned(),
    })
}

fn ping() -> InstanceCommand {
    InstanceCommand::RecordPing {
        hook_id: Some(1),
        zen: None,
    }
}

/// A tracked target, through the bus.
async fn tracked(bus: &CommandBus) -> TargetId {
    let branch = Branch::parse("main").unwrap();
    let target = TargetId::for_branch(INSTALLATION, REPOSITORY, &branch);
    let track = TargetCommand::Track {
        owner: TargetOwner::Installation(INSTALLATION),
        repository_id: REPOSITORY,
        repository: RepositoryName::parse("octo/repo").unwrap(),
        branch,
        auto_sync: false,
        source: None,
        path_filters: Default::default(),
    };
    let meta = CommandMetadata::from_operator("test", "track");
    bus.target(target, track, &meta).await.unwrap();
    target
}

async fn event_rows(pool: &PgPool, aggregate_type: &str, id: &str) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT sequence, event_type, metadata::text FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn key(delivery: &str) -> String {
    CommandMetadata::from_delivery(delivery)
        .idempotency_key()
        .unwrap()
}

#[tokio::test]
async fn commands_to_one_aggregate_in_a_batch_see_each_other_and_commit_in_one_transaction() {
    let pool = database().await;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let target = tracked(&bus).await;
    let batch = bus.batch(vec![key("d1"), key("d2")]);
    batch.load(&[AggregateRef::Target(target)]).await.unwrap();
    let (m1, m2) = (
        CommandMetadata::from_delivery("d1"),
        CommandMetadata::from_delivery("d2"),
    );
    assert_eq!(
        batch.target(target, push("d1", 1, 2), &m1).await.unwrap(),
        Executed::Handled
    );
    batch.target(target, push("d2", 2, 3), &m2).await.unwrap();
    // The same delivery again: its key is in the batch already.
    assert_eq!(
        batch.target(target, push("d1", 1, 2), &m1).await.unwrap(),
        Executed::AlreadyApplied
    );
    let committed = batch.commit().await.unwrap();
    assert_eq!(committed.events, 2);

    let rows = event_rows(&pool, "ConnectorTarget", &target.to_string()).await;
    let kinds: Vec<&str> = rows.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        ["TargetTracked", "PushRecorded", "PushRecorded"],
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "sequences follow each other"
    );
    assert!(
        rows[1].2.contains(&key("d1")),
        "the event carries its key: {}",
        rows[1].2
    );
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM command_keys WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(target.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys, [key("d1"), key("d2")]);
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM events WHERE aggregate_id = $1 AND sequence > 1",
    )
    .bind(target.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        transactions, 1,
        "both events were appended by one statement"
    );

    // The bus, which shares the cache the batch taught, decides on the state after the batch.
    let meta = CommandMetadata::from_delivery("d1");
    assert_eq!(
        bus.target(target, push("d1", 1, 2), &meta).await.unwrap(),
        Executed::AlreadyApplied
    );
}

#[tokio::test]
async fn a_batch_whose_aggregate_another_writer_changed_writes_nothing() {
    let pool = database().await;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let other = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let target = tracked(&bus).await;
    let instance = InstanceId(INSTALLATION);
    let batch = bus.batch(vec![key("d1"), key("p1")]);
    batch
        .load(&[
            AggregateRef::Target(target),
            AggregateRef::Instance(instance),
        ])
        .await
        .unwrap();
    // Another process commits to the target after the batch loaded it.
    other
        .target(
            target,
            push("x", 5, 6),
            &CommandMetadata::from_delivery("x"),
        )
        .await
        .unwrap();
    batch
        .target(
            target,
            push("d1", 1, 2),
            &CommandMetadata::from_delivery("d1"),
        )
        .await
        .unwrap();
    batch
        .instance(instance, ping(), &CommandMetadata::from_delivery("p1"))
        .await
        .unwrap();
    let err = batch.commit().await.unwrap_err();
    assert!(matches!(err, CommandError::Conflict), "{err:?}");

    let rows = event_rows(&pool, "ConnectorTarget", &target.to_string()).await;
    assert_eq!(
        rows.len(),
        2,
        "tracked and the other writer's push only: {rows:?}"
    );
    assert!(
        event_rows(&pool, "ConnectorInstance", &instance.to_string())
            .await
            .is_empty(),
        "the instance's command of the failed batch was not written either"
    );
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM command_keys WHERE idempotency_key = ANY($1)")
            .bind(vec![key("d1"), key("p1")])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(keys, 0);

    // Run again, the same work commits on the state the other writer left.
    let batch = bus.batch(vec![key("d1")]);
    batch
        .target(
            target,
            push("d1", 1, 2),
            &CommandMetadata::from_delivery("d1"),
        )
        .await
        .unwrap();
    assert_eq!(batch.commit().await.unwrap().events, 1);
    let rows = event_rows(&pool, "ConnectorTarget", &target.to_string()).await;
    assert_eq!(rows.last().unwrap().0, 3, "{rows:?}");
}

#[tokio::test]
async fn a_rolled_back_unit_leaves_nothing_and_the_rest_of_the_batch_commits() {
    let pool = database().await;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let target = tracked(&bus).await;
    let instance = InstanceId(INSTALLATION);
    let batch = bus.batch(vec![key("d1"), key("d2"), key("p1")]);
    batch
        .instance(instance, ping(), &CommandMetadata::from_delivery("p1"))
        .await
        .unwrap();
    let savepoint = batch.savepoint();
    batch
        .target(
            target,
            push("d1", 1, 2),
            &CommandMetadata::from_delivery("d1"),
        )
        .await
        .unwrap();
    batch.rollback(savepoint);
    // The rolled-back command's key went with it: the same delivery may run again, on the
    // state before it.
    assert_eq!(
        batch
            .target(
                target,
                push("d1", 1, 2),
                &CommandMetadata::from_delivery("d1")
            )
            .await
            .unwrap(),
        Executed::Handled
    );
    let savepoint = batch.savepoint();
    batch
        .target(
            target,
            push("d2", 2, 3),
            &CommandMetadata::from_delivery("d2"),
        )
        .await
        .unwrap();
    batch.rollback(savepoint);
    // A refusal is the aggregate's answer and adds nothing.
    let refused = batch
        .target(
            target,
            TargetCommand::Track {
                owner: TargetOwner::Installation(INSTALLATION),
                repository_id: REPOSITORY,
                repository: RepositoryName::parse("octo/repo").unwrap(),
                branch: Branch::parse("main").unwrap(),
                auto_sync: false,
                source: None,
                path_filters: Default::default(),
            },
            &CommandMetadata::from_operator("test", "again"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(TargetError::AlreadyTracked))
        ),
        "{refused:?}"
    );
    assert_eq!(batch.pending(), 2);
    batch.commit().await.unwrap();

    let rows = event_rows(&pool, "ConnectorTarget", &target.to_string()).await;
    let kinds: Vec<&str> = rows.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["TargetTracked", "PushRecorded"], "{rows:?}");
    assert_eq!(
        event_rows(&pool, "ConnectorInstance", &instance.to_string())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_key_stored_before_that_the_batch_did_not_load_fails_its_commit() {
    let pool = database().await;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let instance = InstanceId(INSTALLATION);
    let meta = CommandMetadata::from_delivery("p1");
    bus.instance(instance, ping(), &meta).await.unwrap();
    // Not among the batch's candidates: its check cannot see the stored key.
    let batch = bus.batch(vec![]);
    assert_eq!(
        batch.instance(instance, ping(), &meta).await.unwrap(),
        Executed::Handled
    );
    let err = batch.commit().await.unwrap_err();
    assert!(matches!(err, CommandError::Conflict), "{err:?}");
    let rows = event_rows(&pool, "ConnectorInstance", &instance.to_string()).await;
    assert_eq!(rows.len(), 1, "the ping ran once: {rows:?}");
}
