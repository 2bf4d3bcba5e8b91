//! The fault-injection suite: every role of `hooklog serve` as its own process (two of the
//! worker, projector, syncer and process manager) against a real nats-server (or, in cluster
//! mode, a three-node JetStream cluster with three replicas of every stream) and PostgreSQL,
//! signed deliveries streaming in, each role SIGKILLed in turn and started again, nats-server
//! and PostgreSQL stopped and started again; then, once everything has drained, the checks:
//! every delivery answered 2xx is on `GITHUB_DELIVERIES` and decided, no target synced a head
//! twice, every copy is at its branch head, `hooklog projections rebuild --verify` and
//! `hooklog audit verify` pass; in cluster mode also that every 503 fell within a leader
//! election.
//!
//! `examples/faults/main.rs` runs it by hand (`bench/faults.sh`, release build, `--full` for the
//! long form); `tests/faults.rs` runs the bounded form in CI against the debug build. Both call
//! [`run`].

mod checks;
mod cluster;
mod faults;
mod fleet;
mod load;
mod observe;
mod payloads;
mod postgres;
mod repo;
mod report;
mod stack;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use report::Report;

use checks::Expected;
use load::{Kind, Load};
use observe::{Store, Stored};
use stack::Stack;

/// A deliberate fault in what the suite checks, to show it is caught (`--sabotage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// While nats-server is down, cut the newest block of `GITHUB_DELIVERIES` in half.
    LoseTail,
    /// After the drain, delete one acknowledged delivery's decision from the event store.
    LoseDecision,
    /// After the drain, have an operator sync a head a target already synced.
    DoubleSync,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The `hooklog` binary every process runs.
    pub bin: PathBuf,
    /// What the report calls this form.
    pub form: String,
    /// Deliveries per second.
    pub rate: u32,
    /// Tracked branches, each synced from the suite's git repository.
    pub targets: usize,
    /// Installations (two targets each) deleted during the load.
    pub doomed: usize,
    /// Rounds of every fault.
    pub rounds: usize,
    /// Load before the first fault and after the last.
    pub warmup: Duration,
    /// Time between faults.
    pub gap: Duration,
    /// How long nats-server and PostgreSQL stay down.
    pub outage: Duration,
    /// How long the suite waits for everything to settle once the load stopped.
    pub drain: Duration,
    pub sabotage: Option<Sabotage>,
    /// A three-node JetStream cluster with three replicas instead of one nats-server; the NATS
    /// fault loses the node leading `GITHUB_DELIVERIES`.
    pub cluster: bool,
    /// Keep the working directory (logs, stores) and say where.
    pub keep: bool,
}

impl Options {
    /// The bounded form CI runs: one round of every fault, about two minutes.
    pub fn bounded(bin: PathBuf) -> Self {
        Self {
            bin,
            form: "bounded form (one round of faults)".to_owned(),
            rate: 20,
            targets: 12,
            doomed: 3,
            rounds: 1,
            warmup: Duration::from_secs(4),
            gap: Duration::from_secs(4),
            outage: Duration::from_secs(3),
            drain: Duration::from_secs(90),
            sabotage: None,
            cluster: false,
            keep: false,
        }
    }

    /// The full form, run by hand: four rounds, each replica killed twice, both ways of
    /// stopping each server, a higher rate and longer outages.
    pub fn full(bin: PathBuf) -> Self {
        Self {
            form: "full form (four rounds of faults)".to_owned(),
            rate: 40,
            targets: 32,
            doomed: 8,
            rounds: 4,
            warmup: Duration::from_secs(10),
            gap: Duration::from_secs(6),
            outage: Duration::from_secs(6),
            drain: Duration::from_secs(180),
            ..Self::bounded(bin)
        }
    }

    fn load_secs(&self) -> f64 {
        let faults = faults::plan(self.rounds).len() as f64;
        2.0 * self.warmup.as_secs_f64()
            + faults * self.gap.as_secs_f64()
            + (self.rounds * 2) as f64 * self.outage.as_secs_f64()
    }
}

/// Runs the suite; `Err` only when it could not run at all (a server that does not start).
pub async fn run(options: Options) -> anyhow::Result<Report> {
    if options.cluster && options.sabotage == Some(Sabotage::LoseTail) {
        anyhow::bail!(
            "--sabotage lose-tail cuts one server's store, which a cluster repairs from the other \
             nodes: it needs one nats-server (leave out --cluster)"
        );
    }
    let started = Instant::now();
    let mut report = Report {
        form: format!("{}, {}", options.form, options.bin.display()),
        rate: options.rate,
        targets: options.targets,
        ..Report::default()
    };
    let mut stack = Stack::start(&options).await?;
    report.postgres = stack.postgres.describe();
    report.nats = stack.servers.describe();
    report
        .timings
        .push(("setup", started.elapsed().as_secs_f64()));

    let (load, elections) = drive(&mut stack, &options, &mut report).await?;
    if options.cluster {
        checks::unavailability(&mut report, &elections, &load.unavailable());
    }
    let expected = Expected {
        ledger: load.ledger(),
        heads: stack.targets.iter().cloned().zip(load.heads()).collect(),
        doomed: stack.doomed.clone(),
    };

    let drain_started = Instant::now();
    let mut stored = Stored::default();
    drain(&stack, &expected, &mut stored, options.drain).await;
    report
        .timings
        .push(("drain", drain_started.elapsed().as_secs_f64()));

    let checks_started = Instant::now();
    if sabotage_after_drain(&stack, &options, &expected, &mut report).await? {
        // What follows from it (the sync, its events relayed, projected and sealed).
        drain(&stack, &expected, &mut stored, Duration::from_secs(30)).await;
    }
    checks::check(
        &mut report,
        &stack.js,
        &stack.pool,
        &mut stored,
        &expected,
        load.tally(),
        &stack.source,
    )
    .await?;
    verify::run(&stack, &mut report)?;
    report
        .timings
        .push(("checks", checks_started.elapsed().as_secs_f64()));

    let keep = options.keep || !report.passed();
    stack.stop(keep, &mut report).await?;
    report
        .timings
        .push(("total", started.elapsed().as_secs_f64()));
    Ok(report)
}

