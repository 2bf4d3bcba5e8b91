//! A sealer over real backends, deliveries published the way the ingress stores them, and an
//! independent reading of the streams.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use hooklog_audit::{Checkpoint, Hash, Log, SigningKey};
use hooklog_infra::streams::{self, audit_checkpoint_subject, delivery_headers, AUDIT_STREAM};
use hooklog_infra::testing::{octokit_example, Backends};
use hooklog_sealer::message::{raw_stream_message, stream_name};
use hooklog_sealer::SealerConfig;
use tokio_util::sync::CancellationToken;

/// The webhook secret deliveries are signed with.
pub const SECRET: &str = "sealer-test-webhook-secret";

pub struct Test {
    pub backends: Backends,
    pub key: Arc<SigningKey>,
    body: Vec<u8>,
}

/// A running sealer; dropped, it stops.
pub struct Running {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        self.stop.cancel();
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the sealer stops")
            .unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Test {
    pub async fn start() -> Test {
        let backends = Backends::start("hooklog-sealer-test").await;
        let body = serde_json::to_vec(&octokit_example("push", |_| true)).unwrap();
        Test {
            backends,
            key: Arc::new(SigningKey::generate("sealer-test.example").unwrap()),
            body,
        }
    }

    pub fn sealer(&self) -> Running {
        self.sealer_with(Self::config())
    }

    /// The sealer's settings in these tests: everything fast.
    pub fn config() -> SealerConfig {
        SealerConfig {
            checkpoint_interval: Duration::from_millis(100),
            batch_size: 128,
            commit_delay: Duration::from_millis(50),
            lock_retry: Duration::from_millis(200),
            retry_delay: Duration::from_millis(200),
        }
    }

    pub fn sealer_with(&self, config: SealerConfig) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(hooklog_sealer::run(
            config,
            self.backends.pool.clone(),
            self.backends.js.clone(),
            Arc::clone(&self.key),
            stop.clone(),
        ));
        Running {
            stop,
            task: Some(task),
        }
    }

