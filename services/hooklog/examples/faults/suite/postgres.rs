//! The suite's PostgreSQL: its own server (`initdb` and `pg_ctl` in a temporary directory, as
//! the `postgres` OS user when the suite runs as root), so the fault is a real stop and start of
//! the server: every connection dropped, and with `-m immediate` a crash that replays the WAL on
//! start. When no server binaries are found (or `HOOKLOG_FAULTS_POSTGRES=proxy`), a fresh
//! database on the test server behind a TCP proxy that is cut and restored instead; the report
//! says which.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use hooklog_infra::testing::{fresh_database_url, TcpOutage};

pub enum Postgres {
    Own(Own),
    Proxied(Proxied),
}

pub struct Own {
    bin: PathBuf,
    dir: PathBuf,
    /// Removes `dir` on drop, after the server stopped; `None` once kept.
    guard: Option<tempfile::TempDir>,
    port: u16,
    /// Run the server's tools as this OS user (root may not run PostgreSQL).
    run_as: Option<String>,
    running: bool,
}

pub struct Proxied {
    outage: TcpOutage,
    database: String,
    /// Why the suite does not run its own server.
    why: String,
}

impl Postgres {
    pub async fn start() -> anyhow::Result<Self> {
        let why = match server_bin_dir() {
            _ if std::env::var("HOOKLOG_FAULTS_POSTGRES").is_ok_and(|v| v == "proxy") => {
                "HOOKLOG_FAULTS_POSTGRES=proxy".to_owned()
            }
            None => "no initdb and pg_ctl found".to_owned(),
            Some(bin) => match Own::start(bin).await {
                Ok(own) => return Ok(Self::Own(own)),
                Err(err) => format!("its own server did not start: {err:#}"),
            },
        };
        let (url, database) = fresh_database_url();
        let upstream = url
            .trim_start_matches("postgres://")
            .split(['@', '/'])
            .nth(1)
            .context("the test server's host and port")?
            .to_owned();
        Ok(Self::Proxied(Proxied {
            outage: TcpOutage::start(&upstream).await,
            database,
            why,
        }))
    }

    pub fn url(&self) -> String {
        match self {
            Self::Own(own) => format!("postgres://postgres@127.0.0.1:{}/hooklog", own.port),
            Self::Proxied(p) => format!("postgres://postgres@{}/{}", p.outage.addr(), p.database),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Own(own) => format!(
                "its own PostgreSQL server ({}, port {}), stopped and started again",
                own.bin.display(),
                own.port
            ),
            Self::Proxied(p) => format!(
                "a fresh database ({}) on the test server behind a TCP proxy, cut and restored ({})",
                p.database, p.why
            ),
        }
    }

    /// Takes PostgreSQL away: `immediate` is a crash (every backend killed, WAL replayed on
    /// start), otherwise a fast shutdown (clients disconnected, a checkpoint written).
    pub async fn stop(&mut self, immediate: bool) -> anyhow::Result<&'static str> {
        match self {
            Self::Own(own) => {
                let mode = if immediate { "immediate" } else { "fast" };
                own.pg_ctl(&["stop", "-w", "-m", mode])?;
                own.running = false;
                Ok(if immediate {
                    "pg_ctl stop -m immediate (a crash)"
                } else {
                    "pg_ctl stop -m fast"
                })
            }
            Self::Proxied(p) => {
                p.outage.cut();
                Ok("cut off (its proxy closed every connection and refused new ones)")
            }
        }
    }

    /// Keeps the server's data directory when the suite ends; where it is.
    pub fn keep(&mut self) -> Option<PathBuf> {
        match self {
            Self::Own(own) => own.guard.take().map(tempfile::TempDir::keep),
            Self::Proxied(_) => None,
        }
    }

    pub async fn resume(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Own(own) => own.start_server(),
            Self::Proxied(p) => {
                p.outage.restore().await;
                Ok(())
            }
        }
    }
}

impl Own {
    async fn start(bin: PathBuf) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hooklog-faults-pg-")
            .tempdir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            let uid = id(&["-u", user])?;
            let gid = id(&["-g", user])?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to {user}", dir.path().display()))?;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let mut own = Self {
            bin,
            dir: dir.path().to_owned(),
            guard: Some(dir),
            port,
            run_as,
            running: false,
        };
        let data = own.data();
        let status = own
            .command("initdb")
            .args(["-D", data.to_str().context("a UTF-8 path")?])
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .context("cannot run initdb")?;
        if !status.success() {
            bail!("initdb failed ({status})");
        }
        own.start_server()?;
        Ok(own)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.stdin(Stdio::null());
        command
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let data = self.data();
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(args)
            .output()
            .context("cannot run pg_ctl")?;
        if !output.status.success() {
            bail!(
                "pg_ctl {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn start_server(&mut self) -> anyhow::Result<()> {
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=400 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        let log = log.to_str().context("a UTF-8 path")?.to_owned();
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &options])?;
        self.running = true;
        Ok(())
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"]);
        }
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        // The database stays for `.ci/test`'s clean-up of `hooklog_test_%` databases.
        self.outage.cut();
    }
}

/// `HOOKLOG_FAULTS_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else
/// `pg_config --bindir`: a directory holding `initdb` and `pg_ctl`.
fn server_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("HOOKLOG_FAULTS_PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    has_tools(&dir).then_some(dir)
}

fn is_root() -> bool {
    id(&["-u"]).is_ok_and(|uid| uid == 0)
}

fn id(args: &[&str]) -> anyhow::Result<u32> {
    let output = Command::new("id")
        .args(args)
        .output()
        .context("cannot run id")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}
