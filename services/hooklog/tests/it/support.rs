//! Runs the built `hooklog` binary with a clean, explicit environment.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_hooklog");

/// The nats-server tests use: `HOOKLOG_NATS_SERVER_BIN`, else the one `.ci/setup` installs.
pub fn nats_server_bin() -> PathBuf {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/nats-server");
    let configured = std::env::var_os("HOOKLOG_NATS_SERVER_BIN")
        .map(PathBuf::from)
        .or_else(|| installed.exists().then_some(installed));
    hooklog_infra::nats::find_nats_server(configured.as_deref())
        .expect("a nats-server 2.10+ (run `source .ci/setup`)")
}

/// Base URL of the test PostgreSQL server, without a database.
pub fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database URL whose database does not exist yet.
pub fn fresh_database_url() -> (String, String) {
    let name = format!("hooklog_test_{}", uuid::Uuid::new_v4().simple());
    (format!("{}/{name}", postgres_server()), name)
}

pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A `hooklog` command with no inherited `HOOKLOG_*` settings, run in `dir`.
pub fn hooklog(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKLOG_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .env("HOOKLOG_LOG_FORMAT", "json")
        .stdin(Stdio::null());
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("hooklog runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
