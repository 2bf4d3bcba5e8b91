//! The faults, one after another while the load runs: each role process SIGKILLed (the
//! supervisor starts it again), nats-server stopped and started on the same port and store,
//! PostgreSQL stopped and started. In cluster mode (`--cluster`) the NATS fault is the node
//! leading `GITHUB_DELIVERIES` lost and started again instead (see `cluster`). A worker and a syncer go first: what a killed one held is
//! handed to the other replica only after the consumer's `ack_wait` (30 s and 60 s), which
//! should pass while the load still runs.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::cluster::{Election, Servers};
use super::fleet::Shared;
use super::postgres::Postgres;

#[derive(Debug, Clone)]
pub enum Fault {
    Kill(String),
    /// Every process at once, as a machine running them all would lose them.
    KillAll,
    Nats {
        kill: bool,
    },
    Postgres {
        immediate: bool,
    },
}

/// `rounds` rounds of every fault; odd rounds kill the other replica and stop the servers the
/// other way (SIGTERM instead of SIGKILL for nats-server, a fast shutdown instead of a crash
/// for PostgreSQL). With more than one round, every process is also killed at once at the end.
pub fn plan(rounds: usize) -> Vec<Fault> {
    let mut faults = vec![];
    for round in 0..rounds {
        let replica = 1 + round % 2;
        let hard = round % 2 == 0;
        let kill = |name: &str| Fault::Kill(name.to_owned());
        faults.extend([
            kill(&format!("syncer-{replica}")),
            kill(&format!("worker-{replica}")),
            kill("ingress"),
            Fault::Nats { kill: hard },
            kill("relay"),
            kill(&format!("projector-{replica}")),
            Fault::Postgres { immediate: hard },
            kill(&format!("process-manager-{replica}")),
            kill("sealer"),
            kill("admin"),
        ]);
    }
    if rounds > 1 {
        faults.push(Fault::KillAll);
    }
    faults
}

/// What may be done to the store while nats-server is down: `truncate` cuts the last message
/// block of `GITHUB_DELIVERIES` (the suite's self-check that a loss is caught; one server only).
pub struct NatsFault<'a> {
    pub servers: &'a mut Servers,
    pub truncate: bool,
}

/// What a fault did: said in a line, what it sabotaged, and for a cluster node the election.
#[derive(Default)]
pub struct Injected {
    pub what: String,
    pub sabotage: Option<String>,
    pub election: Option<Election>,
}

impl Injected {
    fn said(what: String) -> Self {
        Self {
            what,
            ..Self::default()
        }
    }
}

/// Injects `fault`, waits out the outage for the servers, and says what it did.
pub async fn inject(
    fault: &Fault,
    fleet: &Shared,
    nats: NatsFault<'_>,
    postgres: &mut Postgres,
    outage: Duration,
) -> anyhow::Result<Injected> {
    match fault {
        Fault::Kill(name) => {
            fleet.lock().expect("the fleet").kill(name)?;
            Ok(Injected::said(format!("SIGKILL {name}")))
        }
        Fault::KillAll => {
            let mut fleet = fleet.lock().expect("the fleet");
            for (name, _) in super::fleet::MEMBERS {
                fleet.kill(name)?;
            }
            Ok(Injected::said("SIGKILL every process at once".to_owned()))
        }
        Fault::Nats { kill: hard } => {
            let (server, store_dir) = match nats.servers {
                Servers::Single { server, store_dir } => (server, store_dir),
                Servers::Cluster(cluster) => {
                    let (what, election) = cluster.lose_leader(*hard, outage).await?;
                    return Ok(Injected {
                        what,
                        sabotage: None,
                        election: Some(election),
                    });
                }
            };
            if *hard {
                if let Some(pid) = server.pid() {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
            }
            // Reaps a killed server; stops a running one with SIGTERM.
            server.stop().await;
            let what = format!(
                "nats-server {} for {:.0?}, then started on the same port and store",
                if *hard {
                    "SIGKILLed"
                } else {
                    "stopped (SIGTERM)"
                },
                outage
            );
            let sabotage = match nats.truncate {
                true => Some(truncate_deliveries(store_dir)?),
                false => None,
            };
            tokio::time::sleep(outage).await;
            server.restart().await?;
            Ok(Injected {
                what,
                sabotage,
                election: None,
            })
        }
        Fault::Postgres { immediate } => {
            let how = postgres.stop(*immediate).await?;
            tokio::time::sleep(outage).await;
            postgres.resume().await?;
            Ok(Injected::said(format!(
                "PostgreSQL {how} for {outage:.0?}, then started again"
            )))
        }
    }
}

/// Cuts the newest message block of `GITHUB_DELIVERIES` to half its size, losing the
/// deliveries stored at its end, as a damaged disk would.
fn truncate_deliveries(store: &std::path::Path) -> anyhow::Result<String> {
    let dir = store.join("jetstream/$G/streams/GITHUB_DELIVERIES/msgs");
    let newest = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "blk"))
        .max_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .ok_or_else(|| anyhow::anyhow!("no message block in {}", dir.display()))?;
    let size = std::fs::metadata(&newest)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)?
        .set_len(size / 2)?;
    // The server's index of the stream would tell it what the block held; without it, it
    // rebuilds the stream's state from the blocks.
    let _ = std::fs::remove_file(dir.join("index.db"));
    Ok(format!(
        "cut {} from {size} to {} bytes",
        newest.display(),
        size / 2
    ))
}
