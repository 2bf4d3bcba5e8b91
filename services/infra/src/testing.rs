//! Helpers for hooklog's own test suites (feature `testing`): which `nats-server` to start,
//! where the test PostgreSQL is, and both together for one test ([`Backends`]). Tests start real
//! servers; nothing here fakes one.

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

/// The `openapi-spec-validator` that `.ci/setup` installs in `.tools/` (or
/// `HOOKLOG_OPENAPI_VALIDATOR`). Panics with the install hint when there is none.
pub fn openapi_validator_bin() -> PathBuf {
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/openapi-spec-validator");
    let bin = std::env::var_os("HOOKLOG_OPENAPI_VALIDATOR")
        .map(PathBuf::from)
        .unwrap_or(installed);
    assert!(
        bin.exists(),
        "{} is missing: run `source .ci/setup` to install openapi-spec-validator",
        bin.display()
    );
    bin
}

/// The first example of `event` among the vendored `@octokit/webhooks-examples` payloads
/// (`services/ingress/tests/fixtures/`) that `pick` accepts. Panics when there is none.
pub fn octokit_example(
    event: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    vendored_examples()
        .iter()
        .find(|(name, example)| name == event && pick(example))
        .map(|(_, example)| example.clone())
        .unwrap_or_else(|| panic!("no {event} example in the vendored examples"))
}

/// Every example payload of the vendored `@octokit/webhooks-examples`, with its event name, in
/// the file's order.
pub fn octokit_examples() -> Vec<(String, serde_json::Value)> {
    vendored_examples().to_vec()
}

/// The examples, read and parsed once per test process: the file is several megabytes, and a
/// test that builds a hundred payloads would otherwise spend seconds parsing it (long enough for
/// the server to close the client's idle kept-alive connections under it).
fn vendored_examples() -> &'static [(String, serde_json::Value)] {
    static EXAMPLES: std::sync::OnceLock<Vec<(String, serde_json::Value)>> =
        std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ingress/tests/fixtures/octokit-webhooks-examples/api.github.com.json");
        let all: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).expect("the vendored examples"))
                .expect("JSON");
        all.iter()
            .flat_map(|event| {
                let name = event["name"].as_str().expect("event name").to_owned();
                let payloads = event["examples"].as_array().expect("examples").clone();
                payloads
                    .into_iter()
                    .map(move |payload| (name.clone(), payload))
            })
            .collect()
    })
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

/// What one integration test runs against: its own `nats-server` in a temporary directory, with
/// both streams, and a fresh migrated database. Dropping it stops the server and removes the
/// directory; the database is left to `.ci/test`, which drops `hooklog_test_%` databases.
pub struct Backends {
    pub js: async_nats::jetstream::Context,
    pub client: async_nats::Client,
    pub pool: sqlx::PgPool,
    /// The database's URL and name.
    pub database_url: String,
    pub database: String,
    pub nats: crate::nats::EmbeddedNats,
    // Last: removed once the server is stopped.
    pub dir: tempfile::TempDir,
}

impl Backends {
    /// Starts the server, connects as `client_name` and creates `GITHUB_DELIVERIES` (duplicate
    /// window 1 h), `HOOKLOG_EVENTS` (10 min) and `HOOKLOG_AUDIT`, then creates and migrates the database.
    pub async fn start(client_name: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let nats = crate::nats::EmbeddedNats::start(&nats_server_bin(), dir.path())
            .await
            .expect("nats-server starts");
        let client = crate::nats::connect(&nats.url(), client_name)
            .await
            .expect("connected to nats-server");
        let js = async_nats::jetstream::new(client.clone());
        crate::streams::ensure_deliveries_stream(&js, std::time::Duration::from_secs(3600))
            .await
            .expect("the deliveries stream");
        crate::streams::ensure_events_stream(&js, std::time::Duration::from_secs(600))
            .await
            .expect("the events stream");
        crate::streams::ensure_audit_stream(&js)
            .await
            .expect("the audit stream");
        let (database_url, database) = fresh_database_url();
        let pool = crate::postgres::connect_and_migrate(&database_url)
            .await
            .expect("a migrated database");
        Self {
            js,
            client,
            pool,
            database_url,
            database,
            nats,
            dir,
        }
    }
}

/// A TCP proxy in front of the test PostgreSQL that a test can cut and restore, so a service
/// sees PostgreSQL go away (connections reset, new ones refused) and come back on the same
/// address, without stopping the server other tests share.
pub struct TcpOutage {
    addr: std::net::SocketAddr,
    upstream: String,
    cut: Option<tokio_util::sync::CancellationToken>,
}

impl TcpOutage {
    /// Proxies a free local port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mut proxy = Self {
            addr,
            upstream: upstream.to_owned(),
            cut: None,
        };
        proxy.serve(listener);
        proxy
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(token) = self.cut.take() {
            token.cancel();
        }
    }

    /// Accepts connections again on the same address.
    pub async fn restore(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) if std::time::Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(err) => panic!("cannot rebind proxy on {}: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let token = tokio_util::sync::CancellationToken::new();
        self.cut = Some(token.clone());
        let upstream = self.upstream.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => continue,
                    },
                };
                let (token, upstream) = (token.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
    }
}

impl Drop for TcpOutage {
    fn drop(&mut self) {
        self.cut();
    }
}
