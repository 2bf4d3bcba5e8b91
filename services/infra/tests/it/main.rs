//! The embedded `nats-server` as a real child process; PostgreSQL sessions (`postgres`).

mod migrations;
mod postgres;

use std::time::Duration;

use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::testing::nats_server_bin;

#[tokio::test]
async fn a_killed_embedded_server_is_noticed_and_a_restarted_one_keeps_its_port_and_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let port = server.port();
    let client = nats::connect(&server.url(), "infra-test").await.unwrap();
    nats::check_max_payload(&client).expect("the repository's nats.conf allows 25 MiB deliveries");
    drop(client);

    let pid = server.pid().expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), server.exited())
        .await
        .expect("the exit is noticed")
        .unwrap();
    assert!(!status.success());

    server.restart().await.unwrap();
    assert_eq!(server.port(), port);
    nats::connect(&server.url(), "infra-test")
        .await
        .expect("serving again");
}

#[tokio::test]
async fn a_second_embedded_server_on_the_same_data_dir_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let err = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HOOKLOG_NATS_URL") && err.contains("HOOKLOG_DATA_DIR"),
        "{err}"
    );
}

#[tokio::test]
async fn the_embedded_server_refuses_clients_without_its_data_directorys_password() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let mut server = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let password = std::fs::read_to_string(dir.path().join("credentials")).unwrap();
    let password = password.trim();
    assert_eq!(password.len(), 64, "32 random bytes in hex");
    for file in ["credentials", "nats.conf"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    for url in [
        server.address(),
        format!(
            "nats://hooklog:{}@127.0.0.1:{}",
            "0".repeat(64),
            server.port()
        ),
    ] {
        let refused = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url.as_str())
            .await;
        let refused = match refused {
            Err(err) => err.to_string(),
            // A refused login may also surface as the first request failing.
            Ok(client) => client
                .flush()
                .await
                .map(|_| "connected".to_owned())
                .unwrap_or_else(|e| e.to_string()),
        };
        assert_ne!(refused, "connected", "{}", nats::redact_url(&url));
    }
    let client = nats::connect(&server.url(), "infra-test").await.unwrap();
    client
        .flush()
        .await
        .expect("the data directory's login works");
    assert!(!nats::redact_url(&server.url()).contains(password));
    assert!(!server.address().contains(password));

    // The same directory keeps its password across restarts.
    server.stop().await;
    drop(server);
    let server = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    assert!(server.url().contains(password));
    nats::connect(&server.url(), "infra-test")
        .await
        .unwrap()
        .flush()
        .await
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("nats-server.log")).unwrap();
    assert!(
        !log.contains(password),
        "the server's log never shows the password"
    );
}
