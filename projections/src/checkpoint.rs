//! Checkpoints: the last stream sequence a projection applied, advanced in the transaction that
//! applied it. Advancing is conditional on the position the projector started from, so two
//! projectors (or a projector and a rebuild) never both commit the same messages.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Projection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: u64,
    pub event_time: Option<OffsetDateTime>,
}

/// The checkpoint of `projection`, created at 0 when missing.
pub(crate) async fn load(
    conn: &mut PgConnection,
    projection: Projection,
) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, stream, position) VALUES ($1, $2, 0) \
         ON CONFLICT (projection) DO NOTHING",
    )
    .bind(projection.name())
    .bind(projection.stream())
    .execute(&mut *conn)
    .await?;
    let (position, event_time): (i64, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT position, event_time FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projection.name())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Checkpoint {
        position: position as u64,
        event_time,
    })
}

/// Moves the checkpoint from `from` to `to`; false when it was not at `from` any more (another
/// writer advanced or reset it), in which case the caller must roll back.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    projection: Projection,
    from: u64,
    to: Checkpoint,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projection_checkpoints SET position = $3, event_time = $4 \
         WHERE projection = $1 AND position = $2",
    )
    .bind(projection.name())
    .bind(from as i64)
    .bind(to.position as i64)
    .bind(to.event_time)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
