//! Bad input gets its status, a JSON error that names the problem, and stores nothing.

use hmac::{Hmac, Mac};
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::MAX_DELIVERY_BYTES;

use crate::support::{config, new_delivery_id, spawn_app, spawn_app_with, SECRET};

const BODY: &[u8] =
    br#"{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}"#;

fn legacy_sha1_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

struct Case {
    name: &'static str,
    signature_header: Option<(&'static str, String)>,
    event: Option<&'static str>,
    delivery: bool,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn cases() -> Vec<Case> {
    let secret = WebhookSecret::new(SECRET);
    let valid = |body: &[u8]| {
        Some((
            "X-Hub-Signature-256",
            Signature::sign(&secret, body).to_string(),
        ))
    };
    let mut flipped = BODY.to_vec();
    flipped[10] ^= 0x01;
    let too_large = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_DELIVERY_BYTES - 9)).into_bytes();
    assert_eq!(too_large.len(), MAX_DELIVERY_BYTES + 1);
    let case = |name, signature_header, body: &[u8], status, code| Case {
        name,
        signature_header,
        event: Some("push"),
        delivery: true,
        body: body.to_vec(),
        status,
        code,
    };
    vec![
        case("no signature", None, BODY, 401, "invalid_signature"),
        case(
            "sha256= with nothing",
            Some(("X-Hub-Signature-256", "sha256=".into())),
            BODY,
            401,
            "invalid_signature",
        ),
        case(
            "odd number of hex digits",
            Some(("X-Hub-Signature-256", format!("sha256={}", "a".repeat(63)))),
            BODY,
            401,
            "invalid_signature",
        ),
        case(
            "non-hex digits",
            Some(("X-Hub-Signature-256", format!("sha256={}", "zz".repeat(32)))),
            BODY,
            401,
            "invalid_signature",
        ),
        case(
            "signature of another body",
            valid(b"{\"other\":true}"),
            BODY,
            401,
            "invalid_signature",
        ),
        case(
            "legacy X-Hub-Signature (sha1) alone",
            Some(("X-Hub-Signature", legacy_sha1_signature(BODY))),
            BODY,
            401,
            "invalid_signature",
        ),
        case(
            "one flipped byte in the body",
            valid(BODY),
            &flipped,
            401,
            "invalid_signature",
        ),
        case(
            "wrong secret",
            Some((
                "X-Hub-Signature-256",
                Signature::sign(&WebhookSecret::new("not it"), BODY).to_string(),
            )),
            BODY,
            401,
            "invalid_signature",
        ),
        Case {
            event: None,
            ..case(
                "missing X-GitHub-Event",
                valid(BODY),
                BODY,
                400,
                "invalid_headers",
            )
        },
        Case {
            delivery: false,
            ..case(
                "missing X-GitHub-Delivery",
                valid(BODY),
                BODY,
                400,
                "invalid_headers",
            )
        },
        Case {
            event: Some("push.>"),
            ..case(
                "event name that is not a subject token",
                valid(BODY),
                BODY,
                400,
                "invalid_headers",
            )
        },
        case(
            "invalid JSON with a valid signature",
            valid(b"{\"ref\":"),
            b"{\"ref\":",
            400,
            "invalid_payload",
        ),
        case(
            "25 MiB + 1 byte",
            valid(&too_large),
            &too_large,
            413,
            "payload_too_large",
        ),
    ]
}

#[tokio::test]
async fn each_bad_request_gets_its_status_and_nothing_is_stored() {
    let app = spawn_app().await;
    for case in cases() {
        let delivery_id = new_delivery_id();
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(event) = case.event {
            headers.push(("X-GitHub-Event", event));
        }
        if case.delivery {
            headers.push(("X-GitHub-Delivery", &delivery_id));
        }
        if let Some((name, value)) = &case.signature_header {
            headers.push((name, value));
        }
        let response = app.post(&headers, case.body).await;
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        let error: serde_json::Value = response.json().await.expect("JSON error body");
        assert_eq!(error["code"], case.code, "{}", case.name);
        let message = error["message"].as_str().expect("a message");
        assert!(
            !message.is_empty() && !message.contains(SECRET),
            "{}: {message}",
            case.name
        );
    }
    assert_eq!(app.stored_count().await, 0, "bad input stores nothing");
}

#[tokio::test]
async fn missing_headers_are_named_in_the_error() {
    let app = spawn_app().await;
    let signature = Signature::sign(&app.secret, BODY).to_string();
    let response = app
        .post(
            &[
                ("X-GitHub-Delivery", "d-1"),
                ("X-Hub-Signature-256", &signature),
            ],
            BODY.to_vec(),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("X-GitHub-Event"),
        "{error}"
    );
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_rate_limited_but_a_valid_delivery_never_is() {
    let mut config = config();
    config.failed_auth_per_minute = 3;
    let app = spawn_app_with(config).await;
    let bad = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "d-1"),
        ("X-Hub-Signature-256", "sha256=00"),
    ];
    for _ in 0..3 {
        assert_eq!(app.post(&bad, BODY.to_vec()).await.status(), 401);
    }
    let limited = app.post(&bad, BODY.to_vec()).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        limited.json::<serde_json::Value>().await.unwrap()["code"],
        "rate_limited"
    );

    let valid = app.deliver("push", &new_delivery_id(), BODY.to_vec()).await;
    assert_eq!(
        valid.status(),
        202,
        "a valid delivery from a limited address is accepted"
    );
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn githubs_documented_test_vector_verifies_then_is_refused_only_for_not_being_json() {
    // From GitHub's "Validating webhook deliveries": this signature is right for this secret and
    // body, so the request passes verification and stops at the payload check.
    let mut config = config();
    config.secrets = vec![WebhookSecret::new("It's a Secret to Everybody")];
    let app = spawn_app_with(config).await;
    let response = app
        .post(
            &[
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", "test-vector"),
                (
                    "X-Hub-Signature-256",
                    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                ),
            ],
            b"Hello, World!".to_vec(),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["code"], "invalid_payload");
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn a_chunked_body_over_25_mib_is_refused_without_a_content_length() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let mut connection = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: chunked-1\r\nX-Hub-Signature-256: sha256={}\r\nTransfer-Encoding: chunked\r\n\r\n",
        hooklog_ingress::WEBHOOK_PATH,
        app.addr,
        "0".repeat(64),
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    // 26 chunks of 1 MiB: the server stops reading after 25 MiB and answers; writes after that
    // may fail, which is fine.
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..26 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if connection.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = connection.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = connection.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(app.stored_count().await, 0);
}
