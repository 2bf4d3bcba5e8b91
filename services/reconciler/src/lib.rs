//! The GitHub reconciler (role `github-reconciler`): every
//! `HOOKLOG_GITHUB_RECONCILE_INTERVAL` it pages the App's webhook delivery log
//! (`GET /app/hook/deliveries`) and has GitHub redeliver every delivery `GITHUB_DELIVERIES`
//! lacks (DESIGN.md, "GitHub reconciler"). GitHub never retries a delivery by itself: without
//! this, a delivery lost while hooklog was down, slow, or after an acknowledgement it lost (a
//! power cut before fsync) is gone.
//!
//! Why nothing GitHub attempted stays missing, and nothing is asked twice:
//! - **Missing means missing from the stream**, whatever GitHub's status says: a delivery GitHub
//!   counts as answered 2xx may still have been lost. A pass first waits until the `deliveries`
//!   read model holds every message the stream held when the pass began, and judges only
//!   attempts older than `settle` (so every one of them was acknowledged, or never will be,
//!   before the pass began): a stored delivery is never judged missing.
//! - **Back to the checkpoint, never past the window.** A pass pages newest first down to the
//!   checkpoint (the settle time of the last pass that finished), or GitHub's 3-day redelivery
//!   window when that is later, and stops there; the checkpoint only moves after every page
//!   above it was read and judged, so a pass that fails leaves it for the next.
//! - **Decisions are events** on one `GithubDelivery` aggregate per GUID:
//!   `DeliveryMissing`, `RedeliveryRequested{attempt}`, `RedeliveryFailed`,
//!   `RedeliveryArrived`, `DeliveryUnrecoverable`. The ask is committed before the `POST`, and
//!   the aggregate accepts `RequestRedelivery{attempt}` only when that attempt is due
//!   (`GithubDelivery::next_step`): of two replicas or passes asking at once, one commits and
//!   sends, the other is refused and sends nothing. One lease ([`LEASE_KEY`]) keeps a single
//!   reconciler paging at a time besides.
//! - **Bounded.** An ask that has not arrived within the arrival timeout is asked again, at most
//!   `max_attempts` times, then reported unrecoverable; one whose window has closed is reported,
//!   never asked; GitHub's refusal (404, 422) is reported at once.
//! - **Rate limits are waited out** (`Retry-After`, `X-RateLimit-Reset`) by the App client, up
//!   to its bound; beyond it the pass stops and the next one goes on from the checkpoint.
#![forbid(unsafe_code)]

pub mod hook;
pub mod log;
mod pass;
pub mod redeliver;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use hooklog_domain::github_delivery::{GithubDeliveryError, RedeliveryPolicy};
use hooklog_infra::postgres::Lease;
use hooklog_syncer::source::github::AppClient;
use hooklog_syncer::source::SourceError;
use hooklog_write::{CommandBus, CommandError};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use hook::HookLog;
pub use pass::{run_pass, run_pass_over, PassReport};

/// The advisory lock only the working reconciler holds (`hooklog` + 5 in ASCII; the relay has
/// 1, the process manager 2, the syncer's reconcile pass 3, the sealer 4).
pub const LEASE_KEY: i64 = 0x686f_6f6b_6c6f_6705;

/// GitHub-side deliveries found missing from the stream.
pub const FOUND: &str = "hooklog_github_deliveries_missing_total";
/// Redeliveries asked of GitHub (committed and sent).
pub const ASKED: &str = "hooklog_github_redeliveries_requested_total";
/// Missing deliveries that arrived on the stream.
pub const ARRIVED: &str = "hooklog_github_redeliveries_arrived_total";
/// Missing deliveries reported unrecoverable.
pub const UNRECOVERABLE: &str = "hooklog_github_deliveries_unrecoverable_total";
/// Redelivery requests GitHub refused.
pub const REFUSED: &str = "hooklog_github_redeliveries_refused_total";

/// How the reconciler works.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// The App whose log is read (the checkpoint's key).
    pub app_id: u64,
    /// Between passes.
    pub interval: Duration,
    /// Attempts younger than this are left to the next pass.
    pub settle: Duration,
    /// When redeliveries are asked for.
    pub policy: RedeliveryPolicy,
    /// The longest a pass waits for the `deliveries` read model to catch up with the stream.
    pub projection_wait: Duration,
    /// How often a standing-by reconciler tries the lease.
    pub lock_retry: Duration,
}

