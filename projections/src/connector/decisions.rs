//! What the worker decided about each delivery (`Delivery` events) as the `delivery_outcomes`
//! and `dead_letters` read models: one row per delivery id, and one per dead letter, written
//! from the event's own fields (its `at` included), so a rebuild writes the same rows.

use hooklog_domain::delivery::{DeliveryEvent, StreamPosition};
use serde::{Deserialize, Serialize};

use super::Rows;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutcomeRow {
    pub delivery_id: String,
    pub stream_sequence: i64,
    pub event: String,
    pub outcome: String,
    pub detail: String,
    pub attempts: i32,
    pub processed_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeadLetterRow {
    pub stream_sequence: i64,
    pub delivery_id: String,
    pub event: String,
    pub reason: String,
    pub attempts: i32,
    pub recorded_at: String,
}

pub(super) fn apply(rows: &mut Rows, event: &DeliveryEvent) {
    // A redriven dead letter is undecided again: its rows go until the next decision.
    if let DeliveryEvent::DeliveryRedriven {
        delivery_id,
        position,
        ..
    } = event
    {
        let sequence = position.stream_sequence as i64;
        rows.outcomes.remove(delivery_id);
        rows.dead_letters.remove(&sequence);
        rows.outcomes_removed.push(delivery_id.clone());
        rows.dead_letters_removed.push(sequence);
        return;
    }
    let (delivery_id, position, outcome, detail, at) = match event {
        DeliveryEvent::DeliveryProcessed {
            delivery_id,
            position,
            detail,
            at,
            ..
        } => (delivery_id, position, "processed", detail, at),
        DeliveryEvent::DeliveryIgnored {
            delivery_id,
            position,
            reason,
            at,
        } => (delivery_id, position, "ignored", reason, at),
        DeliveryEvent::DeliveryDeadLettered {
            delivery_id,
            position,
            reason,
            at,
        } => (delivery_id, position, "dead_letter", reason, at),
        DeliveryEvent::DeliveryRedriven { .. } => unreachable!("handled above"),
    };
    let StreamPosition {
        event: github_event,
        stream_sequence,
        attempts,
    } = position;
    let (sequence, attempts) = (
        *stream_sequence as i64,
        (*attempts).min(i32::MAX as u64) as i32,
    );
    rows.outcomes_removed.retain(|id| id != delivery_id);
    rows.outcomes.insert(
        delivery_id.clone(),
        OutcomeRow {
            delivery_id: delivery_id.clone(),
            stream_sequence: sequence,
            event: github_event.clone(),
            outcome: outcome.to_owned(),
            detail: detail.clone(),
            attempts,
            processed_at: at.to_string(),
        },
    );
    if outcome == "dead_letter" {
        rows.dead_letters_removed.retain(|s| *s != sequence);
        rows.dead_letters.insert(
            sequence,
            DeadLetterRow {
                stream_sequence: sequence,
                delivery_id: delivery_id.clone(),
                event: github_event.clone(),
                reason: detail.clone(),
                attempts,
                recorded_at: at.to_string(),
            },
        );
    }
}
