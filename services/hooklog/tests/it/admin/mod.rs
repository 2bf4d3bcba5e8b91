//! The admin API as an operator meets it: `hooklog serve` with every role, an external
//! `nats-server` and a fresh database; signed GitHub deliveries (the vendored octokit examples)
//! go in through the ingress and the rows they produce come out of `/v1/admin`. Reads use the
//! read-only token, commands the read-write one. Nothing waits a fixed time: reads pass
//! `min_position` where a position is known and otherwise poll until a deadline.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::EmbeddedNats;
use hooklog_infra::streams::{DELIVERIES_STREAM, EVENTS_STREAM};
use hooklog_infra::testing::octokit_example;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::support::{
    free_addr, fresh_database_url, hooklog, nats_server_bin, run, text, wait_ready, Served,
};

const SECRET: &str = "admin-test-secret";
const WRITE_TOKEN: &str = "admin-test-write-token";
const READ_TOKEN: &str = "admin-test-read-token";
/// The repository the octokit `installation.created` example grants (and its push example names).
const REPOSITORY: u64 = 186853002;
const REPO: &str = "Codertocat/Hello-World";
/// Short, so a late redelivery can be stored again within the test (the default is an hour).
const DUPLICATE_WINDOW: &str = "3s";
/// How long a read may take to show what a delivery or command caused.
const WAIT: Duration = Duration::from_secs(30);

/// `hooklog serve` (all roles) with its own `nats-server` and database.
struct Stack {
    dir: tempfile::TempDir,
    nats: EmbeddedNats,
    js: jetstream::Context,
    db_url: String,
    pool: PgPool,
    ingress: String,
    admin: String,
    http: reqwest::Client,
    served: Served,
}

/// Where both streams stood once everything sent so far was handled.
#[derive(Debug, Clone, Copy)]
struct Settled {
    /// `HOOKLOG_EVENTS`: `min_position` for the connector read model.
    events: u64,
    /// `GITHUB_DELIVERIES`: `min_position` for the deliveries read model.
    deliveries: u64,
}

/// Every role but the syncer: sync runs stay `queued`, so the read-side stories see exactly what
/// the deliveries and commands caused (`sync.rs` runs the syncer).
const READ_SIDE_ROLES: &str = "ingress,admin,worker,relay,projector,process-manager";

impl Stack {
    async fn start() -> Self {
        Self::start_with(&["--role", READ_SIDE_ROLES], &[]).await
    }

