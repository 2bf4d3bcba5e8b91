//! When the system has settled after the load, and what the suite checks then: each check
//! compares what the load was told (answers) and did (branch heads, deleted installations) with
//! what the stream and the event store hold, and a finding names what was lost or repeated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use async_nats::jetstream;
use sqlx::PgPool;

use super::cluster::Election;
use super::load::{Kind, Tally};
use super::observe::{self, Store, Stored};
use super::repo::Source;
use super::report::Report;

/// What the checks hold the system to, from the load's side.
pub struct Expected {
    /// Every delivery sent: id, kind, answered 2xx.
    pub ledger: Vec<(String, Kind, bool)>,
    /// Each tracked target's id and its branch head (the last push answered 2xx).
    pub heads: Vec<(String, String)>,
    /// The installations to be deleted, each with its targets' ids.
    pub doomed: Vec<(u64, String)>,
}

impl Expected {
    fn acked(&self) -> BTreeSet<&str> {
        self.ledger
            .iter()
            .filter(|d| d.2)
            .map(|d| d.0.as_str())
            .collect()
    }

    /// Installations whose `deleted` delivery was answered 2xx.
    fn deleted(&self) -> Vec<u64> {
        self.ledger
            .iter()
            .filter_map(|(_, kind, acked)| match kind {
                Kind::InstallationDeleted { installation } if *acked => Some(*installation),
                _ => None,
            })
            .collect()
    }

    /// The targets of deleted installations, and whether each was removed.
    fn cascades<'a>(&'a self, store: &'a Store) -> impl Iterator<Item = (&'a (u64, String), bool)> {
        let deleted = self.deleted();
        self.doomed
            .iter()
            .filter(move |(i, _)| deleted.contains(i))
            .map(|d| (d, store.removed_targets.contains(&d.1)))
    }

    fn behind<'a>(&'a self, store: &'a Store) -> impl Iterator<Item = &'a (String, String)> {
        self.heads
            .iter()
            .filter(|(target, head)| store.copy_heads.get(target) != Some(head))
    }

    /// The id with its kind, for findings.
    fn name(&self, id: &str) -> String {
        self.ledger
            .iter()
            .find(|d| d.0 == id)
            .map(|d| format!("{id} ({:?})", d.1))
            .unwrap_or_else(|| id.to_owned())
    }
}

/// What is still to happen before the checks can run (empty: settled).
pub async fn settle(
    js: &jetstream::Context,
    pool: &PgPool,
    stored: &mut Stored,
    expected: &Expected,
) -> Vec<String> {
    if let Err(err) = stored.catch_up(js).await {
        return vec![format!("GITHUB_DELIVERIES unreadable: {err:#}")];
    }
    let store = match Store::read(pool).await {
        Ok(store) => store,
        Err(err) => return vec![format!("PostgreSQL unreadable: {err:#}")],
    };
    let acked = expected.acked();
    let undecided = stored
        .copies
        .keys()
        .map(String::as_str)
        .chain(acked.iter().copied())
        .filter(|id| !store.decisions.contains_key(*id))
        .count();
    let counts = [
        (undecided, "deliveries undecided"),
        (store.outbox as usize, "events in the outbox"),
        (store.in_flight().len(), "syncs in flight"),
        (
            expected.behind(&store).count(),
            "copies behind their branch",
        ),
        (
            expected.cascades(&store).filter(|(_, done)| !done).count(),
            "targets of deleted installations not removed",
        ),
    ];
    let mut pending: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    for (what, at, end) in observe::behind(js, &store).await {
        pending.push(format!("{what} at {at} of {end}"));
    }
    if store.positions.len() < 2 {
        pending.push("a projection has no checkpoint yet".to_owned());
    }
    pending
}

/// Runs the checks on the settled system, filling in `report`'s figures and findings.
pub async fn check(
    report: &mut Report,
    js: &jetstream::Context,
    pool: &PgPool,
    stored: &mut Stored,
    expected: &Expected,
    tally: Tally,
    source: &Source,
) -> anyhow::Result<()> {
    stored.catch_up(js).await?;
    let store = Store::read(pool).await?;
    let acked = expected.acked();
    report.tally = tally;
    report.sent = expected.ledger.len() as u64;
    report.pushes = expected
        .ledger
        .iter()
        .filter(|d| matches!(d.1, Kind::Push { .. }))
        .count() as u64;
    report.acknowledged = acked.len() as u64;
    report.stored = stored.copies.len() as u64;
    report.stream_messages = stored.messages;
    report.stored_unacknowledged = stored
        .copies
        .keys()
        .filter(|id| !acked.contains(id.as_str()))
        .count() as u64;
    deliveries(report, stored, &store, expected);
    syncs(report, &store, expected, source);

    let findings = &mut report.findings;
    let left: Vec<String> = expected
        .cascades(&store)
        .filter(|(_, done)| !done)
        .map(|((i, t), _)| format!("target {t} of installation {i}"))
        .collect();
    report.installations_deleted = expected.deleted().len();
    report.targets_removed = expected.cascades(&store).filter(|(_, done)| *done).count();
    if !left.is_empty() {
        findings.push(format!(
            "CASCADE UNDONE: targets of deleted installations not removed: {}",
            sample(&left)
        ));
    }
    for (what, at, end) in observe::behind(js, &store).await {
        findings.push(format!("BEHIND: {what} at {at} of {end} after the drain"));
    }
    Ok(())
}

