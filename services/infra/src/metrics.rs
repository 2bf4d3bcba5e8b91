//! The process-wide Prometheus recorder behind the `metrics` macros. Every role records with
//! `metrics::counter!`/`histogram!`; the admin listener renders what was recorded at `/metrics`
//! through the [`PrometheusHandle`] that [`install`] returns. Installing is idempotent: a process
//! has one recorder however many servers it starts (tests start many).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

pub use metrics_exporter_prometheus::PrometheusHandle;

/// Time the ingress takes to answer a webhook, by status.
pub const INGRESS_REQUEST_DURATION: &str = "hooklog_ingress_request_duration_seconds";
/// Webhook requests answered, by status.
pub const INGRESS_DELIVERIES: &str = "hooklog_ingress_deliveries_total";
/// Deliveries the worker settled, by outcome (`processed`, `ignored`, `dead_letter`).
pub const WORKER_DELIVERIES: &str = "hooklog_worker_deliveries_total";
/// Dead letters the worker recorded.
pub const DEAD_LETTERS_RECORDED: &str = "hooklog_dead_letters_total";
/// Syncs the syncer finished, by result (`completed`, `partial`, `failed`).
pub const SYNCER_SYNCS: &str = "hooklog_syncer_syncs_total";
/// Time from a sync's start to its stored result, by result.
pub const SYNCER_SYNC_DURATION: &str = "hooklog_syncer_sync_duration_seconds";
/// Blobs the syncer read from sources (only what changed is fetched).
pub const SYNC_BLOBS_FETCHED: &str = "hooklog_syncer_blobs_fetched_total";
/// Syncs the reconcile loop requested or re-ran, by why (`stale`, `retry`, `head_moved`).
pub const RECONCILE_ACTIONS: &str = "hooklog_syncer_reconcile_actions_total";
/// Events the process manager handled, by what came of them (`reacted`, `none`, `retry`,
/// `unreadable`).
pub const PROCESS_MANAGER_EVENTS: &str = "hooklog_process_manager_events_total";
/// Commands the process manager sent, by result (`done`, `refused`, `compensated`).
pub const PROCESS_MANAGER_STEPS: &str = "hooklog_process_manager_steps_total";

/// Buckets for request latencies: a stored delivery answers in milliseconds, a slow JetStream in
/// seconds (GitHub gives up after 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes, so a
/// process that is never scraped does not keep every sample.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the Prometheus metrics recorder: {0}")]
pub struct MetricsError(String);

static RECORDER: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();

/// Installs the recorder on first call (with its upkeep thread) and returns its handle; later
/// calls return the same handle. Fails only when another recorder was installed first.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(INGRESS_REQUEST_DURATION.to_owned()),
                    LATENCY_BUCKETS,
                )
                .and_then(|builder| builder.install_recorder())
                .map_err(|err| MetricsError(err.to_string()))?;
            describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                })
                .map_err(|err| MetricsError(err.to_string()))?;
            Ok(handle)
        })
        .clone()
}

/// `# HELP` texts of the metrics recorded as they happen.
fn describe() {
    metrics::describe_histogram!(
        INGRESS_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time the webhook ingress took to answer, by HTTP status."
    );
    metrics::describe_counter!(
        INGRESS_DELIVERIES,
        "Webhook requests the ingress answered, by HTTP status."
    );
    metrics::describe_counter!(
        WORKER_DELIVERIES,
        "Deliveries the worker settled, by outcome (processed, ignored, dead_letter)."
    );
    metrics::describe_counter!(DEAD_LETTERS_RECORDED, "Dead letters the worker recorded.");
    metrics::describe_counter!(
        SYNCER_SYNCS,
        "Syncs the syncer finished, by result (completed, partial, failed)."
    );
    metrics::describe_histogram!(
        SYNCER_SYNC_DURATION,
        metrics::Unit::Seconds,
        "Time from a sync's start to its stored result, by result."
    );
    metrics::describe_counter!(
        SYNC_BLOBS_FETCHED,
        "Blobs the syncer read from sources (only what changed is fetched)."
    );
    metrics::describe_counter!(
        RECONCILE_ACTIONS,
        "Syncs the reconcile loop re-ran or requested, by reason (stale, retry, head_moved)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_gives_the_same_recorder() {
        let first = install().unwrap();
        let second = install().unwrap();
        metrics::counter!(WORKER_DELIVERIES, "outcome" => "processed").increment(1);
        assert!(first.render().contains(WORKER_DELIVERIES));
        assert!(second.render().contains(WORKER_DELIVERIES));
    }
}
