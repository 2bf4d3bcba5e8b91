//! The `deliveries` projection: one row per message of `GITHUB_DELIVERIES`, with what an admin
//! filters on read from the headers and the first levels of the payload (action, installation,
//! repository). A payload that is not the JSON hooklog expects is still a delivery: its row
//! keeps the headers' facts and leaves the payload's empty.

use std::collections::HashMap;

use hooklog_domain::github::events::json_document;
use hooklog_infra::streams::delivery_headers as h;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::connector::store::insert;
use crate::projector::{Applied, ProjectorError};
use crate::StreamMessage;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryRow {
    pub stream_sequence: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
    pub repository: Option<String>,
    pub hook_id: Option<String>,
    pub content_type: Option<String>,
    pub body_sha256: String,
    pub size: i64,
    pub received_at: String,
    pub duplicate_of: Option<i64>,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

#[derive(Deserialize)]
struct RepositoryRef {
    id: i64,
    full_name: Option<String>,
}

/// The few payload fields a delivery row keeps; serde skips the rest without building it.
#[derive(Deserialize, Default)]
struct Summary {
    action: Option<String>,
    installation: Option<Id>,
    repository: Option<RepositoryRef>,
}

fn summary(content_type: Option<&str>, body: &[u8]) -> Summary {
    json_document(content_type, body)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

fn row(message: &StreamMessage) -> DeliveryRow {
    let header = |name| message.header(name).map(str::to_owned);
    let content_type = header(h::CONTENT_TYPE);
    let summary = summary(content_type.as_deref(), &message.payload);
    // The ingress always sets these; a message without them is recorded with what the stream
    // itself knows (its timestamp, the digest of its bytes).
    let received_at = header(h::RECEIVED_AT)
        .filter(|at| OffsetDateTime::parse(at, &Rfc3339).is_ok())
        .unwrap_or_else(|| message.published.format(&Rfc3339).unwrap_or_default());
    let body_sha256 =
        header(h::BODY_SHA256).unwrap_or_else(|| hex::encode(Sha256::digest(&message.payload)));
    DeliveryRow {
        stream_sequence: message.sequence as i64,
        delivery_id: header(h::DELIVERY).unwrap_or_default(),
        event: header(h::EVENT).unwrap_or_default(),
        action: summary.action,
        installation_id: summary.installation.map(|i| i.id),
        repository_id: summary.repository.as_ref().map(|r| r.id),
        repository: summary.repository.and_then(|r| r.full_name),
        hook_id: header(h::HOOK_ID),
        content_type,
        body_sha256,
        size: message.payload.len() as i64,
        received_at,
        duplicate_of: None,
    }
}

pub(crate) async fn apply(
    conn: &mut PgConnection,
    batch: &[StreamMessage],
) -> Result<Applied, ProjectorError> {
    let mut rows: Vec<DeliveryRow> = batch.iter().map(row).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
    let earlier: Vec<(String, Option<i64>)> = sqlx::query_as(
        // One index probe per id, written as a subquery per id so that no plan can scan the
        // table instead: without statistics (a server without autovacuum never gathers them),
        // a join on the ids is planned as a hash join over the whole, growing table.
        "SELECT ids.id, (SELECT d.stream_sequence FROM deliveries d WHERE d.delivery_id = ids.id \
                         ORDER BY d.stream_sequence LIMIT 1) \
         FROM unnest($1::text[]) AS ids(id)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut first: HashMap<String, i64> = earlier
        .into_iter()
        .filter_map(|(id, sequence)| Some((id, sequence?)))
        .collect();
    for row in &mut rows {
        match first.get(&row.delivery_id) {
            Some(&sequence) => row.duplicate_of = Some(sequence),
            None => {
                first.insert(row.delivery_id.clone(), row.stream_sequence);
            }
        }
    }
    insert(conn, "deliveries", &rows).await?;
    Ok(Applied::default())
}