    /// `hooklog serve args` with the stack's settings and `extra` ones.
    async fn start_with(args: &[&str], extra: &[(&'static str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nats = EmbeddedNats::start(&nats_server_bin(), &dir.path().join("nats"))
            .await
            .unwrap();
        let client = hooklog_infra::nats::connect(&nats.url(), "admin-test")
            .await
            .unwrap();
        let (db_url, _) = fresh_database_url();
        let (ingress, admin) = (free_addr(), free_addr());
        let mut env = Self::env_for(&nats.url(), &db_url, &ingress, &admin);
        env.extend_from_slice(extra);
        let mut served = Served::start(dir.path(), args, &env);
        wait_ready(&admin, &mut served).await;
        // `serve` created and migrated the database; the pool only checks quiescence.
        let pool = PgPool::connect(&db_url).await.unwrap();
        Self {
            dir,
            js: jetstream::new(client),
            nats,
            db_url,
            pool,
            ingress,
            admin,
            http: hooklog_infra::http::client().unwrap(),
            served,
        }
    }

    fn env_for(
        nats: &str,
        db_url: &str,
        ingress: &str,
        admin: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKLOG_NATS_URL", nats.to_owned()),
            ("HOOKLOG_DATABASE_URL", db_url.to_owned()),
            ("HOOKLOG_INGRESS_ADDR", ingress.to_owned()),
            ("HOOKLOG_ADMIN_ADDR", admin.to_owned()),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOOKLOG_ADMIN_TOKEN", WRITE_TOKEN.to_owned()),
            ("HOOKLOG_ADMIN_READ_TOKEN", READ_TOKEN.to_owned()),
            (
                "HOOKLOG_DELIVERIES_DUPLICATE_WINDOW",
                DUPLICATE_WINDOW.to_owned(),
            ),
            ("HOOKLOG_LOG", "info".to_owned()),
        ]
    }

    /// Posts a signed delivery to the ingress; the ingress's answer (`delivery_id`,
    /// `stream_seq`, `duplicate`), which must be a 202.
    async fn send(&self, event: &str, delivery_id: &str, body: &Value) -> Value {
        let body = serde_json::to_vec(body).unwrap();
        let signature = Signature::sign(&WebhookSecret::new(SECRET), &body).to_string();
        let response = self
            .http
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
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{event} {delivery_id}: {answer}");
        assert_eq!(answer["delivery_id"], delivery_id, "{answer}");
        answer
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.admin))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A read with the read-only token.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(READ_TOKEN, Method::GET, path, None).await
    }

    /// A read that must answer 200 at once.
    async fn read(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A command with the read-write token; its 202 answer, whose events reached the stream.
    async fn command(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(WRITE_TOKEN, method.clone(), path, Some(body))
            .await;
        assert_eq!(status, 202, "{method} {path}: {answer}");
        assert_eq!(answer["published"], true, "{answer}");
        assert!(answer["position"].is_u64(), "{answer}");
        answer
    }

    /// Reads `path` until it answers 200 with a body `done` accepts; that body.
    async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} did not get there within {WAIT:?}; last answer {status}: {body}\n{}",
                self.served.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the worker handled every stored delivery and the relay published every
    /// committed event; where both streams then stand.
    async fn settled(&self) -> Settled {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut deliveries = self.js.get_stream(DELIVERIES_STREAM).await.unwrap();
            let stored = deliveries.info().await.unwrap().state.last_sequence;
            let worker = deliveries.consumer_info("hooklog-worker").await.unwrap();
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
                .fetch_one(&self.pool)
                .await
                .unwrap();
            // The process manager's cascades count too: it acks an event once its steps
            // committed, and the relay then publishes what they committed.
            let mut events = self.js.get_stream(EVENTS_STREAM).await.unwrap();
            let manager_idle = match events.consumer_info("hooklog-process-manager").await {
                Ok(manager) => manager.num_pending == 0 && manager.num_ack_pending == 0,
                Err(_) => true,
            };
            if worker.delivered.stream_sequence >= stored
                && worker.num_pending == 0
                && worker.num_ack_pending == 0
                && outbox == 0
                && manager_idle
            {
                let events = events.info().await.unwrap().state.last_sequence;
                return Settled {
                    events,
                    deliveries: stored,
                };
            }
            assert!(
                Instant::now() < deadline,
                "not settled within {WAIT:?}: {} pending, {} unacked, {outbox} in the outbox",
                worker.num_pending,
                worker.num_ack_pending
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `hooklog projections rebuild` with the service's settings; exit status and the JSON
    /// reports it printed.
    fn rebuild(&self, extra: &[&str]) -> (std::process::ExitStatus, Vec<Value>, String) {
        let mut command = hooklog(self.dir.path());
        command
            .envs(Self::env_for(
                &self.nats.url(),
                &self.db_url,
                &self.ingress,
                &self.admin,
            ))
            .args(["projections", "rebuild"])
            .args(extra);
        let output = run(&mut command);
        let reports = text(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect();
        (output.status, reports, text(&output.stderr))
    }
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// GitHub's `installation` example for `action`, moved to `installation`.
fn installation_event(action: &str, installation: u64) -> Value {
    let mut body = octokit_example("installation", |x| x["action"] == action);
    body["installation"]["id"] = json!(installation);
    body
}

/// GitHub's push example (it names `REPO`), moved to `installation` and `branch`.
fn push(installation: u64, branch: &str, after: u64) -> Value {
    let mut body = octokit_example("push", |x| {
        x["installation"].is_object() && x["ref"] == "refs/heads/master"
    });
    assert_eq!(body["repository"]["id"], REPOSITORY);
    body["ref"] = json!(format!("refs/heads/{branch}"));
    body["before"] = json!(sha(0));
    body["after"] = json!(sha(after));
    body["installation"]["id"] = json!(installation);
    body
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().expect("a page")
}

/// Connects `installation` (account `Codertocat`) through the API.
async fn connect(stack: &Stack, installation: u64) {
    stack
        .command(
            Method::POST,
            "/v1/admin/instances",
            json!({ "installation_id": installation, "account": "Codertocat" }),
        )
        .await;
}

/// Tracks `branch` of `REPO` through the API; the target id and the command's position.
async fn track(stack: &Stack, installation: u64, branch: &str) -> (String, u64) {
    track_with(stack, installation, branch, json!({})).await
}

/// `track`, with `extra` fields in the body (e.g. `source`).
async fn track_with(stack: &Stack, installation: u64, branch: &str, extra: Value) -> (String, u64) {
    let mut body = json!({
        "installation_id": installation,
        "repository_id": REPOSITORY,
        "repository": REPO,
        "branch": branch,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let answer = stack.command(Method::POST, "/v1/admin/targets", body).await;
    assert_eq!(
        answer["instance_id"],
        format!("github-installation-{installation}")
    );
    (
        answer["target_id"].as_str().unwrap().to_owned(),
        answer["position"].as_u64().unwrap(),
    )
}

mod cascade;
mod converge;
mod dashboard;
mod stories;
mod sync;
