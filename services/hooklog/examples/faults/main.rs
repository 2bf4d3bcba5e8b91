//! The fault-injection suite, by hand: `services/hooklog/bench/faults.sh` builds the release
//! binary and runs this; `--full` is the long form. Prints the report and exits 1 when the run
//! found a loss, a head synced twice or anything else the checks name (see `suite`).
//!
//! ```sh
//! cargo run --release -p hooklog --example faults -- [--full] [--bin target/release/hooklog]
//! ```

#![forbid(unsafe_code)]

mod suite;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    about = "hooklog's fault-injection suite: every role its own process, faults while deliveries stream in, then the checks"
)]
struct Args {
    /// The long form: four rounds of every fault at 40 deliveries/s (default: the bounded form
    /// CI runs, one round at 20/s).
    #[arg(long)]
    full: bool,
    /// The hooklog binary to run (default: the one next to this example's directory).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Deliveries per second.
    #[arg(long)]
    rate: Option<u32>,
    /// Rounds of every fault.
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds between faults.
    #[arg(long)]
    gap: Option<u64>,
    /// Make a deliberate fault the checks must catch (the run then fails).
    #[arg(long, value_enum)]
    sabotage: Option<SabotageArg>,
    /// Run against a three-node JetStream cluster on loopback ports with three replicas of every
    /// stream; the NATS fault then loses the node leading GITHUB_DELIVERIES.
    #[arg(long)]
    cluster: bool,
    /// Keep the working directory (every process's log, the stores) even when the run passes.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SabotageArg {
    /// Cut the newest block of GITHUB_DELIVERIES while nats-server is down.
    LoseTail,
    /// Delete an acknowledged delivery's decision from the event store after the drain.
    LoseDecision,
    /// Have an operator sync an already synced head again after the drain.
    DoubleSync,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let bin = args.bin.unwrap_or_else(|| {
        // target/<profile>/examples/faults -> target/<profile>/hooklog
        let exe = std::env::current_exe().expect("this program's path");
        exe.parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("hooklog"))
            .expect("target/<profile>/hooklog")
    });
    // Every process runs in its own directory: the binary's path must not be relative.
    let bin = match std::fs::canonicalize(&bin) {
        Ok(bin) => bin,
        Err(err) => {
            eprintln!("faults: --bin {}: {err}", bin.display());
            return ExitCode::from(2);
        }
    };
    let mut options = if args.full {
        suite::Options::full(bin)
    } else {
        suite::Options::bounded(bin)
    };
    options.rate = args.rate.unwrap_or(options.rate);
    options.rounds = args.rounds.unwrap_or(options.rounds);
    if let Some(gap) = args.gap {
        options.gap = Duration::from_secs(gap);
    }
    options.keep = args.keep;
    options.cluster = args.cluster;
    if args.cluster {
        options.form.push_str(", three-node cluster");
    }
    options.sabotage = args.sabotage.map(|s| match s {
        SabotageArg::LoseTail => suite::Sabotage::LoseTail,
        SabotageArg::LoseDecision => suite::Sabotage::LoseDecision,
        SabotageArg::DoubleSync => suite::Sabotage::DoubleSync,
    });
    match suite::run(options).await {
        Ok(report) => {
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("faults: the suite could not run: {err:#}");
            ExitCode::from(2)
        }
    }
}
