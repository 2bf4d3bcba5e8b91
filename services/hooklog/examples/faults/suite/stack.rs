//! The system under test, set up from nothing: PostgreSQL, nats-server (or a three-node
//! cluster), the git repository the
//! targets sync from, the audit signing key, the migrated database, the twelve role processes
//! under their supervisor, and the targets tracked through the admin API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hooklog_infra::nats::EmbeddedNats;
use hooklog_infra::testing::nats_server_bin;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::cluster::{Cluster, Servers};
use super::fleet::{self, Fleet, Shared};
use super::payloads::{DOOMED_INSTALLATION, INSTALLATION, REPOSITORY, REPOSITORY_ID};
use super::postgres::Postgres;
use super::repo::{self, Source};
use super::report::Report;
use super::Options;

pub const SECRET: &str = "faults-webhook-secret";
const ADMIN_TOKEN: &str = "faults-admin-token-0123456789abcdef";

pub struct Stack {
    work: tempfile::TempDir,
    bin: PathBuf,
    pub postgres: Postgres,
    pub servers: Servers,
    pub source: Arc<Source>,
    pub fleet: Shared,
    supervising: CancellationToken,
    supervisor: tokio::task::JoinHandle<()>,
    pub js: async_nats::jetstream::Context,
    pub pool: sqlx::PgPool,
    pub api: Admin,
    env: Vec<(String, String)>,
    verifier_file: PathBuf,
    /// The ingress's webhook URL.
    pub webhook_url: String,
    /// The tracked targets' ids, by branch number.
    pub targets: Vec<String>,
    /// The installations to be deleted, each with its targets' ids.
    pub doomed: Vec<(u64, String)>,
}

impl Stack {
    pub async fn start(options: &Options) -> anyhow::Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("hooklog-faults-")
            .tempdir()?;
        let dir = work.path().to_owned();
        let postgres = Postgres::start().await?;
        let nats_dir = dir.join("nats");
        let servers = if options.cluster {
            Servers::Cluster(
                Cluster::start(&nats_server_bin(), &nats_dir)
                    .await
                    .context("the three-node cluster does not start")?,
            )
        } else {
            Servers::Single {
                server: Box::new(
                    EmbeddedNats::start(&nats_server_bin(), &nats_dir)
                        .await
                        .context("nats-server does not start")?,
                ),
                store_dir: nats_dir.join("jetstream"),
            }
        };
        // Twice the pushes a branch can get, so no branch runs out of commits.
        let commits =
            2 + 2 * (options.load_secs() * f64::from(options.rate)) as usize / options.targets;
        let source =
            Source::create(&dir.join("sources/faults.git"), options.targets, commits).await?;
        let key_file = dir.join("audit.key");
        let keygen = hooklog(&options.bin, &dir, &[])
            .args(["audit", "keygen", "--name", "faults", "--out"])
            .arg(&key_file)
            .output()?;
        if !keygen.status.success() {
            bail!("hooklog audit keygen failed: {}", text(&keygen.stderr));
        }
        let verifier_file = dir.join("audit.vkey");
        std::fs::write(&verifier_file, &keygen.stdout)?;