/// Every delivery answered 2xx stored, every stored one decided, nothing twice.
fn deliveries(report: &mut Report, stored: &Stored, store: &Store, expected: &Expected) {
    let acked = expected.acked();
    let findings = &mut report.findings;
    let lost: Vec<String> = acked
        .iter()
        .filter(|id| !stored.copies.contains_key(**id))
        .map(|id| expected.name(id))
        .collect();
    if !lost.is_empty() {
        findings.push(format!(
            "LOST: {} deliveries answered 2xx are not on GITHUB_DELIVERIES: {}",
            lost.len(),
            sample(&lost)
        ));
    }
    let undecided: Vec<String> = stored
        .copies
        .keys()
        .map(String::as_str)
        .chain(acked.iter().copied())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .filter(|id| !store.decisions.contains_key(*id))
        .map(|id| expected.name(id))
        .collect();
    if !undecided.is_empty() {
        findings.push(format!(
            "UNDECIDED: {} deliveries (answered 2xx or stored) have no decision in the event store: {}",
            undecided.len(),
            sample(&undecided)
        ));
    }
    let twice: Vec<String> = store
        .decisions
        .iter()
        .filter(|(_, d)| d.len() > 1)
        .map(|(id, d)| format!("{} {d:?}", expected.name(id)))
        .collect();
    if !twice.is_empty() {
        findings.push(format!("DECIDED TWICE: {}", sample(&twice)));
    }
    let copies: Vec<String> = stored
        .copies
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("{} ×{n}", expected.name(id)))
        .collect();
    if !copies.is_empty() {
        findings.push(format!(
            "STORED TWICE: {} delivery ids are on GITHUB_DELIVERIES more than once (the ingress's de-duplication let them through): {}",
            copies.len(),
            sample(&copies)
        ));
    }
    if !report.tally.redeliveries_stored_again.is_empty() {
        findings.push(format!(
            "REDELIVERY STORED: redeliveries of acknowledged deliveries answered as new: {}",
            sample(&report.tally.redeliveries_stored_again)
        ));
    }
    for decision in store.decisions.values().filter_map(|d| d.first()) {
        match decision.as_str() {
            "DeliveryProcessed" => report.processed += 1,
            "DeliveryIgnored" => report.ignored += 1,
            _ => report.dead_lettered += 1,
        }
    }
    report.decided = store.decisions.len() as u64;
    report.decided_on_redelivery = store.decided_on_redelivery;
    let dead: Vec<String> = store
        .decisions
        .iter()
        .filter(|(_, d)| d.iter().any(|k| k == "DeliveryDeadLettered"))
        .map(|(id, _)| expected.name(id))
        .collect();
    if !dead.is_empty() {
        findings.push(format!(
            "DEAD-LETTERED: every delivery sent is valid, yet {} were dead-lettered: {}",
            dead.len(),
            sample(&dead)
        ));
    }
}

/// No head synced twice, nothing left in flight, every copy at its branch head.
fn syncs(report: &mut Report, store: &Store, expected: &Expected, source: &Source) {
    report.syncs_requested = store.syncs.len() as u64;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for run in &store.syncs {
        *reasons.entry(run.reason.clone()).or_default() += 1;
        match run.outcome.as_deref() {
            Some("completed") => report.syncs_completed += 1,
            Some("partial") => {
                report.syncs_completed += 1;
                report.syncs_partial += 1
            }
            Some(_) => report.syncs_failed += 1,
            None => {}
        }
    }
    report.syncs_by_reason = reasons.into_iter().collect();
    let doubles = store.double_syncs();
    report.double_syncs = doubles.len() as u64;
    let findings = &mut report.findings;
    if !doubles.is_empty() {
        let named: Vec<String> = doubles
            .iter()
            .map(|(t, h, n)| {
                let reasons: Vec<&str> = store
                    .syncs
                    .iter()
                    .filter(|r| &r.target == t && &r.head == h)
                    .map(|r| r.reason.as_str())
                    .collect();
                format!(
                    "target {t} head {h} ×{n} (requested by {})",
                    reasons.join(", then ")
                )
            })
            .collect();
        findings.push(format!("SYNCED TWICE: {}", sample(&named)));
    }
    let in_flight: Vec<String> = store
        .in_flight()
        .iter()
        .map(|r| format!("target {} head {}", r.target, r.head))
        .collect();
    if !in_flight.is_empty() {
        findings.push(format!(
            "NOT FINISHED: {} syncs still in flight after the drain: {}",
            in_flight.len(),
            sample(&in_flight)
        ));
    }
    let behind: Vec<String> = expected
        .behind(store)
        .map(|(target, head)| {
            format!(
                "target {target} holds {} (branch head {head})",
                store
                    .copy_heads
                    .get(target)
                    .map_or("nothing", String::as_str)
            )
        })
        .collect();
    report.converged = expected.heads.len() - behind.len();
    if !behind.is_empty() {
        findings.push(format!(
            "BEHIND: {} copies are not at their branch head (the last push answered 2xx): {}",
            behind.len(),
            sample(&behind)
        ));
    }
    report.moved_back = moved_back(store, expected, source);
}

