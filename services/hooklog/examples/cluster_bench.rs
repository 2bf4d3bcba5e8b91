//! Load for `services/hooklog/bench/cluster.sh`: signed push deliveries at a steady `--rate` to
//! an ingress whose streams have three replicas on a three-node JetStream cluster; after
//! `--kill-after` seconds the node leading `GITHUB_DELIVERIES` is killed (SIGKILL).
//!
//! Prints what the deliveries were answered before, during and after the kill, how long 503s
//! lasted against how long the stream took to elect a new leader, and whether every delivery
//! answered 2xx is on the surviving nodes. Exits 1 when an acknowledged delivery is missing or an
//! answer is neither 2xx nor 503.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM};
use tokio::task::JoinSet;

fn arg(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| panic!("missing {name}"))
}

/// Seconds from the start at which it was sent, delivery id, status, latency.
type Answer = (f64, String, String, Duration);

struct Node {
    name: String,
    pid: u32,
    url: String,
}

/// The name of the server leading `GITHUB_DELIVERIES`, as the cluster reports it.
async fn leader(js: &async_nats::jetstream::Context) -> Option<String> {
    let stream = tokio::time::timeout(Duration::from_secs(2), js.get_stream(DELIVERIES_STREAM))
        .await
        .ok()?
        .ok()?;
    stream.cached_info().cluster.clone().and_then(|c| c.leader)
}

