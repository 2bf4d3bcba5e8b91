//! Load for `services/hooklog/bench/attack.sh`: valid deliveries' latency while the ingress is
//! attacked. Each scenario runs for `--seconds`: valid signed deliveries (a real push payload, a
//! fresh delivery id each) go out open loop at `--rate` from 127.0.0.1, each on a new connection
//! as GitHub sends them, while one attack runs:
//!
//! - `none`: no attack, the baseline;
//! - `slow-one`: 127.0.0.2 opens 100 forged uploads a second (headers announcing 20 MB, a well
//!   formed but wrong `X-Hub-Signature-256`, then one byte every 200 ms);
//! - `slow-twenty`: the same at 5 a second from each of 127.0.0.10 to 127.0.0.29;
//! - `bad-signatures`: 127.0.0.3 sends 10,000 small deliveries with a wrong signature as fast as
//!   16 keep-alive connections allow.
//!
//! Prints, per scenario, the valid deliveries sent, answered 202, answered otherwise (with the
//! statuses) and their p50, p99 and max latency, and what the attack's requests were answered.
//! Then checks that `GITHUB_DELIVERIES` holds every delivery answered 202. Exits 1 when a valid
//! delivery was not answered 202 or was not stored; a slow figure only shows in the table.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hooklog_domain::github::{Signature, WebhookSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;

const FORGED: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

fn opt(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn required(name: &str) -> String {
    opt(name).unwrap_or_else(|| panic!("missing {name}"))
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, status: impl Into<String>) {
        *self.statuses.entry(status.into()).or_default() += 1;
    }

    fn summary(&self) -> String {
        if self.statuses.is_empty() {
            return "-".to_owned();
        }
        self.statuses
            .iter()
            .map(|(status, n)| format!("{status}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// The status code of the first response on `stream`, or `None` if it closed without one.
async fn read_status<R: tokio::io::AsyncRead + Unpin>(stream: &mut R) -> Option<u16> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        if let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&raw[..line_end]).into_owned();
            return line.split(' ').nth(1).and_then(|s| s.parse().ok());
        }
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buffer[..n]);
    }
}

/// One valid delivery on a new connection; its status (or the error) and latency.
async fn deliver(to: SocketAddr, secret: &WebhookSecret, payload: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let signature = Signature::sign(secret, payload).to_string();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        hooklog_ingress::WEBHOOK_PATH,
        uuid::Uuid::new_v4(),
        payload.len(),
    );
    let status = async {
        let mut stream = connect_from([127, 0, 0, 1].into(), to).await.ok()?;
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(payload).await.ok()?;
        read_status(&mut stream).await
    };
    let status = match tokio::time::timeout(Duration::from_secs(10), status).await {
        Ok(Some(status)) => status.to_string(),
        Ok(None) => "closed".to_owned(),
        Err(_) => "timeout".to_owned(),
    };
    (status, started.elapsed())
}

/// One slow forged upload from `from`: what it was answered, if anything.
async fn slow_upload(from: IpAddr, to: SocketAddr) -> String {
    let Ok(stream) = connect_from(from, to).await else {
        return "connect-failed".to_owned();
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {FORGED}\r\nContent-Length: 20000000\r\n\r\n",
        hooklog_ingress::WEBHOOK_PATH,
        uuid::Uuid::new_v4(),
    );
    let (mut reader, mut writer) = stream.into_split();
    if writer.write_all(head.as_bytes()).await.is_err() {
        return "closed".to_owned();
    }
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                // Closed by the server: its answer, if any, is on the reader.
                std::future::pending::<()>().await;
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            status = read_status(&mut reader) => status,
            _ = trickle => None,
        }
    })
    .await;
    match answer {
        Ok(Some(status)) => status.to_string(),
        Ok(None) => "closed".to_owned(),
        Err(_) => "held-30s".to_owned(),
    }
}

/// Opens `per_second` slow uploads a second from each address until `until`.
async fn slow_attack(
    addresses: Vec<IpAddr>,
    per_second: u32,
    to: SocketAddr,
    until: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let mut uploads = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    while Instant::now() < until {
        tick.tick().await;
        for &from in &addresses {
            let tally = Arc::clone(&tally);
            uploads.spawn(async move {
                let answer = slow_upload(from, to).await;
                tally.lock().unwrap().add(answer);
            });
        }
    }
    while uploads.join_next().await.is_some() {}
}

