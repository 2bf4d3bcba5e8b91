//! Runs the built `hooklog` binary with a clean, explicit environment.

use std::net::TcpListener;
use std::path::Path;

pub use hooklog_infra::testing::{
    fresh_database_url, nats_server_bin, postgres_server_url as postgres_server,
};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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

pub struct Served {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Served {
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let log = dir.join("serve.log");
        let mut command = hooklog(dir);
        command
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        Self {
            child: command.spawn().expect("hooklog serve starts"),
            log,
        }
    }

    /// SIGTERM, then waits for the exit without blocking the test's runtime, for a test whose
    /// own tasks (a proxy in front of PostgreSQL, say) must keep running while hooklog stops.
    pub async fn terminate_async(&mut self) -> std::process::ExitStatus {
        self.signal_term();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hooklog did not stop within 20 s of SIGTERM");
    }

    pub fn signal_term(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hooklog did not stop within 20 s of SIGTERM");
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub async fn wait_ready(admin: &str, served: &mut Served) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = served.child.try_wait().unwrap() {
            panic!("hooklog exited early ({status}):\n{}", served.logs());
        }
        if let Ok(response) = hooklog_infra::http::client()
            .unwrap()
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
        {
            if response.status() == 200 {
                return response.json().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("hooklog not ready within 60 s:\n{}", served.logs());
}