#[tokio::main]
async fn main() {
    let url = arg("--url");
    let secret = WebhookSecret::new(arg("--secret"));
    let payload = Arc::new(std::fs::read(arg("--payload")).expect("payload"));
    let rate: u32 = arg("--rate").parse().expect("--rate");
    let seconds: u64 = arg("--seconds").parse().expect("--seconds");
    let kill_after: u64 = arg("--kill-after").parse().expect("--kill-after");
    let nodes: Vec<Node> = arg("--nodes")
        .split(',')
        .map(|node| {
            let mut parts = node.splitn(3, '=');
            Node {
                name: parts.next().expect("name").to_owned(),
                pid: parts.next().expect("pid").parse().expect("pid"),
                url: parts.next().expect("url").to_owned(),
            }
        })
        .collect();
    let all_urls = nodes
        .iter()
        .map(|n| n.url.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let js = async_nats::jetstream::new(
        hooklog_infra::nats::connect(&all_urls, "cluster-bench")
            .await
            .expect("NATS cluster"),
    );
    let signature_of = |body: &[u8]| Signature::sign(&secret, body).to_string();
    let signature = signature_of(&payload);
    let client = hooklog_infra::http::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut senders = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    let kill_at = started + Duration::from_secs(kill_after);
    let mut killed: Option<(String, Instant)> = None;
    let mut elected: Option<Duration> = None;
    while Instant::now() < until {
        tick.tick().await;
        if killed.is_none() && Instant::now() >= kill_at {
            let mut name = None;
            for _ in 0..20 {
                name = leader(&js).await;
                if name.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let name = name.expect("a leader of GITHUB_DELIVERIES before the kill");
            let node = nodes
                .iter()
                .find(|n| n.name == name)
                .expect("the leader is one of --nodes");
            let status = std::process::Command::new("kill")
                .args(["-9", &node.pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill -9 {}", node.pid);
            println!(
                "killed {name} (pid {}), the leader of {DELIVERIES_STREAM}, at {:.1} s",
                node.pid,
                started.elapsed().as_secs_f64()
            );
            killed = Some((name, Instant::now()));
            // Asked through a node that is still up, so the answer does not wait on a reconnect.
            let (killed_name, since) = killed.clone().unwrap();
            let survivor = nodes
                .iter()
                .find(|n| n.name != killed_name)
                .expect("three nodes");
            let js = async_nats::jetstream::new(
                hooklog_infra::nats::connect(&survivor.url, "cluster-bench-leader")
                    .await
                    .expect("a surviving node"),
            );
            senders.spawn(async move {
                loop {
                    if let Some(new) = leader(&js).await {
                        if new != killed_name {
                            return Some((new, since.elapsed()));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
        let (client, url, payload, signature, answers) = (
            client.clone(),
            url.clone(),
            payload.clone(),
            signature.clone(),
            answers.clone(),
        );
        senders.spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let sent = Instant::now();
            let answer = client
                .post(&url)
                .header("X-GitHub-Event", "push")
                .header("X-GitHub-Delivery", &id)
                .header("X-Hub-Signature-256", signature)
                .header("Content-Type", "application/json")
                .body(payload.as_ref().clone())
                .send()
                .await;
            let status = match answer {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) if e.is_timeout() => "timeout".to_owned(),
                Err(_) => "error".to_owned(),
            };
            let at = (sent - started).as_secs_f64();
            answers
                .lock()
                .unwrap()
                .push((at, id, status, sent.elapsed()));
            None
        });
    }
    while let Some(done) = senders.join_next().await {
        if let Ok(Some((new_leader, took))) = done {
            println!(
                "new leader {new_leader} reported {:.2} s after the kill",
                took.as_secs_f64()
            );
            elected = Some(took);
        }
    }
    let answers = Arc::try_unwrap(answers).ok().unwrap().into_inner().unwrap();
    let (killed_name, killed_at) = killed.expect("the kill happened");
    let kill_s = (killed_at - started).as_secs_f64();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, status, _) in &answers {
        *by_status.entry(status.as_str()).or_default() += 1;
    }
    let unavailable: Vec<f64> = answers
        .iter()
        .filter(|(_, _, s, _)| s != "202")
        .map(|(t, _, _, _)| *t)
        .collect();
    let window = match (
        unavailable.iter().cloned().reduce(f64::min),
        unavailable.iter().cloned().reduce(f64::max),
    ) {
        (Some(first), Some(last)) => format!(
            "not 2xx from {:+.2} s to {:+.2} s around the kill ({:.2} s)",
            first - kill_s,
            last - kill_s,
            last - first
        ),
        _ => "every delivery answered 2xx".to_owned(),
    };
    let slowest = answers
        .iter()
        .max_by_key(|a| a.3)
        .map(|(t, _, _, l)| {
            format!(
                "{:.2} s, sent {:+.2} s from the kill",
                l.as_secs_f64(),
                t - kill_s
            )
        })
        .unwrap_or_default();
    println!(
        "{} deliveries at {rate}/s: {}; {window}; slowest answer {slowest}; leader election {}",
        answers.len(),
        by_status
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect::<Vec<_>>()
            .join(" "),
        elected.map_or("not seen".to_owned(), |d| format!(
            "{:.2} s",
            d.as_secs_f64()
        ))
    );

    // Every acknowledged delivery is on the surviving nodes.
    let acknowledged: HashSet<&str> = answers
        .iter()
        .filter(|(_, _, s, _)| s.starts_with('2'))
        .map(|(_, id, _, _)| id.as_str())
        .collect();
    let stream = js
        .get_stream(DELIVERIES_STREAM)
        .await
        .expect("stream after the kill");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let total = stream.get_info().await.expect("info").state.messages;
    let mut messages = consumer.messages().await.expect("messages");
    let mut stored = HashSet::new();
    while (stored.len() as u64) < total {
        let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(10), messages.next()).await
        else {
            break;
        };
        if let Some(id) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(delivery_headers::DELIVERY))
        {
            stored.insert(id.as_str().to_owned());
        }
    }
    let lost: Vec<&&str> = acknowledged
        .iter()
        .filter(|id| !stored.contains(**id))
        .collect();
    println!(
        "{} acknowledged, {} stored on the nodes left (after {killed_name} was killed), {} acknowledged and missing",
        acknowledged.len(),
        stored.len(),
        lost.len()
    );
    let other = by_status
        .iter()
        .filter(|(s, _)| !s.starts_with('2') && **s != "503")
        .map(|(_, n)| n)
        .sum::<u64>();
    if !lost.is_empty() || other > 0 {
        eprintln!(
            "lost {} acknowledged deliveries, {other} answers neither 2xx nor 503",
            lost.len()
        );
        std::process::exit(1);
    }
}