/// Completed syncs that took a target's copy to an older commit of its branch than the one it
/// held (the chain of commits is the suite's own, so "older" is known exactly).
fn moved_back(store: &Store, expected: &Expected, source: &Source) -> Vec<String> {
    let mut moved = vec![];
    for (t, (target, _)) in expected.heads.iter().enumerate() {
        let mut copy: Option<usize> = None;
        for run in store.syncs.iter().filter(|r| &r.target == target) {
            if !matches!(run.outcome.as_deref(), Some("completed" | "partial")) {
                continue;
            }
            let k = source.position(t, &run.head);
            if let (Some(before), Some(k)) = (copy, k) {
                if k < before {
                    moved.push(format!(
                        "target {target} from commit {before} to {k} ({} sync of {})",
                        run.reason, run.head
                    ));
                }
            }
            copy = k.or(copy);
        }
    }
    moved
}

/// The first five of `items`, and how many more.
pub fn sample(items: &[String]) -> String {
    let mut shown = items.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    if items.len() > 5 {
        shown.push_str(&format!("; and {} more", items.len() - 5));
    }
    shown
}

/// Cluster mode: every request answered 503 was sent within a leader election of a lost node
/// (`unavailable`: when each was sent). One line per election for the report; a finding for an
/// election that never ended and for each 503 outside every election.
pub fn unavailability(report: &mut Report, elections: &[Election], unavailable: &[Instant]) {
    for election in elections {
        let covered: Vec<&Instant> = unavailable
            .iter()
            .filter(|sent| election.covers(**sent))
            .collect();
        let last = covered
            .iter()
            .map(|sent| sent.saturating_duration_since(election.at))
            .max();
        let took = match election.took {
            Some(took) => format!("{:.2} s", took.as_secs_f64()),
            None => {
                report.findings.push(
                    "a lost node's stream leader was never replaced while it was away".to_owned(),
                );
                "not seen".to_owned()
            }
        };
        report.elections.push(format!(
            "leader election {took}: {} requests answered 503, {}",
            covered.len(),
            match last {
                Some(last) => format!(
                    "the last sent {:.2} s after the node was lost",
                    last.as_secs_f64()
                ),
                None => "none".to_owned(),
            }
        ));
    }
    let outside: Vec<&Instant> = unavailable
        .iter()
        .filter(|sent| !elections.iter().any(|e| e.covers(**sent)))
        .collect();
    if !outside.is_empty() {
        report.findings.push(format!(
            "{} requests answered 503 outside every leader election (a cluster that lost one node must keep taking deliveries)",
            outside.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{unavailability, Election, Report};

    fn election(at: Instant, took: Option<u64>) -> Election {
        Election {
            at,
            took: took.map(Duration::from_millis),
        }
    }

    #[test]
    fn a_503_sent_within_a_leader_election_is_no_finding() {
        let lost = Instant::now();
        let mut report = Report::default();
        let sent = [lost, lost + Duration::from_millis(3_000)];
        unavailability(&mut report, &[election(lost, Some(2_500))], &sent);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.elections.len(), 1);
        assert!(
            report.elections[0].contains("2 requests answered 503"),
            "{:?}",
            report.elections
        );
    }

    #[test]
    fn a_503_sent_after_the_election_ended_is_a_finding() {
        let lost = Instant::now();
        let mut report = Report::default();
        // The election took 2.5 s; a 503 sent 5 s after the loss is the cluster failing to serve.
        let sent = [lost + Duration::from_secs(5)];
        unavailability(&mut report, &[election(lost, Some(2_500))], &sent);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(report.findings[0].contains("outside every leader election"));
    }

    #[test]
    fn a_503_with_no_node_lost_and_a_leader_never_replaced_are_findings() {
        let now = Instant::now();
        let mut report = Report::default();
        unavailability(&mut report, &[], &[now]);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let mut report = Report::default();
        unavailability(&mut report, &[election(now, None)], &[]);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(report.findings[0].contains("never replaced"));
    }
}