impl ReconcilerConfig {
    /// From `HOOKLOG_GITHUB_RECONCILE_*` and `HOOKLOG_GITHUB_REDELIVERY_*`.
    pub fn from_settings(app_id: u64, settings: &hooklog_infra::config::Settings) -> Self {
        Self {
            interval: settings.github_reconcile_interval,
            settle: settings.github_reconcile_settle,
            policy: RedeliveryPolicy {
                arrival_timeout: settings.github_redelivery_timeout,
                max_attempts: settings.github_redelivery_attempts,
                ..RedeliveryPolicy::default()
            },
            ..Self::new(app_id)
        }
    }

    pub fn new(app_id: u64) -> Self {
        Self {
            app_id,
            interval: Duration::from_secs(300),
            settle: Duration::from_secs(120),
            policy: RedeliveryPolicy::default(),
            projection_wait: Duration::from_secs(30),
            lock_retry: Duration::from_secs(5),
        }
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("GitHub: {0}")]
    Github(SourceError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("recording GitHub delivery {guid}: {error}")]
    Write { guid: String, error: String },
    /// The deliveries read model is behind the stream: judging now could ask for stored ones.
    #[error(
        "the deliveries read model is at sequence {position} of GITHUB_DELIVERIES' {last} after \
         {}s; judging nothing this pass (is the projector running?)",
        waited.as_secs()
    )]
    Lagging {
        position: u64,
        last: u64,
        waited: Duration,
    },
}

impl ReconcileError {
    pub(crate) fn write(guid: &str, err: CommandError<GithubDeliveryError>) -> Self {
        Self::Write {
            guid: guid.to_owned(),
            error: err.to_string(),
        }
    }
}

/// What a reconciler needs.
#[derive(Clone)]
pub struct Reconciler {
    pub config: ReconcilerConfig,
    pub pool: PgPool,
    pub bus: CommandBus,
    pub js: jetstream::Context,
    pub client: Arc<AppClient>,
}

/// Runs a pass every interval while this process holds [`LEASE_KEY`], until `shutdown`.
pub async fn run(reconciler: Reconciler, shutdown: CancellationToken) {
    let Reconciler {
        config,
        pool,
        bus,
        js,
        client,
    } = reconciler;
    let mut standing_by = false;
    while !shutdown.is_cancelled() {
        match Lease::take(&pool, LEASE_KEY).await {
            Ok(Some(lease)) => {
                standing_by = false;
                lead(&config, &pool, &bus, &js, &client, lease, &shutdown).await;
            }
            Ok(None) if !standing_by => {
                tracing::info!("another GitHub reconciler holds the lease; standing by");
                standing_by = true;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot take the GitHub reconciler lease yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.lock_retry) => {}
        }
    }
    tracing::info!("GitHub reconciler stopped");
}

async fn lead(
    config: &ReconcilerConfig,
    pool: &PgPool,
    bus: &CommandBus,
    js: &jetstream::Context,
    client: &AppClient,
    mut lease: Lease,
    shutdown: &CancellationToken,
) {
    tracing::info!(
        app_id = config.app_id,
        interval_s = config.interval.as_secs(),
        "took the GitHub reconciler lease; reconciling with the App's delivery log"
    );
    loop {
        if let Err(err) = lease.check().await {
            tracing::error!(error = %err, "lost the GitHub reconciler lease; standing down");
            break;
        }
        let pass = run_pass(config, pool, bus, js, client);
        tokio::select! {
            () = shutdown.cancelled() => break,
            result = pass => match result {
                Ok(report) => tracing::info!(
                    pages = report.pages,
                    judged = report.judged,
                    found = report.found,
                    asked = report.asked,
                    arrived = report.arrived,
                    unrecoverable = report.unrecoverable,
                    "GitHub reconcile pass done"
                ),
                Err(err) => tracing::error!(error = %err, "GitHub reconcile pass failed; the next one goes on from the checkpoint"),
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
    lease.release().await;
}
