//! The `deliveries` projection: rows from message headers and payloads (JSON or GitHub's form
//! encoding), later copies of a delivery id marked duplicate, and the worker's outcome joined
//! when read.

use async_nats::HeaderMap;
use hooklog_infra::streams::{self, delivery_headers as h};
use hooklog_projections::query::{self, DeliveryFilter, PageRequest};
use hooklog_projections::Projection;

use crate::support::Env;

async fn publish(env: &Env, event: &str, id: &str, content_type: &str, body: &[u8]) {
    let mut headers = HeaderMap::new();
    headers.insert(h::EVENT, event);
    headers.insert(h::DELIVERY, id);
    headers.insert(h::CONTENT_TYPE, content_type);
    headers.insert(h::RECEIVED_AT, "2026-11-23T10:00:00.000001Z");
    headers.insert(h::BODY_SHA256, "ab".repeat(32).as_str());
    env.js
        .publish_with_headers(
            streams::delivery_subject(event),
            headers,
            body.to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("PubAck");
}

#[tokio::test]
async fn deliveries_are_recorded_with_their_payload_facts_outcome_and_duplicates() {
    let env = Env::start().await;
    let push = br#"{"ref":"refs/heads/main","installation":{"id":5},"repository":{"id":77,"full_name":"octo/docs"}}"#;
    publish(&env, "push", "d-1", "application/json", push).await;
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(br#"{"action":"created","installation":{"id":5}}"#)
            .collect::<String>()
    );
    publish(
        &env,
        "installation",
        "d-2",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    )
    .await;
    publish(&env, "star", "d-3", "application/json", b"not json at all").await;
    publish(&env, "push", "d-1", "application/json", push).await;
    sqlx::query(
        "INSERT INTO delivery_outcomes (delivery_id, stream_sequence, event, outcome, detail, attempts) \
         VALUES ('d-1', 1, 'push', 'processed', '', 1), ('d-3', 3, 'star', 'ignored', 'not acted on', 1)",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let projector = env.projector(1000);
    env.caught_up(Projection::Deliveries).await;
    projector.stop().await;

    let all = query::deliveries(
        &env.pool,
        &DeliveryFilter::default(),
        &PageRequest::default(),
    )
    .await
    .unwrap();
    /// Sequence, delivery id, outcome, action, installation.
    type Row<'a> = (i64, &'a str, &'a str, Option<&'a str>, Option<i64>);
    let summary: Vec<Row> = all
        .items
        .iter()
        .map(|d| {
            (
                d.stream_sequence,
                d.delivery_id.as_str(),
                d.outcome.as_str(),
                d.action.as_deref(),
                d.installation_id,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "d-1", "processed", None, Some(5)),
            (2, "d-2", "accepted", Some("created"), Some(5)),
            (3, "d-3", "ignored", None, None),
            (4, "d-1", "duplicate", None, Some(5)),
        ]
    );
    assert_eq!(all.items[0].repository.as_deref(), Some("octo/docs"));
    assert_eq!(all.items[3].duplicate_of, Some(1));

    let ignored = query::deliveries(
        &env.pool,
        &DeliveryFilter {
            outcome: Some("ignored".into()),
            ..Default::default()
        },
        &PageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(ignored.items.len(), 1);
    assert_eq!(
        ignored.items[0].outcome_detail.as_deref(),
        Some("not acted on")
    );

    let detail = query::delivery(&env.pool, "d-1")
        .await
        .unwrap()
        .expect("d-1");
    assert_eq!(detail.delivery.stream_sequence, 1);
    assert_eq!(detail.redeliveries, [4]);
    assert!(query::delivery(&env.pool, "nope").await.unwrap().is_none());

    let err = query::deliveries(
        &env.pool,
        &DeliveryFilter {
            event: Some("Push; DROP".into()),
            ..Default::default()
        },
        &PageRequest::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, query::QueryError::BadFilter(_)), "{err}");
}
