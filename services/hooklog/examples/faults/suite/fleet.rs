//! The `hooklog serve --role <role>` processes, one per role and two of the worker, projector,
//! syncer and process manager, each with its own data directory and log, all on one NATS
//! server and one database. A supervisor restarts any process that is not running: one the
//! suite killed, after a short pause, and one that exited on its own, which is also recorded
//! (a role that dies on an outage is worth knowing about even when nothing is lost).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

/// Every process of the fleet: its name and its role.
pub const MEMBERS: [(&str, &str); 12] = [
    ("ingress", "ingress"),
    ("admin", "admin"),
    ("worker-1", "worker"),
    ("worker-2", "worker"),
    ("relay", "relay"),
    ("projector-1", "projector"),
    ("projector-2", "projector"),
    ("syncer-1", "syncer"),
    ("syncer-2", "syncer"),
    ("process-manager-1", "process-manager"),
    ("process-manager-2", "process-manager"),
    ("sealer", "sealer"),
];

/// How long a killed process stays down before the supervisor starts it again.
const RESTART_AFTER: Duration = Duration::from_millis(500);
/// Pause before restarting a process that exited on its own (it may exit again at once while
/// a server is away).
const RESTART_AFTER_EXIT: Duration = Duration::from_secs(1);

struct Member {
    role: &'static str,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// When to start it again, while it is not running.
    restart_at: Option<Instant>,
    starts: u32,
}

pub struct Fleet {
    bin: PathBuf,
    env: Vec<(String, String)>,
    members: BTreeMap<&'static str, Member>,
    /// Processes that exited without being killed: name, status and the last line of its log.
    pub exits: Vec<String>,
}

pub type Shared = Arc<Mutex<Fleet>>;

impl Fleet {
    /// Starts every member with `env` (the same settings for all) and a data directory of its
    /// own under `dir`.
    pub fn start(bin: &Path, dir: &Path, env: Vec<(String, String)>) -> anyhow::Result<Shared> {
        let mut fleet = Fleet {
            bin: bin.to_owned(),
            env,
            members: BTreeMap::new(),
            exits: vec![],
        };
        for (name, role) in MEMBERS {
            let dir = dir.join(name);
            std::fs::create_dir_all(&dir)?;
            let log = dir.join("serve.log");
            fleet.members.insert(
                name,
                Member {
                    role,
                    dir,
                    log,
                    child: None,
                    restart_at: None,
                    starts: 0,
                },
            );
            fleet.spawn(name)?;
        }
        Ok(Arc::new(Mutex::new(fleet)))
    }

    fn spawn(&mut self, name: &str) -> anyhow::Result<()> {
        let member = self.members.get_mut(name).context("a member")?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)?;
        let mut command = Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HOOKLOG_") {
                command.env_remove(key);
            }
        }
        command
            .args(["serve", "--role", member.role])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOOKLOG_DATA_DIR", &member.dir)
            .current_dir(&member.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        member.child = Some(command.spawn().context("cannot start hooklog serve")?);
        member.restart_at = None;
        member.starts += 1;
        Ok(())
    }

    /// SIGKILLs `name`; the supervisor starts it again after [`RESTART_AFTER`].
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let member = self.members.get_mut(name).context("a member")?;
        if let Some(mut child) = member.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            child.wait()?;
        }
        member.restart_at = Some(Instant::now() + RESTART_AFTER);
        Ok(())
    }

    /// One round of supervision: records and schedules processes that exited, starts those due.
    fn supervise(&mut self) {
        let now = Instant::now();
        let mut due = vec![];
        for (name, member) in &mut self.members {
            if let Some(child) = member.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    member.child = None;
                    member.restart_at = Some(now + RESTART_AFTER_EXIT);
                    self.exits.push(format!(
                        "{name} exited on its own ({status}): {}",
                        last_line(&member.log)
                    ));
                }
            } else if member.restart_at.is_some_and(|at| at <= now) {
                due.push(*name);
            }
        }
        for name in due {
            if let Err(err) = self.spawn(name) {
                self.exits
                    .push(format!("{name} could not be started again: {err:#}"));
            }
        }
    }

    /// Whether every member's log says it is serving (since its last start).
    pub fn all_serving(&self) -> bool {
        self.members.values().all(|m| {
            m.child.is_some()
                && std::fs::read_to_string(&m.log).is_ok_and(|log| {
                    log.matches(r#""message":"hooklog serving""#).count() >= m.starts as usize
                })
        })
    }

    /// Starts of each member beyond its first.
    pub fn restarts(&self) -> u32 {
        self.members
            .values()
            .map(|m| m.starts.saturating_sub(1))
            .sum()
    }

    /// SIGTERM to every member, then SIGKILL to any still running after `grace`; the names of
    /// those that did not exit 0 by themselves.
    pub fn stop(&mut self, grace: Duration) -> Vec<String> {
        for member in self.members.values_mut() {
            member.restart_at = None;
            if let Some(child) = &member.child {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        let mut unclean = vec![];
        for (name, member) in &mut self.members {
            let Some(mut child) = member.child.take() else {
                continue;
            };
            loop {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        unclean.push(format!("{name} ({status})"));
                        break;
                    }
                    _ if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        unclean.push(format!("{name} (did not stop within {grace:?} of SIGTERM)"));
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        unclean
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for member in self.members.values_mut() {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs the supervisor every 100 ms until `stop`.
pub async fn supervise(fleet: Shared, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        fleet.lock().expect("the fleet").supervise();
    }
}

fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|log| log.lines().last().map(str::to_owned))
        .unwrap_or_default()
        .chars()
        .take(400)
        .collect()
}
