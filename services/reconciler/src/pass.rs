//! One reconcile pass over one webhook's log (the App's, or a repository connection's): page
//! GitHub's log back to the checkpoint (never past the redelivery window), record each GUID the
//! stream lacks, take the step each open GUID of that log is due (ask, give up, or record its
//! arrival), then move the log's checkpoint up to what was judged.

use std::collections::BTreeMap;

use async_nats::jetstream;
use hooklog_domain::clock::Timestamp;
use hooklog_domain::github_delivery::{
    GithubAttempt, GithubDeliveryCommand, GithubDeliveryStatus, Requester, Step,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::streams::DELIVERIES_STREAM;
use hooklog_syncer::source::github::AppClient;
use hooklog_write::CommandBus;
use sqlx::PgPool;

use crate::hook::HookLog;
use crate::log::{self, LogItem};
use crate::redeliver::{self, Asked};
use crate::{ReconcileError, ReconcilerConfig, ARRIVED, FOUND, UNRECOVERABLE};

/// How far before the checkpoint a pass judges again: GitHub's timestamps are whole seconds of
/// its clock, the checkpoint is hooklog's.
const OVERLAP: std::time::Duration = std::time::Duration::from_secs(60);

/// What a pass saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Pages of GitHub's log read.
    pub pages: usize,
    /// Log items judged (delivered after the checkpoint and before the settle time).
    pub judged: usize,
    /// GUIDs found missing for the first time.
    pub found: usize,
    /// Redeliveries GitHub accepted.
    pub asked: usize,
    /// GUIDs whose redelivery is on the stream now.
    pub arrived: usize,
    /// GUIDs reported unrecoverable.
    pub unrecoverable: usize,
    /// The new checkpoint.
    pub checked_until: Option<Timestamp>,
}

/// Runs one pass over the App `config.app_id`'s log. The caller holds the lease.
pub async fn run_pass(
    config: &ReconcilerConfig,
    pool: &PgPool,
    bus: &CommandBus,
    js: &jetstream::Context,
    client: &AppClient,
) -> Result<PassReport, ReconcileError> {
    let app = HookLog::App {
        app_id: config.app_id,
    };
    run_pass_over(config, pool, bus, js, client, &app).await
}