        let (ingress, admin) = (free_addr()?, free_addr()?);
        let replicas = if options.cluster { "3" } else { "1" };
        let env: Vec<(String, String)> = [
            ("HOOKLOG_NATS_URL", servers.url()),
            ("HOOKLOG_STREAM_REPLICAS", replicas.to_owned()),
            ("HOOKLOG_DATABASE_URL", postgres.url()),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOOKLOG_INGRESS_ADDR", ingress.clone()),
            ("HOOKLOG_ADMIN_ADDR", admin.clone()),
            ("HOOKLOG_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            (
                "HOOKLOG_SYNCER_ALLOWED_SOURCES",
                dir.join("sources").display().to_string(),
            ),
            (
                "HOOKLOG_AUDIT_SIGNING_KEY_FILE",
                key_file.display().to_string(),
            ),
            ("HOOKLOG_AUDIT_CHECKPOINT_INTERVAL", "1s".to_owned()),
            // Failed syncs retried within the run, not after 30 s and a minute's pass.
            ("HOOKLOG_SYNCER_RECONCILE_INTERVAL", "5s".to_owned()),
            ("HOOKLOG_SYNCER_RETRY_DELAY", "2s".to_owned()),
            ("HOOKLOG_LOG", "info".to_owned()),
            ("HOOKLOG_LOG_FORMAT", "json".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let migrate = hooklog(&options.bin, &dir, &env).arg("migrate").output()?;
        if !migrate.status.success() {
            bail!("hooklog migrate failed: {}", text(&migrate.stderr));
        }

        let fleet = Fleet::start(&options.bin, &dir.join("roles"), env.clone())?;
        let supervising = CancellationToken::new();
        let supervisor = tokio::spawn(fleet::supervise(Arc::clone(&fleet), supervising.clone()));
        let http = hooklog_infra::http::client_builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        wait_serving(&fleet, &http, &admin).await?;
        let client = hooklog_infra::nats::connect(&servers.url(), "hooklog-faults").await?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy(&postgres.url())?;
        let mut stack = Self {
            work,
            bin: options.bin.clone(),
            postgres,
            servers,
            source: Arc::new(source),
            fleet,
            supervising,
            supervisor,
            js: async_nats::jetstream::new(client),
            pool,
            api: Admin {
                http,
                base: format!("http://{admin}/v1/admin"),
            },
            env,
            verifier_file,
            webhook_url: format!("http://{ingress}/v1/webhooks/connectors/github"),
            targets: vec![],
            doomed: vec![],
        };
        stack.track(options).await?;
        Ok(stack)
    }

    /// Tracks one branch per target (synced from the suite's repository) and two targets of
    /// each installation to be deleted.
    async fn track(&mut self, options: &Options) -> anyhow::Result<()> {
        let api = &self.api;
        api.post("/instances", json!({ "installation_id": INSTALLATION }))
            .await?;
        for t in 0..options.targets {
            let tracked = api
                .post(
                    "/targets",
                    json!({
                        "installation_id": INSTALLATION, "repository_id": REPOSITORY_ID,
                        "repository": REPOSITORY, "branch": repo::branch(t),
                        "source": self.source.path().display().to_string(),
                    }),
                )
                .await?;
            self.targets.push(target_id(&tracked));
        }
        for installation in (0..options.doomed as u64).map(|i| DOOMED_INSTALLATION + i) {
            api.post("/instances", json!({ "installation_id": installation }))
                .await?;
            for branch in ["main", "docs"] {
                let tracked = api
                    .post(
                        "/targets",
                        json!({
                            "installation_id": installation, "repository_id": installation + 1,
                            "repository": format!("doomed/r{installation}"), "branch": branch,
                        }),
                    )
                    .await?;
                self.doomed.push((installation, target_id(&tracked)));
            }
        }
        Ok(())
    }

    /// A one-shot `hooklog` command (`projections`, `audit`) on the suite's NATS and database.
    pub fn cli(&self) -> Command {
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k == "HOOKLOG_NATS_URL" || k == "HOOKLOG_DATABASE_URL")
            .cloned()
            .chain([("HOOKLOG_LOG".to_owned(), "warn".to_owned())])
            .collect();
        hooklog(&self.bin, self.work.path(), &env)
    }

    pub fn verifier_file(&self) -> &Path {
        &self.verifier_file
    }

    /// Stops everything; keeps the working directory (and PostgreSQL's) when `keep`.
    pub async fn stop(mut self, keep: bool, report: &mut Report) -> anyhow::Result<()> {
        self.supervising.cancel();
        self.supervisor.await?;
        {
            let mut fleet = self.fleet.lock().expect("the fleet");
            report.restarts = fleet.restarts();
            report.exits = fleet.exits.clone();
            report.unclean_stops = fleet.stop(Duration::from_secs(20));
        }
        self.pool.close().await;
        self.servers.stop().await;
        if keep {
            let kept = self.work.keep();
            eprintln!(
                "faults: logs and stores kept in {} (nats/: the NATS store and its login; roles/<name>/serve.log: each process's log)",
                kept.display()
            );
            if let Some(data) = self.postgres.keep() {
                eprintln!(
                    "faults: PostgreSQL's data directory kept in {} (owned by its server's user: pg_ctl -D {}/data start)",
                    data.display(),
                    data.display()
                );
            }
        }
        Ok(())
    }
}

fn target_id(tracked: &Value) -> String {
    tracked["target_id"].as_str().unwrap_or_default().to_owned()
}

/// Waits until every process says it is serving and the admin listener is ready.
async fn wait_serving(fleet: &Shared, http: &reqwest::Client, admin: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let serving = fleet.lock().expect("the fleet").all_serving();
        let ready = http
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if serving && ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            let fleet = fleet.lock().expect("the fleet");
            bail!(
                "the roles did not all start within 120 s; exits: {:?}",
                fleet.exits
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The admin API, with the read-write token.
pub struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    /// POSTs `body` to `path` under `/v1/admin`; the answer, which must be 2xx.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }
}

/// A `hooklog` command with no inherited `HOOKLOG_*` settings but `env`, run in `dir`.
fn hooklog(bin: &Path, dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKLOG_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .env("HOOKLOG_DATA_DIR", dir.join("cli"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null());
    command
}

fn free_addr() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