/// Waits up to `patience` until everything acknowledged is decided and everything that follows
/// from it (syncs, cascades, projections, checkpoints) is done.
async fn drain(stack: &Stack, expected: &Expected, stored: &mut Stored, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let pending = checks::settle(&stack.js, &stack.pool, stored, expected).await;
        if pending.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("faults: not settled after {patience:?}: {pending:?}");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Streams the load and injects every fault while it runs; the load once every delivery was
/// answered 2xx (or the suite gave up on it), and the leader elections of a cluster's lost nodes.
async fn drive(
    stack: &mut Stack,
    options: &Options,
    report: &mut Report,
) -> anyhow::Result<(Arc<Load>, Vec<cluster::Election>)> {
    let load_started = Instant::now();
    let mut doomed: Vec<u64> = stack.doomed.iter().map(|(i, _)| *i).collect();
    doomed.dedup();
    let load = Load::new(
        stack.webhook_url.clone(),
        stack::SECRET,
        Arc::clone(&stack.source),
        options.targets,
        &doomed,
    )?;
    let stop = CancellationToken::new();
    let delete_every = ((options.load_secs() * f64::from(options.rate))
        / (options.doomed as f64 + 1.0))
        .max(2.0) as u64;
    let generator = tokio::spawn(Arc::clone(&load).run(options.rate, delete_every, stop.clone()));
    tokio::time::sleep(options.warmup).await;
    let mut elections = vec![];
    for fault in faults::plan(options.rounds) {
        let at = load_started.elapsed().as_secs_f64();
        let nats = faults::NatsFault {
            servers: &mut stack.servers,
            truncate: options.sabotage == Some(Sabotage::LoseTail) && report.sabotage.is_empty(),
        };
        let injected = faults::inject(
            &fault,
            &stack.fleet,
            nats,
            &mut stack.postgres,
            options.outage,
        )
        .await
        .with_context(|| format!("cannot inject {fault:?}"))?;
        eprintln!("faults: +{at:.1} s {}", injected.what);
        report.faults.push(format!("+{at:.1} s {}", injected.what));
        report
            .sabotage
            .extend(injected.sabotage.map(|s| format!("+{at:.1} s {s}")));
        elections.extend(injected.election);
        tokio::time::sleep(options.gap).await;
    }
    tokio::time::sleep(options.warmup).await;
    stop.cancel();
    generator.await?;
    report.load_secs = load_started.elapsed().as_secs_f64();
    report.timings.push(("load", report.load_secs));
    // Unanswered deliveries are sent again for a while: the servers are all back by now.
    load.finish(Duration::from_secs(60)).await;
    Ok((load, elections))
}

/// The deliberate faults made once the system settled (`--sabotage lose-decision|double-sync`);
/// whether one was made.
async fn sabotage_after_drain(
    stack: &Stack,
    options: &Options,
    expected: &Expected,
    report: &mut Report,
) -> anyhow::Result<bool> {
    match options.sabotage {
        Some(Sabotage::LoseDecision) => {
            let victim = expected
                .ledger
                .iter()
                .find(|(_, kind, acked)| *acked && matches!(kind, Kind::Ping));
            if let Some((id, _, _)) = victim {
                sqlx::query(
                    "DELETE FROM events WHERE aggregate_type = 'Delivery' AND aggregate_id = $1",
                )
                .bind(id)
                .execute(&stack.pool)
                .await?;
                report.sabotage.push(format!(
                    "deleted the decision of delivery {id} from the event store"
                ));
            }
        }
        Some(Sabotage::DoubleSync) => {
            let store = Store::read(&stack.pool).await?;
            if let Some((target, head)) = store.copy_heads.iter().next() {
                stack
                    .api
                    .post(
                        &format!("/targets/{target}/sync"),
                        json!({ "head_sha": head }),
                    )
                    .await?;
                report.sabotage.push(format!(
                    "an operator synced target {target} at {head} again"
                ));
                let until = Instant::now() + Duration::from_secs(30);
                while Instant::now() < until {
                    let store = Store::read(&stack.pool).await?;
                    if store.in_flight().is_empty() && !store.double_syncs().is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Some(Sabotage::LoseTail) | None => return Ok(false),
    }
    Ok(!report.sabotage.is_empty())
}
