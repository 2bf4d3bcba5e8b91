//! The load: signed deliveries at a steady rate, a fresh delivery id each, as GitHub sends
//! them, and a ledger of every answer.
//!
//! - Pushes to the tracked branches (most of the load), each naming the next commit of its
//!   branch (`before` the previous one), one push in flight per branch, so a branch's pushes
//!   reach the stream in order; once a push is answered 2xx the branch is moved to its head.
//! - `ping` and `installation` `created` deliveries, pushes to branches nobody tracks (ignored),
//!   and `installation` `deleted` for the installations set up to be deleted (their targets are
//!   the process manager's to remove).
//! - Deliberate redeliveries: an acknowledged delivery sent again with its delivery id, which
//!   must be answered as a duplicate and add nothing.
//!
//! A delivery not answered 2xx (503 while NATS is away, a connection error while the ingress is
//! down) is sent again with the same delivery id, as GitHub's redelivery (and hooklog's
//! reconciler) would, until it is answered 2xx or the suite stops sending. Only 2xx counts as
//! acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hooklog_domain::github::{Signature, WebhookSecret};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::payloads::Templates;
use super::repo::{branch, Source};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Push { target: usize, k: usize },
    UntrackedPush,
    Ping,
    InstallationCreated,
    InstallationDeleted { installation: u64 },
}

pub struct Delivery {
    pub id: String,
    pub kind: Kind,
    event: &'static str,
    body: Bytes,
    signature: String,
    pub acked: bool,
}

/// Every figure of the load.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub attempts: u64,
    /// Deliveries answered 2xx at their first request.
    pub acked_first_time: u64,
    pub answered_2xx: u64,
    pub answered_503: u64,
    pub connection_errors: u64,
    /// Any other status, by status.
    pub other: HashMap<u16, u64>,
    /// 2xx answers saying `"duplicate": true`: a retry of a delivery already stored, or a
    /// deliberate redelivery.
    pub duplicates: u64,
    pub redeliveries_sent: u64,
    pub redeliveries_duplicate: u64,
    /// A deliberate redelivery answered 2xx without `duplicate`: stored a second time.
    pub redeliveries_stored_again: Vec<String>,
    pub redeliveries_not_answered: u64,
    /// Deliveries never answered 2xx by the time the suite stopped sending.
    pub given_up: u64,
}

struct Branch {
    /// The last commit sent (0: the branch's start, nothing sent yet).
    sent: usize,
    /// The head the branch is at: the last push answered 2xx.
    head: usize,
    busy: bool,
}

pub struct Load {
    http: reqwest::Client,
    url: String,
    secret: WebhookSecret,
    source: Arc<Source>,
    templates: Templates,
    state: Mutex<State>,
    /// Cancelled when the suite stops retrying unanswered deliveries.
    give_up: CancellationToken,
}

struct State {
    deliveries: Vec<Delivery>,
    branches: Vec<Branch>,
    tally: Tally,
    next_branch: usize,
    doomed_left: Vec<u64>,
    acked: Vec<usize>,
    /// When each request answered 503 was sent.
    unavailable: Vec<Instant>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    counter: u64,
}

impl Load {
    pub fn new(
        url: String,
        secret: &str,
        source: Arc<Source>,
        targets: usize,
        doomed: &[u64],
    ) -> anyhow::Result<Arc<Self>> {
        let templates = Templates::load();
        Ok(Arc::new(Self {
            http: hooklog_infra::http::client_builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            url,
            secret: WebhookSecret::new(secret),
            source,
            templates,
            state: Mutex::new(State {
                deliveries: vec![],
                branches: (0..targets)
                    .map(|_| Branch {
                        sent: 0,
                        head: 0,
                        busy: false,
                    })
                    .collect(),
                tally: Tally::default(),
                next_branch: 0,
                doomed_left: doomed.iter().rev().copied().collect(),
                acked: vec![],
                unavailable: vec![],
                tasks: vec![],
                counter: 0,
            }),
            give_up: CancellationToken::new(),
        }))
    }

