//! Helpers for hooklog's own test suites (feature `testing`): which `nats-server` to start and
//! where the test PostgreSQL is. Tests start real servers; nothing here fakes one.

use std::path::{Path, PathBuf};

use crate::nats::find_nats_server;

/// `HOOKLOG_NATS_SERVER_BIN`, else the one `.ci/setup` installs in `.tools/`, else the first
/// recent enough `nats-server` on `PATH`. Panics with the install hint when there is none.
pub fn nats_server_bin() -> PathBuf {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/nats-server");
    let configured = std::env::var_os("HOOKLOG_NATS_SERVER_BIN")
        .map(PathBuf::from)
        .or_else(|| installed.exists().then_some(installed));
    find_nats_server(configured.as_deref())
        .unwrap_or_else(|err| panic!("{err} (or run `source .ci/setup`)"))
}

/// The test PostgreSQL server, without a database: `TEST_POSTGRES_URL` or the local one.
pub fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A URL naming a database that does not exist yet (`hooklog_test_<pid>_<nanos>`), and that name.
pub fn fresh_database_url() -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = format!("hooklog_test_{}_{nanos}", std::process::id());
    (format!("{}/{name}", postgres_server_url()), name)
}
