//! Uploads from a hostile client: refused before their body is read where the headers already
//! say enough, dropped when too slow, bounded per address and overall, and never in the way of a
//! valid delivery from another address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{config, new_delivery_id, spawn_app_with, TestApp};

const BODY: &[u8] = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
const WELL_FORMED_WRONG: &str =
    "sha256=0000000000000000000000000000000000000000000000000000000000000000";

/// Connects from `from` (any 127.0.0.0/8 address is this machine's).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends a request head announcing `length` body bytes and none of them.
async fn send_head(
    app: &TestApp,
    from: [u8; 4],
    signature: Option<&str>,
    length: usize,
) -> TcpStream {
    send_head_with(app, from, signature, length, "").await
}

/// [`send_head`] with `extra` header lines (each ending in `\r\n`).
async fn send_head_with(
    app: &TestApp,
    from: [u8; 4],
    signature: Option<&str>,
    length: usize,
    extra: &str,
) -> TcpStream {
    let mut connection = connect_from(from, app.addr).await;
    let signature = signature
        .map(|s| format!("X-Hub-Signature-256: {s}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-GitHub-Event: ping\r\n\
         X-GitHub-Delivery: {}\r\n{signature}{extra}Content-Length: {length}\r\n\r\n",
        hooklog_ingress::WEBHOOK_PATH,
        app.addr,
        new_delivery_id(),
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection
}

/// Reads one response: its status and its JSON body's `code`. Fails the test if none comes
/// within 10 s.
async fn response<R: AsyncRead + Unpin>(connection: &mut R) -> (u16, String, String) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        loop {
            let n = connection.read(&mut buffer).await.unwrap_or(0);
            raw.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&raw);
            if n == 0 || text.contains("\r\n\r\n{") && text.trim_end().ends_with('}') {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = serde_json::from_str::<serde_json::Value>(body)
        .map(|v| v["code"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (status, code, head.to_ascii_lowercase())
}

/// A valid signed delivery sent from `from`; its status.
async fn deliver_from(app: &TestApp, from: [u8; 4]) -> u16 {
    let signature = hooklog_domain::github::Signature::sign(&app.secret, BODY).to_string();
    let mut connection = send_head(app, from, Some(&signature), BODY.len()).await;
    connection.write_all(BODY).await.unwrap();
    response(&mut connection).await.0
}

#[tokio::test]
async fn a_missing_or_malformed_signature_header_is_refused_before_the_body_is_read() {
    let mut config = config();
    // Were the body awaited, the answer would be 408 after the grace; it is 401 at once.
    config.upload_grace = Duration::from_secs(60);
    let app = spawn_app_with(config).await;
    for signature in [None, Some("sha256=00"), Some("sha1=abc")] {
        let mut connection = send_head(&app, [127, 0, 0, 1], signature, 20 * 1024 * 1024).await;
        let (status, code, _) = response(&mut connection).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_signature"),
            "{signature:?}"
        );
    }
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn an_address_outside_the_allowed_networks_is_refused_before_its_body_is_read() {
    let mut config = config();
    config.upload_grace = Duration::from_secs(60);
    config.allowed_networks = Some(vec!["127.0.0.0/30".parse().unwrap()]);
    let app = spawn_app_with(config).await;
    let mut outside = send_head(&app, [127, 0, 0, 9], Some(WELL_FORMED_WRONG), 1000).await;
    let (status, code, _) = response(&mut outside).await;
    assert_eq!((status, code.as_str()), (403, "address_not_allowed"));
    assert_eq!(
        deliver_from(&app, [127, 0, 0, 2]).await,
        202,
        "inside: accepted"
    );
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_its_forwarded_for_names_is_the_one_allowed() {
    let mut config = config();
    config.upload_grace = Duration::from_secs(60);
    config.allowed_networks = Some(vec!["10.1.2.0/24".parse().unwrap()]);
    config.trusted_proxies = vec!["127.0.0.7/32".parse().unwrap()];
    let app = spawn_app_with(config).await;
    let signature = hooklog_domain::github::Signature::sign(&app.secret, BODY).to_string();
    let deliver = |from: [u8; 4], forwarded: Option<&'static str>| {
        let (app, signature) = (&app, signature.clone());
        async move {
            let extra = forwarded
                .map(|f| format!("X-Forwarded-For: {f}\r\n"))
                .unwrap_or_default();
            let mut connection =
                send_head_with(app, from, Some(&signature), BODY.len(), &extra).await;
            connection.write_all(BODY).await.unwrap();
            let (status, code, _) = response(&mut connection).await;
            (status, code)
        }
    };
    let proxy = [127, 0, 0, 7];
    assert_eq!(
        deliver(proxy, Some("10.1.2.3")).await.0,
        202,
        "the forwarded client is allowed"
    );
    assert_eq!(
        deliver(proxy, Some("10.9.9.9, 10.1.2.3")).await.0,
        202,
        "what the client wrote left of its own address is not read"
    );
    let refused = (403, "address_not_allowed".to_owned());
    assert_eq!(
        deliver(proxy, Some("10.1.2.3, 10.9.9.9")).await,
        refused,
        "the rightmost untrusted address is the client"
    );
    assert_eq!(
        deliver(proxy, None).await,
        refused,
        "without the header the proxy itself is the client"
    );
    assert_eq!(
        deliver([127, 0, 0, 8], Some("10.1.2.3")).await,
        refused,
        "a peer that is not a trusted proxy cannot name another address"
    );
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn an_upload_below_the_minimum_rate_is_dropped_and_nothing_is_stored() {
    let mut config = config();
    config.upload_grace = Duration::from_millis(300);
    config.min_upload_rate = 1000;
    let app = spawn_app_with(config).await;
    let connection = send_head(&app, [127, 0, 0, 1], Some(WELL_FORMED_WRONG), 100_000).await;
    let (mut reader, mut writer) = connection.into_split();
    let trickle = async {
        // One byte every 100 ms: 10 bytes/s against a minimum of 1,000.
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await
    };
    let (status, code, _) = tokio::select! {
        answer = response(&mut reader) => answer,
        _ = trickle => unreachable!(),
    };
    assert_eq!((status, code.as_str()), (408, "upload_too_slow"));
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn one_address_holds_at_most_its_uploads_and_others_still_deliver() {
    let mut config = config();
    config.upload_grace = Duration::from_secs(60);
    config.uploads_per_address = 2;
    let app = spawn_app_with(config).await;
    let held = [
        send_head(&app, [127, 0, 0, 5], Some(WELL_FORMED_WRONG), 1_000_000).await,
        send_head(&app, [127, 0, 0, 5], Some(WELL_FORMED_WRONG), 1_000_000).await,
    ];
    // Let the server admit both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = send_head(&app, [127, 0, 0, 5], Some(WELL_FORMED_WRONG), 1_000_000).await;
    let (status, code, head) = response(&mut third).await;
    assert_eq!((status, code.as_str()), (429, "too_many_uploads"));
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(
        deliver_from(&app, [127, 0, 0, 6]).await,
        202,
        "another address"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        deliver_from(&app, [127, 0, 0, 5]).await,
        202,
        "finished uploads free their places"
    );
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn with_every_slot_taken_a_request_is_answered_503_in_time() {
    let mut config = config();
    config.upload_grace = Duration::from_secs(60);
    config.max_in_flight = 2;
    config.queue_timeout = Duration::from_millis(300);
    let app = spawn_app_with(config).await;
    let held = [
        send_head(&app, [127, 0, 0, 7], Some(WELL_FORMED_WRONG), 1_000_000).await,
        send_head(&app, [127, 0, 0, 8], Some(WELL_FORMED_WRONG), 1_000_000).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = send_head(&app, [127, 0, 0, 9], Some(WELL_FORMED_WRONG), 10).await;
    let (status, code, head) = response(&mut waiting).await;
    assert_eq!((status, code.as_str()), (503, "overloaded"));
    assert!(head.contains("retry-after:"), "{head}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliver_from(&app, [127, 0, 0, 9]).await, 202, "slots freed");
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_loses_its_connection() {
    let mut config = config();
    config.server.header_read_timeout = Duration::from_millis(300);
    let app = spawn_app_with(config).await;
    let mut connection = connect_from([127, 0, 0, 1], app.addr).await;
    connection
        .write_all(
            format!(
                "POST {} HTTP/1.1\r\nHost: x\r\n",
                hooklog_ingress::WEBHOOK_PATH
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut buffer))
        .await
        .expect("the server closes the connection instead of waiting for the rest of the head");
    assert!(
        matches!(read, Ok(0) | Err(_))
            || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408")
    );
    assert_eq!(
        deliver_from(&app, [127, 0, 0, 1]).await,
        202,
        "others are served"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let mut config = config();
    config.server.max_connections = 2;
    config.server.header_read_timeout = Duration::from_secs(60);
    let app = spawn_app_with(config).await;
    let held = [
        connect_from([127, 0, 0, 1], app.addr).await,
        connect_from([127, 0, 0, 1], app.addr).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let (addr, secret) = (app.addr, app.secret.clone());
        async move {
            let signature = hooklog_domain::github::Signature::sign(&secret, BODY).to_string();
            let mut connection = connect_from([127, 0, 0, 2], addr).await;
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: ping\r\n\
                 X-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
                hooklog_ingress::WEBHOOK_PATH,
                new_delivery_id(),
                BODY.len()
            );
            connection.write_all(head.as_bytes()).await.unwrap();
            connection.write_all(BODY).await.unwrap();
            response(&mut connection).await.0
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection is not served while two are open"
    );
    drop(held);
    assert_eq!(waiting.await.unwrap(), 202);
}

#[tokio::test]
async fn other_paths_and_methods_get_json_errors() {
    let app = spawn_app_with(config()).await;
    for (method, path, status, code) in [
        (
            "GET",
            hooklog_ingress::WEBHOOK_PATH,
            405,
            "method_not_allowed",
        ),
        ("POST", "/elsewhere", 404, "not_found"),
    ] {
        let mut connection = connect_from([127, 0, 0, 1], app.addr).await;
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        connection.write_all(head.as_bytes()).await.unwrap();
        let (answered, answered_code, _) = response(&mut connection).await;
        assert_eq!(
            (answered, answered_code.as_str()),
            (status, code),
            "{method} {path}"
        );
    }
}
