//! Loading and writing the rows of a batch: one query per table each way. Rows travel as JSON
//! (`to_jsonb` out, `json_populate_recordset` in), so a row struct and its table stay one
//! definition apart, and table names resolve through the connection's `search_path` (which is
//! how a rebuild writes into its shadow schema).

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgConnection;

use super::{Envelope, Event, Rows};

/// The rows as the last committed batch left them, kept by the one projector that advances the
/// checkpoint: a batch reads from PostgreSQL only the rows it has not seen. Dropped whenever the
/// projector starts over, so it never outlives a failed or refused transaction.
#[derive(Default)]
pub(crate) struct Cache {
    rows: Rows,
}

impl Cache {
    /// Takes in what a committed batch wrote. Finished sync runs never change again: they leave.
    pub(crate) fn absorb(&mut self, rows: Rows) {
        self.rows.instances.extend(rows.instances);
        self.rows.targets.extend(rows.targets);
        self.rows.github_deliveries.extend(rows.github_deliveries);
        self.rows.connections.extend(rows.connections);
        self.rows.incidents.extend(rows.incidents);
        for (id, run) in rows.sync_runs {
            if run.status == "queued" || run.status == "running" {
                self.rows.sync_runs.insert(id, run);
            } else {
                self.rows.sync_runs.remove(&id);
            }
        }
    }
}

pub(super) async fn load(
    conn: &mut PgConnection,
    envelopes: &[Envelope],
    cache: &Cache,
) -> Result<Rows, sqlx::Error> {
    let mut rows = Rows::default();
    let mut instance_ids = vec![];
    let mut target_ids = vec![];
    let mut guids = vec![];
    let mut connection_ids = vec![];
    let mut incident_ids = vec![];
    for envelope in envelopes {
        let id = &envelope.aggregate_id;
        match envelope.event {
            Event::Instance(_) => match cache.rows.instances.get(id) {
                Some(row) => {
                    rows.instances.insert(id.clone(), row.clone());
                }
                None => instance_ids.push(id.clone()),
            },
            Event::Target(_) => match cache.rows.targets.get(id) {
                Some(row) => {
                    rows.targets.insert(id.clone(), row.clone());
                }
                None => target_ids.push(id.clone()),
            },
            Event::GithubDelivery(ref event) => {
                let guid = super::github::guid_of(event);
                match cache.rows.github_deliveries.get(guid) {
                    Some(row) => {
                        rows.github_deliveries.insert(guid.to_owned(), row.clone());
                    }
                    None => guids.push(guid.to_owned()),
                }
            }
            Event::Connection(ref event) => {
                match cache.rows.connections.get(id) {
                    Some(row) => {
                        rows.connections.insert(id.clone(), row.clone());
                    }
                    None => connection_ids.push(id.clone()),
                }
                if let Some(incident) = super::repositories::incident_of(event) {
                    match cache.rows.incidents.get(&incident) {
                        Some(row) => {
                            rows.incidents.insert(incident, row.clone());
                        }
                        None => incident_ids.push(incident),
                    }
                }
            }
            // A decision depends on no earlier row.
            Event::Delivery(_) => {}
        }
    }
    instance_ids.sort();
    instance_ids.dedup();
    target_ids.sort();
    target_ids.dedup();
    guids.sort();
    guids.dedup();
    connection_ids.sort();
    connection_ids.dedup();
    for row in fetch::<super::repositories::ConnectionRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]::uuid[]) AS ids(id) \
         JOIN repository_connections t ON t.connection_id = ids.id",
        &connection_ids,
    )
    .await?
    {
        rows.connections.insert(row.connection_id.clone(), row);
    }
    incident_ids.sort();
    incident_ids.dedup();
    for row in fetch::<super::repositories::IncidentRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]::uuid[]) AS ids(id) \
         JOIN incidents t ON t.incident_id = ids.id",
        &incident_ids,
    )
    .await?
    {
        rows.incidents.insert(row.incident_id.clone(), row);
    }
    for row in fetch::<super::github::GithubDeliveryRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]) AS ids(id) \
         JOIN github_deliveries t ON t.guid = ids.id",
        &guids,
    )
    .await?
    {
        rows.github_deliveries.insert(row.guid.clone(), row);
    }

    for row in fetch::<super::InstanceRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]) AS ids(id) JOIN instances t ON t.instance_id = ids.id",
        &instance_ids,
    )
    .await?
    {
        rows.instances.insert(row.instance_id.clone(), row);
    }
    for row in fetch::<super::TargetRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]::uuid[]) AS ids(id) \
         JOIN targets t ON t.target_id = ids.id",
        &target_ids,
    )
    .await?
    {
        rows.targets.insert(row.target_id.clone(), row);
    }
    // Every sync event of a batch is about a sync in flight: requested in the batch, or the
    // last one requested of its target, still queued or running. Those are all the runs a
    // batch can change, and each is found by its key.
    let mut in_flight = vec![];
    for target in rows.targets.values() {
        let Some(sync_id) = &target.last_sync_id else {
            continue;
        };
        if target.sync_state != "queued" && target.sync_state != "running" {
            continue;
        }
        match cache.rows.sync_runs.get(sync_id) {
            Some(run) => {
                rows.sync_runs.insert(sync_id.clone(), run.clone());
            }
            None => in_flight.push(sync_id.clone()),
        }
    }
    for row in fetch::<super::SyncRunRow>(
        conn,
        "SELECT to_jsonb(t) FROM unnest($1::text[]::uuid[]) AS ids(id) \
         JOIN sync_runs t ON t.sync_id = ids.id",
        &in_flight,
    )
    .await?
    {
        rows.sync_runs.insert(row.sync_id.clone(), row);
    }
    Ok(rows)
}

