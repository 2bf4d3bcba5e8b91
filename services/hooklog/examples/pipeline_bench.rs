//! Load for `bench/pipeline.sh`: tracks `--targets` branches, sends `--deliveries` signed push
//! deliveries (a distinct head each, spread over the targets) to a running `hooklog serve`, and
//! waits until every decision is on `HOOKLOG_EVENTS`. Prints the ingress rate, the worker's
//! commands/s (from the outcomes it recorded) and the time from the last 202 to the last event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::connector_target::{TargetCommand, TargetOwner};
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_domain::ids::{
    Branch, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::CommandBus;
use serde_json::{json, Value};

const INSTALLATION: u64 = 9001;
const REPOSITORY: u64 = 1296269;

fn arg(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| panic!("missing {name}"))
}

#[tokio::main]
async fn main() {
    let (url, secret, db, nats) = (
        arg("--url"),
        arg("--secret"),
        arg("--database-url"),
        arg("--nats-url"),
    );
    let targets: u64 = arg("--targets").parse().unwrap();
    let deliveries: u64 = arg("--deliveries").parse().unwrap();
    let concurrency: usize = arg("--concurrency").parse().unwrap();
    let template: Value =
        serde_json::from_slice(&std::fs::read(arg("--payload")).unwrap()).unwrap();

    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("bench", "bench");
    let installation = InstallationId(INSTALLATION);
    let repository = RepositoryName::parse("octo/bench").unwrap();
    for t in 0..targets {
        let branch = Branch::parse(&format!("bench-{t}")).unwrap();
        let attach = InstanceCommand::AttachTarget {
            installation_id: installation,
            repository_id: RepositoryId(REPOSITORY),
            repository: repository.clone(),
            branch: branch.clone(),
        };
        bus.instance(InstanceId(installation), attach, &meta)
            .await
            .unwrap();
        let track = TargetCommand::Track {
            owner: TargetOwner::Installation(installation),
            repository_id: RepositoryId(REPOSITORY),
            repository: repository.clone(),
            branch: branch.clone(),
            auto_sync: true,
            source: None,
            path_filters: Default::default(),
        };
        bus.target(
            TargetId::for_branch(installation, RepositoryId(REPOSITORY), &branch),
            track,
            &meta,
        )
        .await
        .unwrap();
    }
    let client = async_nats::connect(&nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut events = js.get_stream("HOOKLOG_EVENTS").await.unwrap();
    let baseline = loop {
        // Wait for the tracking events to be relayed, so they are not counted as load.
        let n = events.info().await.unwrap().state.messages;
        if n >= 2 * targets {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let secret = WebhookSecret::new(&secret);
    let bodies: Vec<(String, Vec<u8>, String)> = (0..deliveries)
        .map(|i| {
            let mut body = template.clone();
            body["ref"] = json!(format!("refs/heads/bench-{}", i % targets));
            body["before"] = json!(format!("{:040x}", 0xfffff_u64));
            body["after"] = json!(format!("{:040x}", i + 1));
            body["installation"] = json!({ "id": INSTALLATION });
            body["repository"]["id"] = json!(REPOSITORY);
            body["repository"]["full_name"] = json!("octo/bench");
            let bytes = serde_json::to_vec(&body).unwrap();
            let signature = Signature::sign(&secret, &bytes).to_string();
            (format!("bench-{i}"), bytes, signature)
        })
        .collect();

    let http = hooklog_infra::http::client().unwrap();
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(bodies)
        .map(|(id, body, signature)| {
            let request = http
                .post(&url)
                .header("X-GitHub-Event", "push")
                .header("X-GitHub-Delivery", id)
                .header("X-Hub-Signature-256", signature)
                .header("Content-Type", "application/json")
                .body(body);
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let last_202 = Instant::now();
    let accepted = statuses.iter().filter(|s| **s == 202).count();

    // Each delivery makes two events: its decision (`DeliveryProcessed`) and its command's.
    let expected = baseline + 2 * deliveries;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut published = baseline;
    while published < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        published = events.info().await.unwrap().state.messages;
    }
    let last_event = Instant::now();
    // The process manager reads every target event (and acts on none here): caught up when its
    // durable consumer has nothing pending or unacked.
    let mut manager_caught_up = None;
    while Instant::now() < deadline {
        let info = events.consumer_info("hooklog-process-manager").await;
        if info.is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0) {
            manager_caught_up = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (decided, span): (i64, f64) = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM max(at) - min(at))::float8, 0) \
         FROM (SELECT (payload->'DeliveryProcessed'->>'at')::timestamptz AS at FROM events \
               WHERE event_type = 'DeliveryProcessed') d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let retried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Delivery' \
             AND (json_extract_path_text(payload, event_type, 'attempts'))::int > 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let requested: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SyncRequested'")
            .fetch_one(&pool)
            .await
            .unwrap();

    let send_secs = (last_202 - started).as_secs_f64();
    println!("deliveries: {deliveries} to {targets} targets, {concurrency} concurrent, {accepted} answered 202");
    println!(
        "ingress: {:.0} deliveries/s ({send_secs:.2} s to the last 202)",
        deliveries as f64 / send_secs
    );
    println!(
        "worker: {decided} deliveries processed in {span:.2} s = {:.0} commands/s",
        decided as f64 / span.max(0.001)
    );
    println!(
        "relay: {} of {} events on HOOKLOG_EVENTS; last one {:.0} ms after the last 202",
        published - baseline,
        2 * deliveries,
        (last_event - last_202).as_secs_f64() * 1000.0
    );
    match manager_caught_up {
        Some(at) => println!(
            "process manager: caught up {:.0} ms after the last 202",
            (at - last_202).as_secs_f64() * 1000.0
        ),
        None => println!("process manager: not caught up within 600 s"),
    }
    println!("deliveries handed to the worker more than once (nak after a conflict or an outage): {retried}");
    println!("SyncRequested: {requested} (one per target; later heads queue as SyncQueued while it is in flight)");
}
