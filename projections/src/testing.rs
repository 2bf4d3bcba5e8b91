//! A feed of domain events published straight to `HOOKLOG_EVENTS` the way the relay publishes
//! them (subject, `Nats-Msg-Id`, headers, payload), for the projections' tests and the rebuild
//! benchmark. Only with the `testing` feature.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use async_nats::HeaderMap;
use hooklog_domain::clock::Timestamp;
use hooklog_domain::connector_instance::{AttachedTarget, InstanceEvent, Repository};
use hooklog_domain::connector_target::{FileFailure, SyncReason, SyncStatus, TargetEvent};
use hooklog_domain::delivery::{DeliveryEvent, DeliveryKey, SentCommand, StreamPosition};
use hooklog_domain::ids::{
    Branch, CommitSha, InstallationId, InstanceId, RepositoryId, RepositoryName, SyncId, TargetId,
};
use hooklog_infra::streams::{self, event_headers as h};

/// Publishes events with per-aggregate sequences; times advance one millisecond per event from a
/// fixed start, so a feed is the same every time.
pub struct EventFeed {
    js: jetstream::Context,
    sequences: HashMap<String, u64>,
    clock: u64,
    pending: Vec<jetstream::context::PublishAckFuture>,
}

impl EventFeed {
    pub fn new(js: jetstream::Context) -> Self {
        Self {
            js,
            sequences: HashMap::new(),
            clock: 0,
            pending: vec![],
        }
    }

