//! Runs the built `hooklog` binary with a clean, explicit environment.

use std::net::TcpListener;
use std::path::Path;

pub use hooklog_infra::testing::{
    fresh_database_url, nats_server_bin, postgres_server_url as postgres_server,
};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_hooklog");

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
