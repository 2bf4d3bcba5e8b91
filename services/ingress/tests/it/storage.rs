//! What is stored and what is answered for valid deliveries: de-duplication, secret rotation,
//! GitHub's form encoding, the largest payload GitHub sends, and the fail-closed default.

use futures::future::join_all;
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::MAX_DELIVERY_BYTES;
use hooklog_infra::streams::delivery_headers as h;

use crate::support::{config, header, new_delivery_id, receipt, spawn_app, spawn_app_with, SECRET};

const PING: &[u8] = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;

#[tokio::test]
async fn the_same_delivery_sent_50_times_concurrently_is_stored_once() {
    let app = spawn_app().await;
    let delivery_id = new_delivery_id();
    let responses = join_all((0..50).map(|_| {
        app.deliver(
            "push",
            &delivery_id,
            br#"{"ref":"refs/heads/main"}"#.to_vec(),
        )
    }))
    .await;
    let mut receipts = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 202);
        receipts.push(receipt(response).await);
    }
    let originals = receipts.iter().filter(|r| r["duplicate"] == false).count();
    assert_eq!(originals, 1, "exactly one copy is the original");
    assert!(
        receipts
            .iter()
            .all(|r| r["stream_seq"] == receipts[0]["stream_seq"]),
        "duplicates answer like the original"
    );
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn a_redelivery_answers_like_the_original_and_adds_nothing() {
    let app = spawn_app().await;
    let delivery_id = new_delivery_id();
    let first = receipt(
        app.deliver("star", &delivery_id, b"{\"action\":\"created\"}".to_vec())
            .await,
    )
    .await;
    let again = app
        .deliver("star", &delivery_id, b"{\"action\":\"created\"}".to_vec())
        .await;
    assert_eq!(again.status(), 200);
    let again = receipt(again).await;
    assert_eq!(again["stream_seq"], first["stream_seq"]);
    assert_eq!(
        (first["duplicate"].clone(), again["duplicate"].clone()),
        (false.into(), true.into())
    );
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_rotation_and_an_unrelated_one_is_not() {
    let mut config = config();
    let previous = WebhookSecret::new("the secret before rotation");
    config.secrets = vec![WebhookSecret::new(SECRET), previous.clone()];
    let app = spawn_app_with(config).await;

    let signed_with = |secret: &WebhookSecret| Signature::sign(secret, PING).to_string();
    let post = |signature: String| {
        let delivery_id = new_delivery_id();
        let app = &app;
        async move {
            app.post(
                &[
                    ("X-GitHub-Event", "ping"),
                    ("X-GitHub-Delivery", &delivery_id),
                    ("X-Hub-Signature-256", &signature),
                ],
                PING.to_vec(),
            )
            .await
        }
    };
    let accepted = post(signed_with(&previous)).await;
    assert_eq!(accepted.status(), 202);
    let stored = app
        .stored(receipt(accepted).await["stream_seq"].as_u64().unwrap())
        .await;
    assert_eq!(
        header(&stored, h::SECRET_ID),
        Some(previous.id().as_str()),
        "the verifying secret is named"
    );

    let refused = post(signed_with(&WebhookSecret::new("unrelated"))).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn a_form_encoded_delivery_is_accepted_and_stored_as_sent() {
    let app = spawn_app().await;
    let body = format!(
        "payload={}",
        form_urlencoded::byte_serialize(PING).collect::<String>()
    )
    .into_bytes();
    let signature = Signature::sign(&app.secret, &body).to_string();
    let delivery_id = new_delivery_id();
    let response = app
        .post(
            &[
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", &delivery_id),
                ("X-Hub-Signature-256", &signature),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), 202);
    let stored = app
        .stored(receipt(response).await["stream_seq"].as_u64().unwrap())
        .await;
    assert_eq!(stored.payload.as_ref(), body.as_slice());
    assert_eq!(
        header(&stored, h::CONTENT_TYPE),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn hook_and_installation_target_headers_are_kept_and_prefix_the_message_id() {
    let app = spawn_app().await;
    let delivery_id = new_delivery_id();
    let signature = Signature::sign(&app.secret, PING).to_string();
    let headers = [
        ("X-GitHub-Event", "ping"),
        ("X-GitHub-Delivery", delivery_id.as_str()),
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Hook-ID", "123456"),
        ("X-GitHub-Hook-Installation-Target-Type", "integration"),
        ("X-GitHub-Hook-Installation-Target-ID", "789"),
        ("Authorization", "Bearer must-not-be-stored"),
    ];
    let response = app.post(&headers, PING.to_vec()).await;
    assert_eq!(response.status(), 202);
    let stored = app
        .stored(receipt(response).await["stream_seq"].as_u64().unwrap())
        .await;
    assert_eq!(
        header(&stored, "Nats-Msg-Id"),
        Some(format!("123456:{delivery_id}").as_str())
    );
    assert_eq!(header(&stored, h::HOOK_ID), Some("123456"));
    assert_eq!(header(&stored, h::TARGET_TYPE), Some("integration"));
    assert_eq!(header(&stored, h::TARGET_ID), Some("789"));
    assert_eq!(
        header(&stored, "Authorization"),
        None,
        "only allowlisted headers are stored"
    );
}

#[tokio::test]
async fn a_25_mib_delivery_is_stored_whole() {
    let app = spawn_app().await;
    let padding = MAX_DELIVERY_BYTES - br#"{"pad":""}"#.len();
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(padding)).into_bytes();
    assert_eq!(body.len(), MAX_DELIVERY_BYTES);
    let response = app.deliver("push", &new_delivery_id(), body.clone()).await;
    assert_eq!(response.status(), 202);
    let stored = app
        .stored(receipt(response).await["stream_seq"].as_u64().unwrap())
        .await;
    assert!(
        stored.payload.as_ref() == body.as_slice(),
        "25 MiB body stored byte for byte"
    );
}

#[tokio::test]
async fn without_a_secret_every_request_is_not_found_and_nothing_is_stored() {
    let mut config = config();
    config.secrets.clear();
    let app = spawn_app_with(config).await;
    let signature = Signature::sign(&WebhookSecret::new(SECRET), PING).to_string();
    for headers in [
        vec![
            ("X-GitHub-Event", "ping"),
            ("X-GitHub-Delivery", "d-1"),
            ("X-Hub-Signature-256", signature.as_str()),
        ],
        vec![],
    ] {
        assert_eq!(app.post(&headers, PING.to_vec()).await.status(), 404);
    }
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn a_body_sent_in_many_chunks_is_stored_byte_for_byte_with_its_digest() {
    use sha2::{Digest, Sha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let body = format!(
        r#"{{"ref":"refs/heads/main","padding":"{}"}}"#,
        "0123456789".repeat(2_000)
    )
    .into_bytes();
    let signature = Signature::sign(&WebhookSecret::new(SECRET), &body).to_string();
    let mut connection = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {signature}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
        hooklog_ingress::WEBHOOK_PATH,
        app.addr,
        new_delivery_id(),
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    // Uneven chunks, each flushed and given time to arrive as a frame of its own.
    for chunk in body.chunks(3_001) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        connection.write_all(&framed).await.unwrap();
        connection.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    connection.write_all(b"0\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    connection.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    let stored = app.stored(1).await;
    assert_eq!(stored.payload.as_ref(), body.as_slice());
    assert_eq!(
        header(&stored, h::BODY_SHA256),
        Some(hex::encode(Sha256::digest(&body)).as_str())
    );
}
