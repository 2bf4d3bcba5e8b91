//! The NATS side of the suite: one nats-server (the default), or with `--cluster` a three-node
//! JetStream cluster on loopback ports whose streams have three replicas
//! (`HOOKLOG_STREAM_REPLICAS=3`).
//!
//! In cluster mode the NATS fault is one node lost under load: the node leading
//! `GITHUB_DELIVERIES` is SIGKILLed (or, every other round, stopped with SIGTERM), a node still
//! up is asked until the stream reports another leader (the leader election, timed), and after
//! the outage the node is started again on its ports and store, where it catches up from the
//! other two. The suite then checks, besides everything it checks of one server, that every
//! request answered 503 was sent within a leader election (see [`Election::covers`]).
//!
//! Every node requires the same login as the embedded server (user `hooklog`, a password
//! generated per run), and the routes between nodes their own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hooklog_infra::nats::{EmbeddedNats, NATS_CONF};
use hooklog_infra::streams::DELIVERIES_STREAM;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long a 503 may be sent after the new leader was reported and still count as part of the
/// election: the ingress's client learns of the new leader on its next publish retry, and the
/// election is seen from another client polling every 50 ms.
const ELECTION_SLACK: Duration = Duration::from_secs(1);

/// The suite's NATS: one server or a cluster.
pub enum Servers {
    Single {
        /// Boxed: a cluster's handle is a few pointers, a server's is hundreds of bytes.
        server: Box<EmbeddedNats>,
        /// The server's store (`--store_dir`).
        store_dir: PathBuf,
    },
    Cluster(Cluster),
}