    /// Sends `rate` deliveries a second until `stop`; every `delete_every`-th one deletes an
    /// installation while any is left.
    pub async fn run(self: Arc<Self>, rate: u32, delete_every: u64, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let n = {
                let mut state = self.state.lock().expect("state");
                state.counter += 1;
                state.counter
            };
            if n % 16 == 5 {
                if let Some(index) = self.pick_acked(n) {
                    self.spawn_redelivery(index);
                    continue;
                }
            }
            let kind = self.next_kind(n, delete_every);
            let index = self.record(kind);
            let load = Arc::clone(&self);
            let task = tokio::spawn(async move { load.deliver(index).await });
            self.state.lock().expect("state").tasks.push(task);
        }
    }

    fn next_kind(&self, n: u64, delete_every: u64) -> Kind {
        let mut state = self.state.lock().expect("state");
        if n % delete_every == delete_every / 2 {
            if let Some(installation) = state.doomed_left.pop() {
                return Kind::InstallationDeleted { installation };
            }
        }
        match n % 20 {
            7 => return Kind::Ping,
            13 => return Kind::InstallationCreated,
            17 => return Kind::UntrackedPush,
            _ => {}
        }
        let count = state.branches.len();
        for step in 0..count {
            let target = (state.next_branch + step) % count;
            let branch = &state.branches[target];
            let k = branch.sent + 1;
            if !branch.busy && self.source.commit(target, k).is_some() {
                state.next_branch = target + 1;
                let branch = &mut state.branches[target];
                branch.busy = true;
                branch.sent = k;
                return Kind::Push { target, k };
            }
        }
        // Every branch has a push in flight (say, while NATS is away).
        Kind::UntrackedPush
    }

    /// Builds and records a new delivery of `kind`; its index in the ledger.
    fn record(&self, kind: Kind) -> usize {
        let id = uuid::Uuid::new_v4().to_string();
        let (event, body) = self.templates.body(&kind, &id, &self.source);
        let bytes = serde_json::to_vec(&body).expect("JSON");
        let signature = Signature::sign(&self.secret, &bytes).to_string();
        let mut state = self.state.lock().expect("state");
        state.deliveries.push(Delivery {
            id,
            kind,
            event,
            body: Bytes::from(bytes),
            signature,
            acked: false,
        });
        state.deliveries.len() - 1
    }

    fn pick_acked(&self, n: u64) -> Option<usize> {
        let state = self.state.lock().expect("state");
        if state.acked.is_empty() {
            return None;
        }
        let spread = n.wrapping_mul(2_654_435_761) as usize;
        Some(state.acked[spread % state.acked.len()])
    }

    /// Sends delivery `index` until it is answered 2xx or the suite gives up.
    async fn deliver(self: Arc<Self>, index: usize) {
        let mut pause = Duration::from_millis(250);
        let mut first = true;
        loop {
            let answer = self.attempt(index).await;
            let acked = {
                let mut state = self.state.lock().expect("state");
                count(&mut state.tally, &answer);
                let acked = matches!(
                    answer,
                    Answer::Status {
                        code: 200..=299,
                        ..
                    }
                );
                if acked && first {
                    state.tally.acked_first_time += 1;
                }
                acked
            };
            first = false;
            if acked {
                self.acknowledged(index).await;
                return;
            }
            if self.give_up.is_cancelled() {
                break;
            }
            tokio::select! {
                () = self.give_up.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        let mut state = self.state.lock().expect("state");
        state.tally.given_up += 1;
        if let Kind::Push { target, .. } = state.deliveries[index].kind {
            state.branches[target].busy = false;
        }
    }

    async fn acknowledged(&self, index: usize) {
        let kind = {
            let mut state = self.state.lock().expect("state");
            state.deliveries[index].acked = true;
            state.acked.push(index);
            state.deliveries[index].kind.clone()
        };
        if let Kind::Push { target, k } = kind {
            let sha = self.source.commit(target, k).expect("a commit").to_owned();
            if let Err(err) = self.source.advance(target, &sha).await {
                eprintln!("faults: cannot move branch {}: {err:#}", branch(target));
            }
            let mut state = self.state.lock().expect("state");
            let branch = &mut state.branches[target];
            branch.head = branch.head.max(k);
            branch.busy = false;
        }
    }

    fn spawn_redelivery(self: &Arc<Self>, index: usize) {
        let load = Arc::clone(self);
        let task = tokio::spawn(async move {
            let answer = load.attempt(index).await;
            let mut state = load.state.lock().expect("state");
            count(&mut state.tally, &answer);
            state.tally.redeliveries_sent += 1;
            match answer {
                Answer::Status {
                    code: 200..=299,
                    duplicate: true,
                } => state.tally.redeliveries_duplicate += 1,
                Answer::Status {
                    code: 200..=299,
                    duplicate: false,
                } => {
                    let id = state.deliveries[index].id.clone();
                    state.tally.redeliveries_stored_again.push(id);
                }
                _ => state.tally.redeliveries_not_answered += 1,
            }
        });
        self.state.lock().expect("state").tasks.push(task);
    }

    async fn attempt(&self, index: usize) -> Answer {
        let (id, event, body, signature) = {
            let state = self.state.lock().expect("state");
            let d = &state.deliveries[index];
            (d.id.clone(), d.event, d.body.clone(), d.signature.clone())
        };
        let at = Instant::now();
        let sent = self
            .http
            .post(&self.url)
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", id)
            .header("X-Hub-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Err(_) => Answer::Error,
            Ok(response) => {
                let code = response.status().as_u16();
                if code == 503 {
                    self.state.lock().expect("state").unavailable.push(at);
                }
                let duplicate = match response.json::<Value>().await {
                    Ok(body) => body["duplicate"] == json!(true),
                    Err(_) => false,
                };
                Answer::Status { code, duplicate }
            }
        }
    }

    /// Stops retrying unanswered deliveries after `patience`, then waits for every send.
    pub async fn finish(&self, patience: Duration) {
        let give_up = self.give_up.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(patience).await;
            give_up.cancel();
        });
        loop {
            let tasks = std::mem::take(&mut self.state.lock().expect("state").tasks);
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        timer.abort();
    }

    /// When each request answered 503 was sent.
    pub fn unavailable(&self) -> Vec<Instant> {
        self.state.lock().expect("state").unavailable.clone()
    }

    pub fn tally(&self) -> Tally {
        self.state.lock().expect("state").tally.clone()
    }

    /// Every delivery sent: its id, kind and whether it was answered 2xx.
    pub fn ledger(&self) -> Vec<(String, Kind, bool)> {
        let state = self.state.lock().expect("state");
        state
            .deliveries
            .iter()
            .map(|d| (d.id.clone(), d.kind.clone(), d.acked))
            .collect()
    }

    /// The head each branch was moved to (the last push answered 2xx), by target.
    pub fn heads(&self) -> Vec<String> {
        let state = self.state.lock().expect("state");
        state
            .branches
            .iter()
            .enumerate()
            .map(|(t, b)| self.source.commit(t, b.head).expect("a commit").to_owned())
            .collect()
    }
}

enum Answer {
    Status {
        code: u16,
        duplicate: bool,
    },
    /// No answer: refused, reset or timed out.
    Error,
}

fn count(tally: &mut Tally, answer: &Answer) {
    tally.attempts += 1;
    match answer {
        Answer::Status { code, duplicate } => {
            match code {
                200..=299 => tally.answered_2xx += 1,
                503 => tally.answered_503 += 1,
                other => *tally.other.entry(*other).or_default() += 1,
            }
            if *duplicate {
                tally.duplicates += 1;
            }
        }
        Answer::Error => tally.connection_errors += 1,
    }
}