/// Runs one pass over `hook`'s log, read and asked with `client` (the App's, or one with the
/// connection's token). The caller keeps passes over one log from running at once.
pub async fn run_pass_over(
    config: &ReconcilerConfig,
    pool: &PgPool,
    bus: &CommandBus,
    js: &jetstream::Context,
    client: &AppClient,
    hook: &HookLog,
) -> Result<PassReport, ReconcileError> {
    let now = Timestamp(std::time::SystemTime::now());
    let correlation = uuid::Uuid::new_v4().to_string();
    let meta = CommandMetadata::from_system("github-reconciler", &correlation, &correlation);
    let mut report = PassReport::default();

    // Everything GitHub attempted before `settle_before` was acknowledged (or never will be)
    // before this pass began; the deliveries read model must hold every message stored by now.
    let settle_before = Timestamp(now.0 - config.settle);
    let horizon = Timestamp(now.0 - config.policy.window);
    wait_for_deliveries(config, pool, js).await?;

    // Judged again from a little before the checkpoint: GitHub stamps whole seconds by its own
    // clock. Judging an attempt twice is harmless (stored or already recorded: nothing happens).
    let checkpoint = hook
        .checkpoint(pool)
        .await?
        .map(|c| Timestamp(c.0 - OVERLAP));
    let floor = checkpoint.map_or(horizon, |c| c.max(horizon));
    let mut seen: BTreeMap<String, GithubAttempt> = BTreeMap::new();
    let mut path = Some(hook.first_page()?);
    while let Some(current) = path.take() {
        let page = log::page(client, &current, hook)
            .await
            .map_err(ReconcileError::Github)?;
        report.pages += 1;
        let mut reached_floor = false;
        for item in &page.items {
            let at = item.delivered_at().map_err(ReconcileError::Github)?;
            if at < floor {
                reached_floor = true;
            }
            // Judged: after the checkpoint (all of the page, the first time), settled.
            if checkpoint.is_some_and(|c| at < c) || at >= settle_before {
                continue;
            }
            report.judged += 1;
            keep_earliest(&mut seen, item, at, hook.connection());
        }
        if !reached_floor {
            path = page.next;
        }
    }

    // GUIDs the stream lacks, and open ones from earlier passes.
    let mut candidates: Vec<String> = seen.keys().cloned().collect();
    candidates.extend(hook.open_guids(pool).await?);
    candidates.sort();
    candidates.dedup();
    let stored = stored(pool, &candidates).await?;

    for (guid, attempt) in &seen {
        if stored.contains_key(guid) {
            continue;
        }
        let state = bus
            .load_github_delivery(guid)
            .await
            .map_err(|err| ReconcileError::write(guid, err))?;
        if state.status() == GithubDeliveryStatus::Unknown {
            let command = GithubDeliveryCommand::RecordMissing {
                guid: guid.clone(),
                seen: attempt.clone(),
            };
            bus.github_delivery(guid, command, &meta)
                .await
                .map_err(|err| ReconcileError::write(guid, err))?;
            metrics::counter!(FOUND).increment(1);
            report.found += 1;
            tracing::warn!(
                guid = guid.as_str(),
                event = attempt.event.as_str(),
                github_status = attempt.status_code,
                "GitHub attempted a delivery the stream lacks"
            );
        }
    }

    for guid in &candidates {
        let state = bus
            .load_github_delivery(guid)
            .await
            .map_err(|err| ReconcileError::write(guid, err))?;
        if matches!(
            state.status(),
            GithubDeliveryStatus::Unknown | GithubDeliveryStatus::Arrived
        ) {
            continue;
        }
        if let Some(&stream_sequence) = stored.get(guid) {
            let command = GithubDeliveryCommand::RecordArrived { stream_sequence };
            bus.github_delivery(guid, command, &meta)
                .await
                .map_err(|err| ReconcileError::write(guid, err))?;
            metrics::counter!(ARRIVED).increment(1);
            report.arrived += 1;
            tracing::info!(
                guid = guid.as_str(),
                stream_sequence,
                "a missing delivery arrived"
            );
            continue;
        }
        match state.next_step(Requester::Reconciler, now, &config.policy) {
            Step::Nothing | Step::Wait { .. } => {}
            Step::Ask { attempt, github_id } => {
                let ask = redeliver::Ask {
                    guid,
                    attempt,
                    github_id,
                    by: Requester::Reconciler,
                };
                let asked = redeliver::ask(bus, client, hook, ask, config.policy, &meta).await?;
                match asked {
                    Asked::Accepted => report.asked += 1,
                    Asked::Refused { .. } => {
                        metrics::counter!(UNRECOVERABLE).increment(1);
                        report.unrecoverable += 1;
                    }
                    Asked::NotDue(_) | Asked::Failed(_) => {}
                }
            }
            Step::GiveUp(reason) => {
                tracing::error!(guid = guid.as_str(), %reason, "a missing delivery is unrecoverable");
                let command = GithubDeliveryCommand::GiveUp {
                    reason,
                    policy: config.policy,
                };
                bus.github_delivery(guid, command, &meta)
                    .await
                    .map_err(|err| ReconcileError::write(guid, err))?;
                metrics::counter!(UNRECOVERABLE).increment(1);
                report.unrecoverable += 1;
            }
        }
    }

    // Everything delivered before `settle_before` down to the floor was judged.
    let checked_until = settle_before;
    hook.save_checkpoint(pool, checked_until).await?;
    report.checked_until = Some(checked_until);
    Ok(report)
}

/// A GUID is judged by its first attempt in the log (the original delivery, whose age is what
/// GitHub's window counts).
fn keep_earliest(
    seen: &mut BTreeMap<String, GithubAttempt>,
    item: &LogItem,
    at: Timestamp,
    connection: Option<hooklog_domain::repository_connection::ConnectionId>,
) {
    let earlier = seen
        .get(&item.guid)
        .is_none_or(|known| at < known.delivered_at);
    if earlier {
        seen.insert(item.guid.clone(), item.attempt(at, connection));
    }
}

/// Waits until the `deliveries` read model holds every message `GITHUB_DELIVERIES` held when
/// the pass began: a delivery not yet projected would look missing.
async fn wait_for_deliveries(
    config: &ReconcilerConfig,
    pool: &PgPool,
    js: &jetstream::Context,
) -> Result<(), ReconcileError> {
    let mut stream = js
        .get_stream(DELIVERIES_STREAM)
        .await
        .map_err(|err| ReconcileError::Nats(err.to_string()))?;
    let last = stream
        .info()
        .await
        .map_err(|err| ReconcileError::Nats(err.to_string()))?
        .state
        .last_sequence;
    let deadline = tokio::time::Instant::now() + config.projection_wait;
    loop {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
                .bind(hooklog_projections::query::DELIVERIES)
                .fetch_optional(pool)
                .await?;
        let position = position.unwrap_or(0).max(0) as u64;
        if position >= last {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ReconcileError::Lagging {
                position,
                last,
                waited: config.projection_wait,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The first stream sequence of each of `guids` that `GITHUB_DELIVERIES` holds.
async fn stored(pool: &PgPool, guids: &[String]) -> Result<BTreeMap<String, u64>, ReconcileError> {
    if guids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.delivery_id, min(d.stream_sequence) FROM unnest($1::text[]) AS ids(id) \
         JOIN deliveries d ON d.delivery_id = ids.id GROUP BY d.delivery_id",
    )
    .bind(guids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(guid, sequence)| (guid, sequence as u64))
        .collect())
}
