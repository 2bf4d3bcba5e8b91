//! The whole write path through the running binary: signed deliveries in through the ingress,
//! commands through the worker, events out on `HOOKLOG_EVENTS` through the relay, against an
//! external `nats-server` (so `hooklog` can be killed and restarted) and a fresh database.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::EmbeddedNats;
use hooklog_infra::streams::{event_headers, EVENTS_STREAM};
use hooklog_infra::testing::{octokit_example, TcpOutage};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::support::{
    free_addr, fresh_database_url, hooklog, nats_server_bin, run, text, wait_ready, Served,
};

const SECRET: &str = "pipeline-test-secret";
const INSTALLATION: u64 = 77;
const REPOSITORY: u64 = 1296269;
const REPO: &str = "octo/docs";

struct Stack {
    dir: tempfile::TempDir,
    nats: EmbeddedNats,
    js: jetstream::Context,
    db_url: String,
    pool: PgPool,
    ingress: String,
    admin: String,
    http: reqwest::Client,
}

/// One event as the relay published it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Published {
    aggregate: String,
    sequence: u64,
    event_type: String,
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nats = EmbeddedNats::start(&nats_server_bin(), &dir.path().join("nats"))
            .await
            .unwrap();
        let client = hooklog_infra::nats::connect(&nats.url(), "pipeline-test")
            .await
            .unwrap();
        let (db_url, _) = fresh_database_url();
        let pool = hooklog_infra::postgres::connect_and_migrate(&db_url)
            .await
            .unwrap();
        Self {
            dir,
            js: jetstream::new(client),
            nats,
            db_url,
            pool,
            ingress: free_addr(),
            admin: free_addr(),
            http: hooklog_infra::http::client().unwrap(),
        }
    }

    fn env(&self, db_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKLOG_NATS_URL", self.nats.url()),
            ("HOOKLOG_DATABASE_URL", db_url.to_owned()),
            ("HOOKLOG_INGRESS_ADDR", self.ingress.clone()),
            ("HOOKLOG_ADMIN_ADDR", self.admin.clone()),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOOKLOG_LOG", "info".to_owned()),
        ]
    }

    async fn serve(&self, roles: &str) -> Served {
        self.serve_with_db(roles, &self.db_url.clone()).await
    }

    async fn serve_with_db(&self, roles: &str, db_url: &str) -> Served {
        let mut served = Served::start(self.dir.path(), &["--role", roles], &self.env(db_url));
        wait_ready(&self.admin, &mut served).await;
        served
    }

    /// `hooklog targets track` for `branch` of the test repository; the target id.
    fn track(&self, branch: &str) -> String {
        let mut command = hooklog(self.dir.path());
        command.env("HOOKLOG_DATABASE_URL", &self.db_url).args([
            "targets",
            "track",
            "--installation",
            &INSTALLATION.to_string(),
            "--repository-id",
            &REPOSITORY.to_string(),
            "--repository",
            REPO,
            "--branch",
            branch,
        ]);
        let output = run(&mut command);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(printed["status"], "tracked");
        printed["target_id"].as_str().unwrap().to_owned()
    }

    async fn send(&self, event: &str, delivery_id: &str, body: &Value) -> u16 {
        let body = serde_json::to_vec(body).unwrap();
        let signature = Signature::sign(&WebhookSecret::new(SECRET), &body).to_string();
        self.http
            .post(format!(
                "http://{}/v1/webhooks/connectors/github",
                self.ingress
            ))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery_id)
            .header("X-Hub-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn outcomes(&self) -> HashMap<String, String> {
        // The worker's decisions, as `Delivery` events (the outcome read model is the
        // projector's, which these stories do not all run).
        sqlx::query_as::<_, (String, String)>(
            "SELECT json_extract_path_text(payload, event_type, 'delivery_id'), \
               CASE event_type WHEN 'DeliveryProcessed' THEN 'processed' \
                 WHEN 'DeliveryIgnored' THEN 'ignored' ELSE 'dead_letter' END \
             FROM events WHERE aggregate_type = 'Delivery'",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Waits until the worker decided on `count` deliveries and the relay emptied the outbox.
    async fn settled(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let decided = self.outcomes().await.len();
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
                .fetch_one(&self.pool)
                .await
                .unwrap();
            if decided >= count && outbox == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {decided}/{count} decided, {outbox} in the outbox"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every message on `HOOKLOG_EVENTS`, in stream order.
    async fn published(&self) -> Vec<Published> {
        let Ok(mut stream) = self.js.get_stream(EVENTS_STREAM).await else {
            return vec![];
        };
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut all = vec![];
        for seq in 1..=last {
            let message = stream.get_raw_message(seq).await.unwrap();
            let header = |name| message.headers.get(name).unwrap().as_str().to_owned();
            all.push(Published {
                aggregate: format!(
                    "{}/{}",
                    header(event_headers::AGGREGATE_TYPE),
                    header(event_headers::AGGREGATE_ID)
                ),
                sequence: header(event_headers::SEQUENCE).parse().unwrap(),
                event_type: header(event_headers::EVENT_TYPE),
            });
        }
        all
    }

    /// Every row of the event store, as the relay should have published it.
    async fn stored(&self) -> Vec<Published> {
        sqlx::query_as::<_, (String, String, i64, String)>(
            "SELECT aggregate_type, aggregate_id, sequence, event_type FROM events ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, id, seq, event_type)| Published { aggregate: format!("{t}/{id}"), sequence: seq as u64, event_type })
        .collect()
    }

    /// Each stored event is on the stream exactly once, and each aggregate's events are in
    /// sequence order on the stream.
    async fn assert_stream_matches_store(&self) {
        let published = self.published().await;
        let mut sorted = published.clone();
        sorted.sort_by(|a, b| (&a.aggregate, a.sequence).cmp(&(&b.aggregate, b.sequence)));
        assert_eq!(sorted, self.stored().await, "stream and event store differ");
        let mut last: HashMap<&str, u64> = HashMap::new();
        for p in &published {
            let previous = last.insert(&p.aggregate, p.sequence);
            assert!(
                previous.is_none_or(|prev| prev < p.sequence),
                "{} out of order at {}",
                p.aggregate,
                p.sequence
            );
        }
    }
}

fn octokit_push() -> Value {
    octokit_example("push", |x| {
        x["installation"].is_object() && x["ref"] == "refs/heads/master"
    })
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

fn push(branch: &str, after: u64) -> Value {
    let mut body = octokit_push();
    body["ref"] = json!(format!("refs/heads/{branch}"));
    body["before"] = json!(sha(0xfff));
    body["after"] = json!(sha(after));
    body["installation"]["id"] = json!(INSTALLATION);
    body["repository"]["id"] = json!(REPOSITORY);
    body["repository"]["full_name"] = json!(REPO);
    body
}

#[tokio::test]
async fn a_signed_push_yields_one_sync_requested_however_often_it_and_its_head_arrive() {
    let stack = Stack::start().await;
    let target = stack.track("main");
    let _served = stack.serve("ingress,admin,worker,relay").await;

    let body = push("main", 1);
    let same_delivery = (0..100).map(|_| stack.send("push", "push-1", &body));
    let stack_ref = &stack;
    let same_head = (0..100).map(|i| async move {
        let copy = format!("push-1-copy-{i}");
        stack_ref.send("push", &copy, &push("main", 1)).await
    });
    let statuses: Vec<u16> = futures::future::join_all(same_delivery).await;
    let copies: Vec<u16> = futures::future::join_all(same_head).await;
    assert!(
        statuses.iter().chain(&copies).all(|s| *s == 202),
        "{statuses:?} {copies:?}"
    );
    assert_eq!(
        stack.send("push", "untracked", &push("feature", 2)).await,
        202
    );

    stack.settled(102).await;
    let outcomes = stack.outcomes().await;
    assert_eq!(
        outcomes.get("untracked").map(String::as_str),
        Some("ignored")
    );
    assert_eq!(
        outcomes.get("push-1").map(String::as_str),
        Some("processed")
    );
    let published = stack.published().await;
    let requested: Vec<_> = published
        .iter()
        .filter(|p| p.event_type == "SyncRequested")
        .collect();
    assert_eq!(requested.len(), 1, "{published:?}");
    assert_eq!(requested[0].aggregate, format!("ConnectorTarget/{target}"));
    stack.assert_stream_matches_store().await;
}

#[tokio::test]
async fn events_committed_before_a_sigkill_reach_the_stream_exactly_once_after_restart() {
    let stack = Stack::start().await;
    for branch in ["main", "dev", "docs"] {
        stack.track(branch);
    }
    // Without the relay: events commit into the outbox and stay there.
    let mut served = stack.serve("ingress,admin,worker").await;
    for (i, branch) in ["main", "dev", "docs"].iter().enumerate() {
        for n in 0..5u64 {
            assert_eq!(
                stack
                    .send("push", &format!("before-{i}-{n}"), &push(branch, 10 + n))
                    .await,
                202
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.outcomes().await.len() < 15 {
        assert!(
            Instant::now() < deadline,
            "worker did not decide within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert!(outbox > 0);
    assert!(stack.published().await.is_empty());
    kill(Pid::from_raw(served.child.id() as i32), Signal::SIGKILL).unwrap();
    served.wait_exit();

    // Restarted with every role; then killed again while it relays fresh events.
    let mut served = stack.serve("ingress,admin,worker,relay").await;
    for (i, branch) in ["main", "dev", "docs"].iter().enumerate() {
        for n in 0..5u64 {
            assert_eq!(
                stack
                    .send("push", &format!("during-{i}-{n}"), &push(branch, 20 + n))
                    .await,
                202
            );
        }
    }
    kill(Pid::from_raw(served.child.id() as i32), Signal::SIGKILL).unwrap();
    served.wait_exit();
    let _served = stack.serve("ingress,admin,worker,relay").await;
    stack.settled(30).await;
    stack.assert_stream_matches_store().await;
    assert!(
        stack.stored().await.len() >= 3 + 3,
        "tracked and requested at least"
    );
}

#[tokio::test]
async fn deliveries_are_accepted_while_postgres_is_down_and_processed_when_it_returns() {
    let stack = Stack::start().await;
    stack.track("main");
    let mut outage = TcpOutage::start("127.0.0.1:5432").await;
    let db_name = stack.db_url.rsplit('/').next().unwrap().to_owned();
    let proxied = format!("postgres://postgres@{}/{db_name}", outage.addr());
    let mut served = stack
        .serve_with_db("ingress,admin,worker,relay", &proxied)
        .await;

    outage.cut();
    for n in 0..20u64 {
        assert_eq!(
            stack
                .send("push", &format!("outage-{n}"), &push("main", 100 + n))
                .await,
            202
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        stack.outcomes().await.is_empty(),
        "nothing can be decided while PostgreSQL is away"
    );
    outage.restore().await;
    stack.settled(20).await;
    let outcomes = stack.outcomes().await;
    assert!(
        (0..20)
            .all(|n| outcomes.get(&format!("outage-{n}")).map(String::as_str) == Some("processed")),
        "{outcomes:?}"
    );
    let published = stack.published().await;
    assert_eq!(
        published
            .iter()
            .filter(|p| p.event_type == "SyncRequested")
            .count(),
        1
    );
    assert_eq!(
        published
            .iter()
            .filter(|p| p.event_type == "SyncQueued")
            .count(),
        19
    );
    stack.assert_stream_matches_store().await;
    // Stopped first, so every line it logged is written out (the proxy keeps running meanwhile:
    // hooklog closes its PostgreSQL connections through it).
    assert!(
        served.terminate_async().await.success(),
        "{}",
        served.logs()
    );
    assert!(!served.logs().contains(SECRET));
}

#[tokio::test]
async fn two_worker_processes_share_the_deliveries_and_handle_each_once() {
    let stack = Stack::start().await;
    for t in 0..40 {
        stack.track(&format!("b{t}"));
    }
    let front = stack.serve("ingress,admin,relay").await;
    let workers: Vec<Served> = ["w1", "w2"]
        .iter()
        .map(|name| {
            let dir = stack.dir.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            Served::start(&dir, &["--role", "worker"], &stack.env(&stack.db_url))
        })
        .collect();
    for worker in &workers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !worker
            .logs()
            .lines()
            .any(|l| l.contains(r#""message":"consuming""#) && l.contains("hooklog-worker"))
        {
            assert!(
                Instant::now() < deadline,
                "worker did not start:\n{}",
                worker.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let sends = (0..40u64).map(|t| {
        let stack = &stack;
        async move {
            stack
                .send(
                    "push",
                    &format!("shared-{t}"),
                    &push(&format!("b{t}"), 500 + t),
                )
                .await
        }
    });
    assert!(futures::future::join_all(sends)
        .await
        .iter()
        .all(|s| *s == 202));
    stack.settled(40).await;

    // Each delivery was processed by exactly one of the two processes, and both took part.
    let processed = |served: &Served| -> Vec<String> {
        served
            .logs()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == "delivery processed")
            .map(|entry| entry["delivery_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // `serve` writes info lines in batches a few milliseconds apart: wait for all 40.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (first, second) = loop {
        let (first, second) = (processed(&workers[0]), processed(&workers[1]));
        if first.len() + second.len() >= 40 || Instant::now() >= deadline {
            break (first, second);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{} / {}",
        first.len(),
        second.len()
    );
    let mut all: Vec<String> = first.into_iter().chain(second).collect();
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (40, 40),
        "a delivery was processed twice"
    );
    let published = stack.published().await;
    assert_eq!(
        published
            .iter()
            .filter(|p| p.event_type == "SyncRequested")
            .count(),
        40
    );
    stack.assert_stream_matches_store().await;
    drop(front);
}
