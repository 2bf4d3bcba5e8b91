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