/// Rows by key. Callers join on `unnest` of the keys rather than `= ANY`, so that no plan
/// tests every row against the whole key array.
async fn fetch<T: DeserializeOwned + Send + Unpin + 'static>(
    conn: &mut PgConnection,
    sql: &str,
    ids: &[String],
) -> Result<Vec<T>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let rows: Vec<Json<T>> = sqlx::query_scalar(sql).bind(ids).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

pub(super) async fn save(conn: &mut PgConnection, rows: &Rows) -> Result<(), sqlx::Error> {
    replace(conn, "instances", "instance_id", rows.instances.values()).await?;
    replace(conn, "targets", "target_id", rows.targets.values()).await?;
    replace(conn, "sync_runs", "sync_id", rows.sync_runs.values()).await?;
    insert(conn, "delivery_effects", &rows.effects).await?;
    replace(
        conn,
        "delivery_outcomes",
        "delivery_id",
        rows.outcomes.values(),
    )
    .await?;
    replace(
        conn,
        "github_deliveries",
        "guid",
        rows.github_deliveries.values(),
    )
    .await?;
    replace(
        conn,
        "repository_connections",
        "connection_id",
        rows.connections.values(),
    )
    .await?;
    replace(conn, "incidents", "incident_id", rows.incidents.values()).await?;
    replace(
        conn,
        "pull_requests",
        "pull_request_key",
        rows.pull_requests.values(),
    )
    .await?;
    replace(
        conn,
        "dead_letters",
        "stream_sequence",
        rows.dead_letters.values(),
    )
    .await?;
    if !rows.outcomes_removed.is_empty() {
        sqlx::query("DELETE FROM delivery_outcomes WHERE delivery_id = ANY($1)")
            .bind(&rows.outcomes_removed)
            .execute(&mut *conn)
            .await?;
    }
    if !rows.dead_letters_removed.is_empty() {
        sqlx::query("DELETE FROM dead_letters WHERE stream_sequence = ANY($1)")
            .bind(&rows.dead_letters_removed)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Writes `rows` over whatever `table` held under their keys: one upsert, whose columns are
/// the fields of the rows (the struct and the table agree, as `json_populate_recordset` needs).
async fn replace<'a, T: Serialize + 'a>(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    rows: impl ExactSizeIterator<Item = &'a T>,
) -> Result<(), sqlx::Error> {
    if rows.len() == 0 {
        return Ok(());
    }
    let rows: Vec<&T> = rows.collect();
    let columns = match serde_json::to_value(rows[0]) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect::<Vec<_>>(),
        _ => {
            return Err(sqlx::Error::Protocol(format!(
                "{table} rows must be JSON objects"
            )))
        }
    };
    let updates = columns
        .iter()
        .filter(|c| *c != key)
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json) \
         ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ))
    .bind(to_json(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn insert<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    rows: &[T],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)"
    ))
    .bind(to_json(rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rows as JSON text: `json_populate_recordset` reads it without building `jsonb` first.
fn to_json<T: Serialize + ?Sized>(rows: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|err| sqlx::Error::Encode(Box::new(err)))
}
