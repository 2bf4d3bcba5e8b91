//! Load for `bench/audit.sh`: stores `--deliveries` push deliveries on `GITHUB_DELIVERIES` the
//! way the ingress does (same headers, the same 7 KB body) and as many small events on
//! `HOOKLOG_EVENTS`, then starts the sealer on the
//! untouched streams and times it until its trees hold every one (committed in PostgreSQL) and
//! until the checkpoint of that size is on `HOOKLOG_AUDIT`. Prints leaves/s and the CPU this
//! process spent sealing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hooklog_audit::{Log, SigningKey};
use hooklog_infra::streams::{self, delivery_headers};
use hooklog_sealer::{store, SealerConfig};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

fn arg(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| panic!("missing {name}"))
}

/// CPU seconds this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::main]
async fn main() {
    let deliveries: u64 = arg("--deliveries").parse().unwrap();
    let body = bytes::Bytes::from(std::fs::read(arg("--payload")).unwrap());
    let pool = hooklog_infra::postgres::connect_and_migrate(&arg("--database-url"))
        .await
        .unwrap();
    let client = async_nats::connect(arg("--nats-url")).await.unwrap();
    let js = async_nats::jetstream::new(client);
    streams::ensure_deliveries_stream(&js, Duration::from_secs(3600))
        .await
        .unwrap();
    streams::ensure_events_stream(&js, Duration::from_secs(600))
        .await
        .unwrap();
    streams::ensure_audit_stream(&js).await.unwrap();

    let digest = hex::encode(Sha256::digest(&body));
    let started = Instant::now();
    futures::stream::iter(0..deliveries)
        .map(|i| {
            let (js, body, digest) = (js.clone(), body.clone(), digest.clone());
            async move {
                let id = format!("5e1a0c2b-0000-4000-8000-{i:012}");
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(delivery_headers::EVENT, "push");
                headers.insert(delivery_headers::DELIVERY, id.as_str());
                headers.insert(delivery_headers::HOOK_ID, "123456789");
                headers.insert(delivery_headers::TARGET_TYPE, "integration");
                headers.insert(delivery_headers::TARGET_ID, "9001");
                headers.insert(
                    delivery_headers::SIGNATURE_256,
                    format!("sha256={digest}").as_str(),
                );
                headers.insert(delivery_headers::CONTENT_TYPE, "application/json");
                headers.insert(delivery_headers::RECEIVED_AT, "2026-12-01T12:00:00.000000Z");
                headers.insert(delivery_headers::SECRET_ID, "current");
                headers.insert(delivery_headers::BODY_SHA256, digest.as_str());
                headers.insert("Nats-Msg-Id", format!("123456789:{id}").as_str());
                js.publish_with_headers(streams::delivery_subject("push"), headers, body)
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(256)
        .collect::<()>()
        .await;
    let stored = started.elapsed();
    println!(
        "stored {deliveries} deliveries of {} bytes in {:.1} s ({:.0}/s)",
        body.len(),
        stored.as_secs_f64(),
        deliveries as f64 / stored.as_secs_f64()
    );
    // As many events as the relay would publish for them, a small JSON payload each.
    futures::stream::iter(0..deliveries)
        .map(|i| {
            let js = js.clone();
            async move {
                let id = format!("5e1a0c2b-0000-4000-8000-{i:012}");
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(streams::event_headers::AGGREGATE_TYPE, "Delivery");
                headers.insert(streams::event_headers::AGGREGATE_ID, id.as_str());
                headers.insert(streams::event_headers::SEQUENCE, "1");
                headers.insert(streams::event_headers::EVENT_TYPE, "DeliveryProcessed");
                headers.insert(streams::event_headers::EVENT_VERSION, "1.0");
                headers.insert("Nats-Msg-Id", streams::event_msg_id("Delivery", &id, 1).as_str());
                let payload = format!(
                    "{{\"DeliveryProcessed\":{{\"delivery_id\":\"{id}\",\"event\":\"push\",\"command\":\"RecordPush\",\"at\":\"2026-12-01T12:00:00Z\"}}}}"
                );
                js.publish_with_headers(
                    streams::event_subject("Delivery", &id),
                    headers,
                    payload.into(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        })
        .buffer_unordered(256)
        .collect::<()>()
        .await;
    println!("stored {deliveries} events of about 200 bytes");

    let key = Arc::new(SigningKey::generate("bench").unwrap());
    let stop = CancellationToken::new();
    let config = SealerConfig {
        checkpoint_interval: Duration::from_secs(1),
        ..SealerConfig::default()
    };
    let cpu = cpu_seconds();
    let started = Instant::now();
    let sealer = tokio::spawn(hooklog_sealer::run(
        config,
        pool.clone(),
        js.clone(),
        Arc::clone(&key),
        stop.clone(),
    ));
    let mut sealed = [None, None];
    while sealed.iter().any(Option::is_none) {
        for (i, log) in [Log::Deliveries, Log::Events].into_iter().enumerate() {
            if sealed[i].is_none() && store::tree_size(&pool, log).await.unwrap() >= deliveries {
                sealed[i] = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_seconds() - cpu;
    let [Some(deliveries_sealed), Some(events_sealed)] = sealed else {
        unreachable!()
    };
    loop {
        let latest = hooklog_sealer::latest_checkpoint(&js, Log::Deliveries, &key)
            .await
            .unwrap();
        if latest.is_some_and(|signed| signed.size == deliveries) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signed = started.elapsed();
    let total = 2 * deliveries;
    let both = deliveries_sealed.max(events_sealed).as_secs_f64();
    println!(
        "sealed both logs at once: deliveries {deliveries} leaves in {:.2} s, events {deliveries} in {:.2} s; {:.0} leaves/s together",
        deliveries_sealed.as_secs_f64(),
        events_sealed.as_secs_f64(),
        total as f64 / both
    );
    println!(
        "checkpoint of {deliveries} deliveries signed {:.2} s after the start",
        signed.as_secs_f64()
    );
    println!(
        "sealer CPU: {cpu:.2} s ({:.1} µs per leaf)",
        cpu * 1e6 / total as f64
    );
    stop.cancel();
    let _ = sealer.await;
}