/// `total` small forged deliveries from 127.0.0.3 over 16 keep-alive connections.
async fn bad_signature_flood(url: String, total: usize, tally: Arc<Mutex<Tally>>) {
    let client = hooklog_infra::http::client_builder()
        .local_address(IpAddr::from([127, 0, 0, 3]))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = JoinSet::new();
    for _ in 0..16 {
        let (client, url, sent, tally) = (client.clone(), url.clone(), sent.clone(), tally.clone());
        senders.spawn(async move {
            while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let answer = client
                    .post(&url)
                    .header("X-GitHub-Event", "push")
                    .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
                    .header("X-Hub-Signature-256", FORGED)
                    .header("Content-Type", "application/json")
                    .body(r#"{"zen":"forged"}"#)
                    .send()
                    .await;
                let status = match answer {
                    Ok(response) => response.status().as_u16().to_string(),
                    Err(_) => "error".to_owned(),
                };
                tally.lock().unwrap().add(status);
            }
        });
    }
    while senders.join_next().await.is_some() {}
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let url = required("--url");
    let secret = WebhookSecret::new(required("--secret"));
    let payload = Arc::new(std::fs::read(required("--payload")).expect("payload file"));
    let rate: u32 = opt("--rate").map_or(50, |r| r.parse().expect("--rate"));
    let seconds: u64 = opt("--seconds").map_or(15, |s| s.parse().expect("--seconds"));
    let nats_url = required("--nats-url");
    let scenarios =
        opt("--scenarios").unwrap_or_else(|| "none,slow-one,slow-twenty,bad-signatures".to_owned());
    let to: SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("--url http://<ip:port>/...");
    let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await.expect("NATS"));
    let stored = || async {
        // `serve` listens before it creates the stream; give it a moment at start.
        let mut stream = None;
        for _ in 0..100 {
            match js
                .get_stream(hooklog_infra::streams::DELIVERIES_STREAM)
                .await
            {
                Ok(found) => {
                    stream = Some(found);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut stream = stream.expect("GITHUB_DELIVERIES within 10 s");
        stream.info().await.expect("stream info").state.messages
    };

    println!(
        "{:<15} {:>6} {:>6} {:>14} {:>10} {:>10} {:>10}  attack's requests answered",
        "scenario", "valid", "202", "other", "p50", "p99", "max"
    );
    let mut accepted_total = 0u64;
    let before = stored().await;
    let mut failed = false;
    for scenario in scenarios.split(',') {
        let until = Instant::now() + Duration::from_secs(seconds);
        let attack_tally = Arc::new(Mutex::new(Tally::default()));
        let attack = {
            let tally = Arc::clone(&attack_tally);
            let url = url.clone();
            match scenario {
                "none" => tokio::spawn(async {}),
                "slow-one" => tokio::spawn(slow_attack(
                    vec![[127, 0, 0, 2].into()],
                    100,
                    to,
                    until,
                    tally,
                )),
                "slow-twenty" => tokio::spawn(slow_attack(
                    (10..30).map(|i| IpAddr::from([127, 0, 0, i])).collect(),
                    5,
                    to,
                    until,
                    tally,
                )),
                "bad-signatures" => tokio::spawn(bad_signature_flood(url, 10_000, tally)),
                other => panic!("unknown scenario {other}"),
            }
        };
        // Let the attack build up before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut valid = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let measured_until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < measured_until {
            tick.tick().await;
            let (secret, payload) = (secret.clone(), Arc::clone(&payload));
            valid.spawn(async move { deliver(to, &secret, &payload).await });
        }
        let mut latencies = Vec::new();
        let mut others = Tally::default();
        while let Some(result) = valid.join_next().await {
            let (status, latency) = result.expect("sender");
            if status == "202" {
                latencies.push(latency);
            } else {
                others.add(status);
            }
        }
        let _ = attack.await;
        latencies.sort();
        let accepted = latencies.len() as u64;
        accepted_total += accepted;
        let other_count: u64 = others.statuses.values().sum();
        failed |= other_count > 0;
        println!(
            "{:<15} {:>6} {:>6} {:>14} {:>10} {:>10} {:>10}  {}",
            scenario,
            accepted + other_count,
            accepted,
            if other_count == 0 {
                "0".to_owned()
            } else {
                others.summary()
            },
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default()),
            attack_tally.lock().unwrap().summary(),
        );
    }
    let stored_now = stored().await - before;
    println!(
        "GITHUB_DELIVERIES: {stored_now} deliveries stored, {accepted_total} answered 202 (the attacks' forged requests store nothing)"
    );
    if stored_now != accepted_total {
        eprintln!("stored and acknowledged differ");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