impl Servers {
    /// The URL (a comma-separated list for a cluster) with the login in it.
    pub fn url(&self) -> String {
        match self {
            Self::Single { server, .. } => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }

    /// What the report says of them.
    pub fn describe(&self) -> String {
        match self {
            Self::Single { server, .. } => {
                format!(
                    "one nats-server on {}, streams with one replica",
                    server.address()
                )
            }
            Self::Cluster(cluster) => format!(
                "a three-node JetStream cluster on {}, streams with three replicas",
                cluster.address()
            ),
        }
    }

    pub async fn stop(&mut self) {
        match self {
            Self::Single { server, .. } => server.stop().await,
            Self::Cluster(cluster) => cluster.stop().await,
        }
    }
}

/// One node lost and elected around: when it was stopped, and how long until a node still up
/// reported a new leader of `GITHUB_DELIVERIES` (`None`: none within the outage).
#[derive(Debug, Clone)]
pub struct Election {
    pub at: Instant,
    pub took: Option<Duration>,
}

impl Election {
    /// Whether a request sent at `sent` falls within this election: from the stop until the
    /// new leader was reported, plus [`ELECTION_SLACK`].
    pub fn covers(&self, sent: Instant) -> bool {
        let took = self.took.unwrap_or(Duration::ZERO);
        sent + Duration::from_millis(100) >= self.at && sent <= self.at + took + ELECTION_SLACK
    }
}

struct Node {
    name: String,
    port: u16,
    dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

pub struct Cluster {
    bin: PathBuf,
    password: String,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Starts three nodes under `dir` and waits until JetStream answers through each.
    pub async fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let password = random_hex()?;
        let route_password = random_hex()?;
        let names = ["n1", "n2", "n3"];
        let ports: Vec<(u16, u16)> = names
            .iter()
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let mut nodes = vec![];
        for (i, name) in names.iter().enumerate() {
            let node_dir = dir.join(name);
            std::fs::create_dir_all(&node_dir)?;
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, route))| {
                    format!("\"nats-route://route:{route_password}@127.0.0.1:{route}\"")
                })
                .collect();
            let conf = node_dir.join("nats.conf");
            let text = format!(
                "{NATS_CONF}\n\
                 server_name: {name}\n\
                 authorization {{\n  user: hooklog\n  password: \"{password}\"\n}}\n\
                 cluster {{\n  name: hooklog-faults\n  listen: 127.0.0.1:{cluster_port}\n  \
                 authorization {{\n    user: route\n    password: \"{route_password}\"\n  }}\n  \
                 routes: [{routes}]\n}}\n",
                cluster_port = ports[i].1,
                routes = routes.join(", "),
            );
            write_private(&conf, &text)?;
            nodes.push(Node {
                name: (*name).to_owned(),
                port: ports[i].0,
                dir: node_dir,
                conf,
                child: None,
            });
        }
        let mut cluster = Self {
            bin: bin.to_owned(),
            password,
            nodes,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_jetstream(i, Duration::from_secs(60)).await?;
        }
        Ok(cluster)
    }

    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://hooklog:{}@127.0.0.1:{}", self.password, n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes' addresses, without the login.
    fn address(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Stops the node leading `GITHUB_DELIVERIES` (SIGKILL when `hard`, else SIGTERM), times the
    /// election of its successor as a node still up reports it, keeps the node down for at least
    /// `outage` and starts it again. Says what it did, with the election.
    pub async fn lose_leader(
        &mut self,
        hard: bool,
        outage: Duration,
    ) -> anyhow::Result<(String, Election)> {
        let any = self.jetstream(None).await?;
        let leader = leader_of(&any)
            .await
            .context("no node reports a leader of GITHUB_DELIVERIES before the node fault")?;
        let index = self
            .nodes
            .iter()
            .position(|n| n.name == leader)
            .with_context(|| format!("the leader {leader} is not one of the suite's nodes"))?;
        // Connected before the stop, so the polls below do not wait on a reconnect.
        let survivor = self.jetstream(Some((index + 1) % self.nodes.len())).await?;
        let at = Instant::now();
        self.stop_node(index, hard).await;
        let mut took = None;
        while at.elapsed() < outage.max(Duration::from_secs(20)) {
            if let Some(new) = leader_of(&survivor).await {
                if new != leader {
                    took = Some(at.elapsed());
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(rest) = outage.checked_sub(at.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        let down = at.elapsed();
        self.spawn(index)?;
        self.wait_jetstream(index, Duration::from_secs(60)).await?;
        let what = format!(
            "nats-server {leader} (leading GITHUB_DELIVERIES) {}, {}; started again {:.1} s after on the same ports and store",
            if hard { "SIGKILLed" } else { "stopped (SIGTERM)" },
            match took {
                Some(took) => format!("a new leader reported {:.2} s after", took.as_secs_f64()),
                None => "no new leader reported while it was away".to_owned(),
            },
            down.as_secs_f64()
        );
        Ok((what, Election { at, took }))
    }

    pub async fn stop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i, false).await;
        }
    }

    /// A JetStream context through node `via` (through any node when `None`).
    async fn jetstream(
        &self,
        via: Option<usize>,
    ) -> anyhow::Result<async_nats::jetstream::Context> {
        let url = match via {
            Some(i) => self.node_url(i),
            None => self.url(),
        };
        let client = hooklog_infra::nats::connect(&url, "hooklog-faults-leader").await?;
        Ok(async_nats::jetstream::new(client))
    }

    fn node_url(&self, i: usize) -> String {
        format!(
            "nats://hooklog:{}@127.0.0.1:{}",
            self.password, self.nodes[i].port
        )
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("nats-server.log"))?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&node.conf)
            .args(["--addr", "127.0.0.1", "--port", &node.port.to_string()])
            .args(["--jetstream", "--store_dir"])
            .arg(node.dir.join("jetstream"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    async fn stop_node(&mut self, i: usize, hard: bool) {
        let Some(mut child) = self.nodes[i].child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let signal = if hard {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// Waits until node `i` answers JetStream's account request: it has joined the cluster and
    /// a meta leader is elected.
    async fn wait_jetstream(&mut self, i: usize, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        let url = self.node_url(i);
        loop {
            if let Ok(Ok(client)) = tokio::time::timeout(
                Duration::from_secs(2),
                hooklog_infra::nats::connect(&url, "hooklog-faults-ready"),
            )
            .await
            {
                let js = async_nats::jetstream::new(client);
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(2), js.query_account()).await
                {
                    return Ok(());
                }
            }
            if let Some(child) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "nats-server {} exited ({status}); see {}",
                        self.nodes[i].name,
                        self.nodes[i].dir.join("nats-server.log").display()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server {} did not serve JetStream within {patience:?}; see {}",
                    self.nodes[i].name,
                    self.nodes[i].dir.join("nats-server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A password for one run: 128 random bits, hex.
/// The leader of `GITHUB_DELIVERIES` as the cluster reports it; `None` while it has none (the
/// request then times out after 500 ms).
async fn leader_of(js: &async_nats::jetstream::Context) -> Option<String> {
    let ask = async {
        let mut stream = js.get_stream(DELIVERIES_STREAM).await.ok()?;
        let info = stream.info().await.ok()?;
        info.cluster.as_ref().and_then(|c| c.leader.clone())
    };
    tokio::time::timeout(Duration::from_millis(500), ask)
        .await
        .ok()
        .flatten()
}

fn random_hex() -> anyhow::Result<String> {
    Ok(uuid::Uuid::new_v4().simple().to_string())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes `text` to `path` readable by this user only: it holds the cluster's passwords.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
