//! The process manager against its own `nats-server` and a fresh database, with the relay
//! running: cascades finish once, whether one process manager runs them, two race on them, or
//! one is killed in the middle and another takes over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::connector_target::{PathFilters, TargetCommand, TargetOwner};
use hooklog_domain::ids::{
    Branch, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::testing::Backends;
use hooklog_process_manager::ProcessManagerConfig;
use hooklog_write::CommandBus;
use tokio_util::sync::CancellationToken;

const INSTALLATION: InstallationId = InstallationId(31);

struct World {
    backends: Backends,
    bus: CommandBus,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    async fn start() -> Self {
        let backends = Backends::start("hooklog-process-manager-test").await;
        let shutdown = CancellationToken::new();
        tokio::spawn(hooklog_relay::run(
            hooklog_relay::RelayConfig::default(),
            backends.pool.clone(),
            backends.js.clone(),
            shutdown.clone(),
        ));
        Self {
            bus: CommandBus::new(backends.pool.clone(), Arc::new(SystemClock)),
            backends,
            shutdown,
        }
    }

    /// A process manager with a bus of its own (another process, as far as caches go).
    fn spawn_manager(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(hooklog_process_manager::run(
            ProcessManagerConfig {
                retry_delay: Duration::from_millis(50),
                // A killed process manager's event is handed out again after this.
                ack_wait: Duration::from_secs(2),
                progress_interval: Duration::from_millis(500),
                ..ProcessManagerConfig::default()
            },
            CommandBus::new(self.backends.pool.clone(), Arc::new(SystemClock)),
            self.backends.js.clone(),
            stop,
        ))
    }

    /// Tracks `n` branches the way the use case does: one command on each target.
    async fn track(&self, n: usize) -> Vec<TargetId> {
        let meta = CommandMetadata::from_operator("test", "track");
        let mut targets = Vec::new();
        for i in 0..n {
            let branch = Branch::parse(&format!("b-{i}")).unwrap();
            let target = TargetId::for_branch(INSTALLATION, RepositoryId(5), &branch);
            let command = TargetCommand::Track {
                owner: TargetOwner::Installation(INSTALLATION),
                repository_id: RepositoryId(5),
                repository: RepositoryName::parse("octo/docs").unwrap(),
                branch,
                auto_sync: true,
                source: None,
                path_filters: PathFilters::default(),
            };
            self.bus.target(target, command, &meta).await.unwrap();
            targets.push(target);
        }
        targets
    }

    async fn count(&self, aggregate_type: &str, event_type: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = $1 AND event_type = $2",
        )
        .bind(aggregate_type)
        .bind(event_type)
        .fetch_one(&self.backends.pool)
        .await
        .unwrap()
    }

    async fn until_count(&self, aggregate_type: &str, event_type: &str, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = self.count(aggregate_type, event_type).await;
            if count >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{count} of {n} {event_type} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the relay published every committed event.
    async fn quiet_outbox(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
                .fetch_one(&self.backends.pool)
                .await
                .unwrap();
            if outbox == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "outbox not empty within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lets the process managers drain, then the counts are final.
    async fn quiet(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stream = self
                .backends
                .js
                .get_stream(hooklog_infra::streams::EVENTS_STREAM)
                .await
                .unwrap();
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
                .fetch_one(&self.backends.pool)
                .await
                .unwrap();
            let info = stream
                .consumer_info("hooklog-process-manager")
                .await
                .unwrap();
            if outbox == 0 && info.num_pending == 0 && info.num_ack_pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "not quiet within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn tracked_targets_are_attached_and_a_disconnect_removes_each_once() {
    let world = World::start().await;
    world.spawn_manager(world.shutdown.clone());
    let instance = InstanceId(INSTALLATION);
    let targets = world.track(5).await;
    world
        .until_count("ConnectorInstance", "TargetAttached", 5)
        .await;
    world
        .bus
        .instance(
            instance,
            InstanceCommand::Disconnect,
            &CommandMetadata::from_operator("test", "disconnect"),
        )
        .await
        .unwrap();
    world
        .until_count("ConnectorTarget", "TargetRemoved", 5)
        .await;
    world.quiet().await;
    assert_eq!(world.count("ConnectorTarget", "TargetRemoved").await, 5);
    // Removed by the disconnect, detached: nothing (the instance let them all go already).
    assert_eq!(world.count("ConnectorInstance", "TargetDetached").await, 0);
    for target in targets {
        let state = world.bus.load_target(target).await.unwrap();
        assert_eq!(
            state.status(),
            hooklog_domain::connector_target::TargetStatus::Removed
        );
    }
}

#[tokio::test]
async fn two_process_managers_racing_on_one_cascade_remove_each_target_once() {
    let world = World::start().await;
    world.spawn_manager(world.shutdown.clone());
    world.spawn_manager(world.shutdown.clone());
    world.track(40).await;
    world
        .until_count("ConnectorInstance", "TargetAttached", 40)
        .await;
    world
        .bus
        .instance(
            InstanceId(INSTALLATION),
            InstanceCommand::Delete,
            &CommandMetadata::from_delivery("deleted"),
        )
        .await
        .unwrap();
    world
        .until_count("ConnectorTarget", "TargetRemoved", 40)
        .await;
    world.quiet().await;
    assert_eq!(world.count("ConnectorTarget", "TargetRemoved").await, 40);
    assert_eq!(world.count("ConnectorInstance", "TargetAttached").await, 40);
}

#[tokio::test]
async fn a_process_manager_stopped_mid_cascade_is_finished_by_the_next_one() {
    let world = World::start().await;
    let first = CancellationToken::new();
    let manager = world.spawn_manager(first.clone());
    world.track(60).await;
    world
        .until_count("ConnectorInstance", "TargetAttached", 60)
        .await;
    world
        .bus
        .instance(
            InstanceId(INSTALLATION),
            InstanceCommand::Disconnect,
            &CommandMetadata::from_operator("test", "disconnect"),
        )
        .await
        .unwrap();
    // Killed as soon as the cascade has begun: the task is dropped mid-step, unacked.
    world
        .until_count("ConnectorTarget", "TargetRemoved", 1)
        .await;
    manager.abort();
    let removed_before = world.count("ConnectorTarget", "TargetRemoved").await;
    // JetStream hands the unacked event to the next one after `ack_wait`.
    world.spawn_manager(world.shutdown.clone());
    world
        .until_count("ConnectorTarget", "TargetRemoved", 60)
        .await;
    world.quiet().await;
    assert_eq!(world.count("ConnectorTarget", "TargetRemoved").await, 60);
    eprintln!("{removed_before} of 60 removed before the first process manager stopped");
}

#[tokio::test]
async fn a_new_holder_handles_first_and_in_order_the_events_a_killed_one_left_unacked() {
    let world = World::start().await;
    let targets = world.track(30).await;
    world.quiet_outbox().await;
    // A process manager that took the first 10 events and was killed before acking any: with
    // an `ack_wait` of a minute they would come back only after newer ones.
    let stream = world
        .backends
        .js
        .get_stream(hooklog_infra::streams::EVENTS_STREAM)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("hooklog-process-manager".to_owned()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 256,
            filter_subjects: vec![
                "hooklog.events.ConnectorInstance.>".to_owned(),
                "hooklog.events.ConnectorTarget.>".to_owned(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut taken = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut in_hand = 0;
    while let Some(message) = futures::StreamExt::next(&mut taken).await {
        message.unwrap();
        in_hand += 1;
    }
    assert_eq!(in_hand, 10);

    world.spawn_manager(world.shutdown.clone());
    let started = Instant::now();
    world
        .until_count("ConnectorInstance", "TargetAttached", 30)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the unacked events waited for their ack_wait: {:?}",
        started.elapsed()
    );
    world.quiet().await;
    let attached: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'TargetAttached'->'target'->>'target_id' FROM events \
         WHERE event_type = 'TargetAttached' ORDER BY sequence",
    )
    .fetch_all(&world.backends.pool)
    .await
    .unwrap();
    let tracked: Vec<String> = targets.iter().map(ToString::to_string).collect();
    assert_eq!(attached, tracked, "attached in the order they were tracked");
}

#[tokio::test]
async fn a_consumer_made_before_connections_were_consumed_is_read_again_from_the_start() {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    use hooklog_domain::repository_connection::{
        ConnectionCommand, ConnectionId, Provider, ProviderRepository,
    };
    use hooklog_infra::streams::{EVENTS_STREAM, EVENTS_SUBJECT_PREFIX};

    let world = World::start().await;
    // A GitHub repository connection whose webhook was created while an earlier hooklog's
    // process manager consumed instances and targets only.
    let id = ConnectionId(uuid::Uuid::new_v4());
    let meta = CommandMetadata::from_operator("test", "connect");
    let branch = Branch::parse("main").unwrap();
    let connect = ConnectionCommand::Connect {
        connection_id: id,
        provider: Provider::Github,
        repository: ProviderRepository::parse(Provider::Github, "octo/docs").unwrap(),
        branch: branch.clone(),
        hook_url: format!("https://hooks.example.com/v1/webhooks/repositories/{id}"),
        secret_id: "s".to_owned(),
    };
    world.bus.connection(id, connect, &meta).await.unwrap();
    let created = ConnectionCommand::RecordWebhookCreated {
        attempt: 1,
        hook_id: 7,
        adopted: false,
        repository_id: 5,
        repository_path: None,
        clone_url: None,
    };
    world.bus.connection(id, created, &meta).await.unwrap();
    world.quiet_outbox().await;
    let stream = world.backends.js.get_stream(EVENTS_STREAM).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some("hooklog-process-manager".to_owned()),
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            filter_subjects: vec![
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorInstance.>"),
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorTarget.>"),
            ],
            ..Default::default()
        })
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let manager = world.spawn_manager(stop.clone());
    world
        .until_count("ConnectorTarget", "TargetTracked", 1)
        .await;
    let target = TargetId::for_connection(id, &branch);
    let state = world.bus.load_target(target).await.unwrap();
    assert_eq!(state.connection_id(), Some(id));
    world.quiet().await;
    assert_eq!(world.count("ConnectorTarget", "TargetTracked").await, 1);
    stop.cancel();
    manager.await.unwrap();
}
