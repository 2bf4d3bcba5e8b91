//! What a run prints: the figures, the faults, what the checks found. A run passes when it
//! found nothing: no acknowledged delivery missing from the stream or undecided, no head
//! synced twice, no copy behind its branch, no cascade left undone, projections equal to a
//! rebuild and `hooklog audit verify` clean.

use std::fmt;

use super::load::Tally;

#[derive(Debug, Default)]
pub struct Report {
    pub form: String,
    pub postgres: String,
    pub nats: String,
    pub rate: u32,
    pub load_secs: f64,
    pub sent: u64,
    pub pushes: u64,
    pub targets: usize,
    pub tally: Tally,
    pub acknowledged: u64,
    pub stored: u64,
    pub stream_messages: u64,
    pub stored_unacknowledged: u64,
    pub decided: u64,
    pub processed: u64,
    pub ignored: u64,
    pub dead_lettered: u64,
    pub decided_on_redelivery: u64,
    pub faults: Vec<String>,
    /// Cluster mode: each lost node's leader election and the 503s it explains.
    pub elections: Vec<String>,
    /// Deliberate faults in what the suite checks (`--sabotage`), which must make it fail.
    pub sabotage: Vec<String>,
    pub syncs_requested: u64,
    pub syncs_completed: u64,
    pub syncs_partial: u64,
    pub syncs_failed: u64,
    pub syncs_by_reason: Vec<(String, u64)>,
    pub double_syncs: u64,
    /// Syncs that took a copy back to an older commit than it held.
    pub moved_back: Vec<String>,
    pub converged: usize,
    pub installations_deleted: usize,
    pub targets_removed: usize,
    pub rebuild: String,
    pub audit: String,
    pub restarts: u32,
    pub exits: Vec<String>,
    pub unclean_stops: Vec<String>,
    pub timings: Vec<(&'static str, f64)>,
    /// Everything that makes the run fail, each naming what was lost or repeated.
    pub findings: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let other: Vec<String> = t.other.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        writeln!(f, "hooklog fault-injection suite, {}", self.form)?;
        writeln!(f, "  PostgreSQL             {}", self.postgres)?;
        writeln!(f, "  NATS                   {}", self.nats)?;
        writeln!(
            f,
            "  load                   {:.1} s at {}/s: {} pushes to {} tracked branches, pings, installations created and deleted, pushes to untracked branches",
            self.load_secs, self.rate, self.pushes, self.targets
        )?;
        writeln!(
            f,
            "  sent                   {} deliveries ({} requests, deliberate redeliveries included)",
            self.sent, t.attempts
        )?;
        writeln!(
            f,
            "  acknowledged (2xx)     {} ({} at the first request; requests answered 503: {}, with no answer: {}, other: {}; never acknowledged: {})",
            self.acknowledged,
            t.acked_first_time,
            t.answered_503,
            t.connection_errors,
            if other.is_empty() { "none".to_owned() } else { other.join(", ") },
            t.given_up
        )?;
        writeln!(
            f,
            "  stored                 {} delivery ids in GITHUB_DELIVERIES ({} messages; {} stored without a 2xx reaching the sender)",
            self.stored, self.stream_messages, self.stored_unacknowledged
        )?;
        writeln!(
            f,
            "  decided                {} (processed {}, ignored {}, dead-lettered {}; {} decided when handed to a worker again)",
            self.decided, self.processed, self.ignored, self.dead_lettered, self.decided_on_redelivery
        )?;
        writeln!(
            f,
            "  duplicates suppressed  {} (2xx answers with \"duplicate\": true; deliberate redeliveries: {} sent, {} answered duplicate, {} stored again, {} unanswered)",
            t.duplicates,
            t.redeliveries_sent,
            t.redeliveries_duplicate,
            t.redeliveries_stored_again.len(),
            t.redeliveries_not_answered
        )?;
        writeln!(f, "  faults injected        {}", self.faults.len())?;
        for fault in &self.faults {
            writeln!(f, "    {fault}")?;
        }
        for election in &self.elections {
            writeln!(f, "    {election}")?;
        }
        for sabotage in &self.sabotage {
            writeln!(f, "    SABOTAGE (must be caught): {sabotage}")?;
        }
        let reasons: Vec<String> = self
            .syncs_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        writeln!(
            f,
            "  syncs                  {} requested ({}), {} completed ({} partial), {} failed; heads synced twice: {}; copies moved back to an older commit: {}",
            self.syncs_requested,
            reasons.join(", "),
            self.syncs_completed,
            self.syncs_partial,
            self.syncs_failed,
            self.double_syncs,
            self.moved_back.len()
        )?;
        for moved in self.moved_back.iter().take(5) {
            writeln!(f, "    moved back: {moved}")?;
        }
        writeln!(
            f,
            "  targets                {} of {} copies at their branch head; {} installations deleted, {} of their targets removed",
            self.converged, self.targets, self.installations_deleted, self.targets_removed
        )?;
        writeln!(f, "  projections rebuild    {}", self.rebuild)?;
        writeln!(f, "  audit verify           {}", self.audit)?;
        writeln!(
            f,
            "  processes              {} restarts; exited on their own: {}; not stopping cleanly on SIGTERM at the end: {}",
            self.restarts,
            if self.exits.is_empty() { "none".to_owned() } else { self.exits.len().to_string() },
            if self.unclean_stops.is_empty() { "none".to_owned() } else { self.unclean_stops.join(", ") }
        )?;
        for exit in &self.exits {
            writeln!(f, "    {exit}")?;
        }
        let timings: Vec<String> = self
            .timings
            .iter()
            .map(|(what, secs)| format!("{what} {secs:.1} s"))
            .collect();
        writeln!(f, "  time                   {}", timings.join(", "))?;
        if self.findings.is_empty() {
            writeln!(
                f,
                "  result                 PASS: nothing lost, nothing synced twice"
            )
        } else {
            writeln!(
                f,
                "  result                 FAIL: {} findings",
                self.findings.len()
            )?;
            for finding in &self.findings {
                writeln!(f, "    {finding}")?;
            }
            Ok(())
        }
    }
}
