//! Load for `services/hooklog/bench/burst.sh`: a burst of `--deliveries` signed push deliveries
//! (a real payload, a fresh delivery id each) over `--connections` concurrent keep-alive
//! connections, as fast as the ingress answers. Then waits until the worker has decided every
//! delivery the ingress acknowledged.
//!
//! Prints the answers by status, their p50/p99/max latency, whether every 503 carried
//! `Retry-After`, how many answers took longer than GitHub's 10 s, what `GITHUB_DELIVERIES`
//! holds and how many deliveries were decided. Exits 1 when an acknowledged delivery is not
//! stored or not decided, when an answer is neither 2xx nor 503 with `Retry-After`, or when an
//! answer took 10 s or more.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hooklog_domain::github::{Signature, WebhookSecret};
use tokio::task::JoinSet;

fn arg(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| panic!("missing {name}"))
}

#[derive(Default)]
struct Answers {
    by_status: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    unavailable_without_retry_after: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let url = arg("--url");
    let secret = WebhookSecret::new(arg("--secret"));
    let payload = Arc::new(std::fs::read(arg("--payload")).expect("payload"));
    let deliveries: u64 = arg("--deliveries").parse().expect("--deliveries");
    let connections: usize = arg("--connections").parse().expect("--connections");
    let pool = sqlx::PgPool::connect(&arg("--database-url"))
        .await
        .expect("PostgreSQL");
    let js =
        async_nats::jetstream::new(async_nats::connect(arg("--nats-url")).await.expect("NATS"));
    let signature = Signature::sign(&secret, &payload).to_string();
    let client = hooklog_infra::http::client_builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let next = Arc::new(AtomicU64::new(0));
    let answers = Arc::new(Mutex::new(Answers::default()));
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for _ in 0..connections {
        let (client, url, payload, signature) = (
            client.clone(),
            url.clone(),
            payload.clone(),
            signature.clone(),
        );
        let (next, answers) = (next.clone(), answers.clone());
        senders.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < deliveries {
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("X-GitHub-Event", "push")
                    .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
                    .header("X-Hub-Signature-256", &signature)
                    .header("Content-Type", "application/json")
                    .body(payload.as_ref().clone())
                    .send()
                    .await;
                let latency = sent.elapsed();
                let mut answers = answers.lock().unwrap();
                let status = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        if status == 503 && !response.headers().contains_key("retry-after") {
                            answers.unavailable_without_retry_after += 1;
                        }
                        status.to_string()
                    }
                    Err(err) if err.is_timeout() => "timeout".to_owned(),
                    Err(_) => "error".to_owned(),
                };
                *answers.by_status.entry(status).or_default() += 1;
                answers.latencies.push(latency);
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let sent_in = started.elapsed();
    let mut answers = Arc::try_unwrap(answers).ok().unwrap().into_inner().unwrap();
    answers.latencies.sort();
    let acknowledged: u64 = answers
        .by_status
        .iter()
        .filter(|(s, _)| s.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    let slow = answers
        .latencies
        .iter()
        .filter(|l| **l >= Duration::from_secs(10))
        .count();
    println!(
        "{deliveries} deliveries over {connections} connections in {:.1} s ({:.0}/s): {}",
        sent_in.as_secs_f64(),
        deliveries as f64 / sent_in.as_secs_f64(),
        answers
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "latency p50 {}, p99 {}, max {}; answers after 10 s: {slow}; 503 without Retry-After: {}",
        ms(percentile(&answers.latencies, 50.0)),
        ms(percentile(&answers.latencies, 99.0)),
        ms(answers.latencies.last().copied().unwrap_or_default()),
        answers.unavailable_without_retry_after
    );

    let mut stream = js
        .get_stream(hooklog_infra::streams::DELIVERIES_STREAM)
        .await
        .expect("stream");
    let stored = stream.info().await.expect("info").state.messages;
    let decided = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_type = 'Delivery'",
        )
        .fetch_one(&pool)
        .await
        .expect("count decisions") as u64
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut now_decided = decided().await;
    while now_decided < stored && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        now_decided = decided().await;
    }
    println!(
        "GITHUB_DELIVERIES holds {stored}, acknowledged {acknowledged}; decided {now_decided}, the last {:.1} s after the burst ended",
        (started.elapsed() - sent_in).as_secs_f64()
    );
    let mut failed = false;
    if stored != acknowledged || now_decided != stored {
        eprintln!("lost: acknowledged {acknowledged}, stored {stored}, decided {now_decided}");
        failed = true;
    }
    let other: u64 = answers
        .by_status
        .iter()
        .filter(|(s, _)| !s.starts_with('2') && s.as_str() != "503")
        .map(|(_, n)| n)
        .sum();
    if other > 0 || slow > 0 || answers.unavailable_without_retry_after > 0 {
        eprintln!("answers other than 2xx or 503 with Retry-After, or after 10 s");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