    /// Stores deliveries `range` (their ids), as the ingress does: signed with [`SECRET`], with
    /// their body's digest.
    pub async fn deliver(&self, range: Range<u64>) {
        let mut acks = Vec::new();
        for i in range {
            acks.push(self.publish_delivery(i, &self.body, None, None).await);
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }

    /// Stores delivery `i` with `body`, its digest header `digest` (default: the body's) and
    /// its signature by `secret` (default: [`SECRET`]).
    pub async fn deliver_with(
        &self,
        i: u64,
        body: &[u8],
        digest: Option<String>,
        secret: Option<&str>,
    ) {
        self.publish_delivery(i, body, digest, secret)
            .await
            .await
            .unwrap();
    }

    async fn publish_delivery(
        &self,
        i: u64,
        body: &[u8],
        digest: Option<String>,
        secret: Option<&str>,
    ) -> async_nats::jetstream::context::PublishAckFuture {
        publish_delivery(&self.backends.js, i, body, digest, secret).await
    }

    /// Runs the relay until the token is cancelled.
    pub fn relay(&self) -> CancellationToken {
        let stop = CancellationToken::new();
        tokio::spawn(hooklog_relay::run(
            hooklog_relay::RelayConfig::default(),
            self.backends.pool.clone(),
            self.backends.js.clone(),
            stop.clone(),
        ));
        stop
    }

    /// Commits events `range` to the event store (the first event of target `t-<i>`), for the
    /// relay to publish.
    pub async fn store_events(&self, range: Range<u64>) {
        for i in range {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                     event_version, payload, metadata)
                 VALUES ('ConnectorTarget', $1, 1, 'TargetTracked', '1.0', $2::json, '{}')",
            )
            .bind(format!("t-{i}"))
            .bind(format!("{{\"TargetTracked\": {{\"n\": {i}}}}}"))
            .execute(&self.backends.pool)
            .await
            .unwrap();
        }
        hooklog_infra::postgres::wake_outbox(&self.backends.pool)
            .await
            .unwrap();
    }

    /// Publishes events `range` to `HOOKLOG_EVENTS`, as the relay does.
    pub async fn publish_events(&self, range: Range<u64>) {
        for i in range {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("ConnectorTarget:t-{i}:1").as_str());
            headers.insert(streams::event_headers::EVENT_TYPE, "TargetTracked");
            self.backends
                .js
                .publish_with_headers(
                    streams::event_subject("ConnectorTarget", &format!("t-{i}")),
                    headers,
                    format!("{{\"n\":{i}}}").into(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }

    /// `HOOKLOG_EVENTS` recreated without `deny_delete`, as a stream made by hand might be.
    pub async fn events_stream_allowing_deletes(&self) -> stream::Stream {
        let js = &self.backends.js;
        js.delete_stream(streams::EVENTS_STREAM).await.unwrap();
        let mut config = streams::events_stream_config(Duration::from_secs(600));
        config.deny_delete = false;
        js.create_stream(config).await.unwrap()
    }

    /// The leaf hashes of the whole stream behind `log`, read message by message.
    pub async fn leaves(&self, log: Log) -> Vec<Hash> {
        let mut stream = self.backends.js.get_stream(stream_name(log)).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut leaves = Vec::new();
        for sequence in 1..=last {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                break; // a gap: the tree stops before it
            };
            let entry = raw_stream_message(&message).unwrap();
            leaves.push(entry.leaf_hash().unwrap());
        }
        leaves
    }

    /// The latest checkpoint of `log`, opened with the sealer's verifier key.
    pub async fn latest(&self, log: Log) -> Option<Checkpoint> {
        let stream = self.backends.js.get_stream(AUDIT_STREAM).await.unwrap();
        let message = stream
            .get_last_raw_message_by_subject(&audit_checkpoint_subject(log.name()))
            .await
            .ok()?;
        let note = String::from_utf8(message.payload.to_vec()).unwrap();
        Some(
            Checkpoint::open(&note, &self.key.verifier(), &log.origin(self.key.name()))
                .expect("every checkpoint opens under the sealer's key"),
        )
    }

    /// Waits for the checkpoint of `log` at `size`.
    pub async fn wait_checkpoint(&self, log: Log, size: u64) -> Checkpoint {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let latest = self.latest(log).await;
            match &latest {
                Some(checkpoint) if checkpoint.size() == size => return checkpoint.clone(),
                Some(checkpoint) if checkpoint.size() > size => {
                    panic!("a checkpoint of {} past {size}", checkpoint.size())
                }
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint of {} at {size} (latest {latest:?})",
                log.name()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every checkpoint of `log` on `HOOKLOG_AUDIT`, in order.
    pub async fn checkpoints(&self, log: Log) -> Vec<Checkpoint> {
        let mut stream = self.backends.js.get_stream(AUDIT_STREAM).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let subject = audit_checkpoint_subject(log.name());
        let mut all = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            if message.subject.as_str() != subject {
                continue;
            }
            let note = String::from_utf8(message.payload.to_vec()).unwrap();
            all.push(
                Checkpoint::open(&note, &self.key.verifier(), &log.origin(self.key.name()))
                    .unwrap(),
            );
        }
        all
    }
}

/// Stores delivery `i` on `js`'s `GITHUB_DELIVERIES` with `body`, its digest header `digest`
/// (default: the body's) and its signature by `secret` (default: [`SECRET`]).
pub async fn publish_delivery(
    js: &async_nats::jetstream::Context,
    i: u64,
    body: &[u8],
    digest: Option<String>,
    secret: Option<&str>,
) -> async_nats::jetstream::context::PublishAckFuture {
    use hooklog_domain::github::{Signature, WebhookSecret};
    use sha2::Digest as _;
    let id = format!("00000000-0000-4000-8000-{i:012}");
    let digest = digest.unwrap_or_else(|| hex::encode(sha2::Sha256::digest(body)));
    let signature =
        Signature::sign(&WebhookSecret::new(secret.unwrap_or(SECRET)), body).to_string();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(delivery_headers::EVENT, "push");
    headers.insert(delivery_headers::DELIVERY, id.as_str());
    headers.insert(delivery_headers::CONTENT_TYPE, "application/json");
    headers.insert(delivery_headers::BODY_SHA256, digest.as_str());
    headers.insert(delivery_headers::SIGNATURE_256, signature.as_str());
    headers.insert("Nats-Msg-Id", id.as_str());
    js.publish_with_headers(
        streams::delivery_subject("push"),
        headers,
        body.to_vec().into(),
    )
    .await
    .unwrap()
}