    /// The time of the next event.
    /// The time of the last event, without moving the clock.
    pub fn now(&self) -> Timestamp {
        Timestamp(
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_790_000_000)
                + Duration::from_millis(self.clock),
        )
    }

    pub fn at(&mut self) -> Timestamp {
        self.clock += 1;
        Timestamp(
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_790_000_000)
                + Duration::from_millis(self.clock),
        )
    }

    pub async fn instance(
        &mut self,
        installation: u64,
        event: InstanceEvent,
        delivery: Option<&str>,
    ) {
        let id = InstanceId(InstallationId(installation)).to_string();
        let payload = serde_json::to_vec(&event).expect("events serialize");
        let event_type = cqrs_type(&serde_json::to_value(&event).expect("events serialize"));
        self.publish("ConnectorInstance", &id, &event_type, payload, delivery)
            .await;
    }

    pub async fn target(&mut self, target: TargetId, event: TargetEvent, delivery: Option<&str>) {
        let payload = serde_json::to_vec(&event).expect("events serialize");
        let event_type = cqrs_type(&serde_json::to_value(&event).expect("events serialize"));
        self.publish(
            "ConnectorTarget",
            &target.to_string(),
            &event_type,
            payload,
            delivery,
        )
        .await;
    }

    /// The worker's decision about `delivery_id`, as the `Delivery` aggregate's event.
    pub async fn decision(&mut self, delivery_id: &str, event: DeliveryEvent) {
        let id = DeliveryKey::for_delivery(delivery_id).0;
        let payload = serde_json::to_vec(&event).expect("events serialize");
        let event_type = cqrs_type(&serde_json::to_value(&event).expect("events serialize"));
        self.publish("Delivery", &id, &event_type, payload, Some(delivery_id))
            .await;
    }

    /// Publishes a message as it is given, e.g. one the projector must refuse.
    pub async fn raw(&mut self, subject: String, headers: HeaderMap, payload: Vec<u8>) {
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publish");
        self.pending.push(ack);
        self.flush().await;
    }

    async fn publish(
        &mut self,
        aggregate_type: &str,
        id: &str,
        event_type: &str,
        payload: Vec<u8>,
        delivery: Option<&str>,
    ) {
        let sequence = self
            .sequences
            .entry(format!("{aggregate_type}:{id}"))
            .or_insert(0);
        *sequence += 1;
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            streams::event_msg_id(aggregate_type, id, *sequence).as_str(),
        );
        headers.insert(h::AGGREGATE_TYPE, aggregate_type);
        headers.insert(h::AGGREGATE_ID, id);
        headers.insert(h::SEQUENCE, sequence.to_string().as_str());
        headers.insert(h::EVENT_TYPE, event_type);
        headers.insert(h::EVENT_VERSION, "1");
        if let Some(delivery) = delivery {
            headers.insert(
                format!("{}delivery_id", h::METADATA_PREFIX).as_str(),
                delivery,
            );
        }
        let ack = self
            .js
            .publish_with_headers(
                streams::event_subject(aggregate_type, id),
                headers,
                payload.into(),
            )
            .await
            .expect("publish");
        self.pending.push(ack);
        if self.pending.len() >= 1000 {
            self.flush().await;
        }
    }

    /// Waits for every PubAck.
    pub async fn flush(&mut self) {
        for ack in
            futures::future::join_all(self.pending.drain(..).map(|ack| ack.into_future())).await
        {
            ack.expect("PubAck");
        }
    }

    /// A connected installation with `targets` tracked branches, then `syncs` pushes per target,
    /// each requested, started and finished (every fifth partial, every seventh failed, every
    /// third followed by a push that queues behind it). Returns the target ids.
    pub async fn lifecycle(
        &mut self,
        installation: u64,
        targets: u64,
        syncs: u64,
    ) -> Vec<TargetId> {
        let repositories: Vec<Repository> = (1..=targets)
            .map(|n| Repository {
                id: RepositoryId(installation * 100_000 + n),
                full_name: RepositoryName::parse(&format!("octo-{installation}/repo-{n}")).unwrap(),
            })
            .collect();
        let at = self.at();
        self.instance(
            installation,
            InstanceEvent::InstanceConnected {
                installation_id: InstallationId(installation),
                account: format!("octo-{installation}"),
                repository_selection: Some("selected".into()),
                repositories: repositories.clone(),
                at,
            },
            Some(&format!("install-{installation}")),
        )
        .await;
        let branch = Branch::parse("main").unwrap();
        let mut ids = vec![];
        for repository in &repositories {
            let target = AttachedTarget::new(
                InstallationId(installation),
                repository.id,
                repository.full_name.clone(),
                branch.clone(),
            );
            let at = self.at();
            self.instance(
                installation,
                InstanceEvent::TargetAttached {
                    installation_id: InstallationId(installation),
                    target: target.clone(),
                    auto_tracked: false,
                    push: None,
                    at,
                },
                None,
            )
            .await;
            let at = self.at();
            self.target(
                target.target_id,
                TargetEvent::TargetTracked {
                    target_id: target.target_id,
                    installation_id: Some(InstallationId(installation)),
                    connection_id: None,
                    repository_id: repository.id,
                    repository: repository.full_name.clone(),
                    branch: branch.clone(),
                    auto_sync: true,
                    source: None,
                    path_filters: Default::default(),
                    at,
                },
                None,
            )
            .await;
            ids.push(target.target_id);
        }
        for n in 1..=syncs {
            for (i, target) in ids.iter().enumerate() {
                self.sync(*target, n, i as u64).await;
            }
        }
        self.reconciled(installation).await;
        self.connected(installation).await;
        self.flush().await;
        ids
    }

    /// Two repositories connected without the App for `installation`'s history: one whose
    /// webhook was created after a failed attempt and stands, one disconnected after a failed
    /// deletion.
    pub async fn connected(&mut self, installation: u64) {
        use hooklog_domain::ids::Branch;
        use hooklog_domain::repository_connection::{
            ConnectionEvent as E, ConnectionId, Provider, ProviderRepository, PullRequestState,
            RunRef,
        };
        for (n, provider, repository) in [
            (1u64, Provider::Github, format!("octo-{installation}/docs")),
            (
                2,
                Provider::Gitlab,
                format!("group-{installation}/sub/handbook"),
            ),
        ] {
            let id = ConnectionId(uuid::Uuid::from_u128(
                u128::from(installation) << 64 | u128::from(n),
            ));
            let mut events = vec![
                E::RepositoryConnected {
                    connection_id: id,
                    provider,
                    repository: ProviderRepository::parse(provider, &repository)
                        .expect("a repository"),
                    branch: Branch::parse("main").expect("a branch"),
                    hook_url: format!("https://hooklog.example.com/v1/webhooks/x/{id}"),
                    secret_id: format!("secret-{n}"),
                    at: self.at(),
                },
                E::WebhookFailed {
                    attempt: 1,
                    reason: "GitHub answered 502: Bad Gateway".into(),
                    at: self.at(),
                },
                E::WebhookRetryRequested {
                    attempt: 2,
                    at: self.at(),
                },
                E::WebhookCreated {
                    attempt: 2,
                    hook_id: installation * 10 + n,
                    adopted: n == 2,
                    repository_id: installation * 100 + n,
                    repository_path: None,
                    clone_url: None,
                    at: self.at(),
                },
            ];
            if n == 1 {
                let branch = Branch::parse("main").expect("a branch");
                let run = |k: u64, at| RunRef {
                    run_id: installation * 1000 + k,
                    run_number: k,
                    run_attempt: 1,
                    head_sha: sha(installation * 1000 + k),
                    url: format!("https://github.com/octo-{installation}/docs/actions/runs/{k}"),
                    updated_at: at,
                };
                let incident_id = uuid::Uuid::from_u128(u128::from(installation) << 64 | 99);
                events.push(E::WorkflowPassed {
                    workflow_id: 7,
                    branch: branch.clone(),
                    run: run(1, self.now()),
                    at: self.at(),
                });
                events.push(E::IncidentOpened {
                    incident_id,
                    workflow_id: 7,
                    workflow: "CI".into(),
                    branch: branch.clone(),
                    conclusion: "failure".into(),
                    run: run(2, self.now()),
                    at: self.at(),
                });
                events.push(E::IncidentRecurred {
                    incident_id,
                    workflow_id: 7,
                    branch: branch.clone(),
                    conclusion: "timed_out".into(),
                    run: run(3, self.now()),
                    at: self.at(),
                });
                events.push(E::IncidentResolved {
                    incident_id,
                    workflow_id: 7,
                    branch,
                    run: run(4, self.now()),
                    at: self.at(),
                });
                for (state, action) in [
                    (PullRequestState::Open, "opened"),
                    (PullRequestState::Merged, "closed"),
                ] {
                    events.push(E::PullRequestUpdated {
                        number: installation,
                        title: "Docs".into(),
                        state,
                        action: action.into(),
                        head_branch: "docs".into(),
                        base_branch: "main".into(),
                        head_sha: sha(installation),
                        url: format!("https://github.com/octo-{installation}/docs/pull/1"),
                        updated_at: self.now(),
                        at: self.at(),
                    });
                }
            }
            if n == 2 {
                events.push(E::DisconnectRequested { at: self.at() });
                events.push(E::WebhookDeleteFailed {
                    attempts: 1,
                    reason: "GitLab answered 500: Internal Server Error".into(),
                    at: self.at(),
                });
                events.push(E::WebhookDeleted {
                    hook_ids: vec![installation * 10 + n],
                    at: self.at(),
                });
                events.push(E::RepositoryDisconnected { at: self.at() });
            }
            for event in events {
                let payload = serde_json::to_vec(&event).expect("events serialize");
                let event_type =
                    cqrs_type(&serde_json::to_value(&event).expect("events serialize"));
                self.publish(
                    "RepositoryConnection",
                    &id.to_string(),
                    &event_type,
                    payload,
                    None,
                )
                .await;
            }
        }
    }

    /// What the GitHub reconciler records for two of `installation`'s deliveries GitHub
    /// attempted and the stream lacked: one asked for and arrived, one asked twice and given up.
    pub async fn reconciled(&mut self, installation: u64) {
        use hooklog_domain::github_delivery::{
            GithubAttempt, GithubDeliveryEvent as E, Requester, Unrecoverable,
        };
        for (n, arrives) in [(1u64, true), (2, false)] {
            let guid = format!("lost-{installation}-{n}");
            let seen = GithubAttempt {
                connection_id: None,
                github_id: installation * 1000 + n,
                event: "push".into(),
                action: None,
                installation_id: Some(installation),
                repository_id: Some(installation * 100_000 + n),
                delivered_at: self.now(),
                status: "failed to connect to host".into(),
                status_code: 0,
                redelivery: false,
            };
            let mut events = vec![E::DeliveryMissing {
                guid: guid.clone(),
                seen,
                at: self.at(),
            }];
            for attempt in 1..=(if arrives { 1 } else { 2 }) {
                events.push(E::RedeliveryRequested {
                    guid: guid.clone(),
                    attempt,
                    github_id: installation * 1000 + n,
                    by: Requester::Reconciler,
                    at: self.at(),
                });
            }
            events.push(match arrives {
                true => E::RedeliveryArrived {
                    guid: guid.clone(),
                    stream_sequence: n,
                    attempts: 1,
                    at: self.at(),
                },
                false => E::DeliveryUnrecoverable {
                    guid: guid.clone(),
                    reason: Unrecoverable::NotArrived { attempts: 2 },
                    at: self.at(),
                },
            });
            let id = DeliveryKey::for_delivery(&guid).0;
            for event in events {
                let payload = serde_json::to_vec(&event).expect("events serialize");
                let event_type =
                    cqrs_type(&serde_json::to_value(&event).expect("events serialize"));
                self.publish("GithubDelivery", &id, &event_type, payload, None)
                    .await;
            }
        }
    }

    async fn sync(&mut self, target: TargetId, n: u64, salt: u64) {
        let sync_id = SyncId::nth(target, n);
        let head = sha(n * 1_000_003 + salt);
        let delivery = format!("push-{target}-{n}");
        let at = self.at();
        self.target(
            target,
            TargetEvent::SyncRequested {
                sync_id,
                head_sha: head.clone(),
                delivery_id: Some(delivery.clone()),
                reason: SyncReason::Push,
                forced: false,
                before_sha: None,
                at,
            },
            Some(&delivery),
        )
        .await;
        // Decided at the request's time: the clock the sync runs read moves on only for them.
        let at = self.now();
        let position = |event: &str| StreamPosition {
            event: event.to_owned(),
            stream_sequence: n * 1_000 + salt,
            attempts: 1,
        };
        let decision = DeliveryEvent::DeliveryProcessed {
            delivery_id: delivery.clone(),
            position: position("push"),
            detail: format!("push to target {target}"),
            commands: vec![SentCommand {
                aggregate_type: "ConnectorTarget".to_owned(),
                aggregate_id: target.to_string(),
                command: "RecordPush".to_owned(),
            }],
            at,
        };
        self.decision(&delivery, decision).await;
        if n.is_multiple_of(7) {
            let poison = format!("poison-{target}-{n}");
            let at = self.now();
            let dead = DeliveryEvent::DeliveryDeadLettered {
                delivery_id: poison.clone(),
                position: position("push"),
                reason: "missing field `repository`".to_owned(),
                at,
            };
            self.decision(&poison, dead).await;
        }
        let at = self.at();
        self.target(
            target,
            TargetEvent::SyncStarted {
                sync_id,
                head_sha: head.clone(),
                at,
            },
            None,
        )
        .await;
        if n.is_multiple_of(3) {
            let queued = format!("push-{target}-{n}-queued");
            let at = self.at();
            self.target(
                target,
                TargetEvent::SyncQueued {
                    head_sha: sha(n * 7_000_001 + salt),
                    delivery_id: Some(queued.clone()),
                    reason: SyncReason::Push,
                    forced: false,
                    replaces: None,
                    before_sha: None,
                    at,
                },
                Some(&queued),
            )
            .await;
        }
        let at = self.at();
        let event = if n.is_multiple_of(7) {
            TargetEvent::SyncFailed {
                sync_id,
                head_sha: head,
                error: "the tree could not be fetched".into(),
                retryable: true,
                at,
            }
        } else {
            let partial = n.is_multiple_of(5);
            TargetEvent::SyncCompleted {
                sync_id,
                head_sha: head,
                status: if partial {
                    SyncStatus::Partial
                } else {
                    SyncStatus::Completed
                },
                created: n,
                updated: n / 2,
                deleted: n % 3,
                skipped: 1,
                failures: if partial {
                    vec![FileFailure {
                        path: format!("docs/{n}.md"),
                        reason: "bad front matter".into(),
                    }]
                } else {
                    vec![]
                },
                at,
            }
        };
        self.target(target, event, None).await;
    }
}

/// A 40-hex SHA from a number.
pub fn sha(n: u64) -> CommitSha {
    CommitSha::parse(&format!("{n:040x}")).unwrap()
}

/// The event type cqrs-es stores: the externally tagged variant name.
fn cqrs_type(value: &serde_json::Value) -> String {
    value
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default()
}
