//! The worker's own tables (`migrations/…_worker.sql`): the outcome of each delivery, which
//! makes processing idempotent per delivery id, and the dead letters.

use sqlx::PgPool;

use crate::process::Outcome;

/// Where a delivery sits on `GITHUB_DELIVERIES`, and how often it was handed out.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub stream_sequence: u64,
    pub attempts: i64,
}

/// The outcome already recorded for `delivery_id`, if any.
pub async fn recorded_outcome(
    pool: &PgPool,
    delivery_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT outcome FROM delivery_outcomes WHERE delivery_id = $1")
        .bind(delivery_id)
        .fetch_optional(pool)
        .await
}

pub async fn record_outcome(
    pool: &PgPool,
    at: Position<'_>,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    insert_outcome(pool, at, outcome.kind.as_str(), &outcome.detail).await
}

async fn insert_outcome<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    at: Position<'_>,
    outcome: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delivery_outcomes (delivery_id, stream_sequence, event, outcome, detail, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(at.delivery_id)
    .bind(at.stream_sequence as i64)
    .bind(at.event)
    .bind(outcome)
    .bind(detail)
    .bind(at.attempts as i32)
    .execute(executor)
    .await
    .map(drop)
}

/// Records a dead letter and the delivery's outcome together.
pub async fn record_dead_letter(
    pool: &PgPool,
    at: Position<'_>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO dead_letters (stream_sequence, delivery_id, event, reason, attempts) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_sequence) DO NOTHING",
    )
    .bind(at.stream_sequence as i64)
    .bind(at.delivery_id)
    .bind(at.event)
    .bind(reason)
    .bind(at.attempts as i32)
    .execute(&mut *tx)
    .await?;
    insert_outcome(&mut *tx, at, "dead_letter", reason).await?;
    tx.commit().await
}
