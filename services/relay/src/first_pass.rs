//! [`FirstPass`]: exactly once across crashes, beyond JetStream's duplicate window.
//!
//! A relay that takes the lock may find rows that an earlier holder already published but died
//! before deleting (or whose delete failed). Re-publishing them with the same `Nats-Msg-Id` is
//! harmless inside the stream's duplicate window, but the previous holder may have died long
//! before. So for every row that was already in the outbox when the lock was taken, the relay
//! first looks at the last message on the row's subject (one subject per aggregate): if its
//! `Hooklog-Sequence` is at or past the row's sequence, the event is on the stream and the row
//! is only deleted. This is sound because events of one aggregate reach the stream in sequence
//! order, so the last one on the subject tells which of its events are there.
//!
//! Rows committed after the lock was taken cannot have been published by anyone else, and skip
//! the check. The last sequence seen per aggregate is remembered during the pass, so a backlog
//! costs one look-up per aggregate, not one per row.

use std::collections::HashMap;

/// What the relay should do with a row before publishing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Publish; nobody else can have published it.
    Publish,
    /// Ask the stream for the aggregate's last event first.
    AskStream,
    /// The stream already holds this event (or a later one of its aggregate): delete the row.
    AlreadyOnStream { last_sequence: u64 },
}

#[derive(Debug)]
pub(crate) struct FirstPass {
    /// The highest outbox id when the lock was taken; `None` once the pass is over.
    until_id: Option<i64>,
    /// Per subject, the last sequence known to be on the stream.
    known: HashMap<String, u64>,
}

impl FirstPass {
    /// A pass over the rows up to `last_id` (the outbox's highest id when the lock was taken).
    pub fn new(last_id: Option<i64>) -> Self {
        Self {
            until_id: last_id,
            known: HashMap::new(),
        }
    }

    /// How to treat the row `outbox_id` holding event `sequence` of the aggregate on `subject`.
    pub fn check(&mut self, outbox_id: i64, subject: &str, sequence: u64) -> Check {
        if !self.covers(outbox_id) {
            return Check::Publish;
        }
        match self.known.get(subject) {
            None => Check::AskStream,
            Some(&last_sequence) if last_sequence >= sequence => {
                Check::AlreadyOnStream { last_sequence }
            }
            Some(_) => Check::Publish,
        }
    }

    /// Whether the row `outbox_id` is part of the pass. Rows come in id order: once one is past
    /// the end, the pass is over, and no later row is part of it.
    pub fn covers(&mut self, outbox_id: i64) -> bool {
        match self.until_id {
            Some(until_id) if outbox_id <= until_id => true,
            _ => {
                self.until_id = None;
                self.known = HashMap::new();
                false
            }
        }
    }

    /// Notes that the stream holds event `sequence` of the aggregate on `subject`.
    pub fn record(&mut self, subject: &str, sequence: u64) {
        if self.until_id.is_none() {
            return;
        }
        let last = self.known.entry(subject.to_owned()).or_insert(sequence);
        *last = (*last).max(sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_before_the_lock_are_checked_once_per_aggregate_and_later_rows_are_not() {
        let mut pass = FirstPass::new(Some(10));
        assert_eq!(pass.check(1, "a", 1), Check::AskStream);
        pass.record("a", 2); // the stream's last event of `a` is its 2nd
        assert_eq!(
            pass.check(2, "a", 2),
            Check::AlreadyOnStream { last_sequence: 2 }
        );
        assert_eq!(pass.check(3, "a", 3), Check::Publish);
        pass.record("a", 3);
        assert_eq!(pass.check(4, "b", 1), Check::AskStream);
        assert_eq!(pass.check(11, "b", 2), Check::Publish);
        // Over: even a row with a lower id (committed late) is not checked again.
        assert_eq!(pass.check(9, "c", 1), Check::Publish);
        assert!(!pass.covers(5));
    }

    #[test]
    fn a_row_past_the_end_ends_the_pass() {
        let mut pass = FirstPass::new(Some(10));
        assert!(pass.covers(10));
        assert!(!pass.covers(11));
        assert!(
            !pass.covers(3),
            "a late row with a lower id is not part of the pass"
        );
        assert_eq!(pass.check(3, "a", 1), Check::Publish);
    }

    #[test]
    fn an_empty_outbox_needs_no_first_pass() {
        let mut pass = FirstPass::new(None);
        assert_eq!(pass.check(1, "a", 1), Check::Publish);
    }
}
