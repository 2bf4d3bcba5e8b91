//! `hooklog audit keygen`: the signing key of the audit checkpoints, written where only its
//! owner can read it, and the verifier key auditors check checkpoints with; `hooklog audit
//! prove`: a delivery's inclusion proof in the latest checkpoint.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_audit::note::is_valid_name;
use hooklog_audit::{Log, SigningKey};
use hooklog_infra::config::Settings;
use hooklog_sealer::key::write_new_key_file;
use hooklog_sealer::prove::{inclusion, ProveError};

use crate::cli::{AuditCommand, KeygenArgs, LogName, ProveArgs};
use crate::connect::{database, Streams};

pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Keygen(args) => keygen(args),
        AuditCommand::Prove(args) => prove(settings, args).await,
    }
}

async fn prove(settings: &Settings, args: ProveArgs) -> anyhow::Result<ExitCode> {
    let pool = database(settings).await?;
    let streams = Streams::connect(settings, "hooklog-audit").await?;
    let (log, sequence) = match (&args.delivery_id, args.seq) {
        (Some(id), _) => {
            let sequence: Option<i64> = sqlx::query_scalar(
                "SELECT min(stream_sequence) FROM deliveries WHERE delivery_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .context("cannot look the delivery up in the deliveries read model")?;
            match sequence {
                Some(sequence) => (Log::Deliveries, sequence as u64),
                None => {
                    eprintln!("hooklog: --delivery-id: no delivery {id:?} on GITHUB_DELIVERIES (as the deliveries read model knows it)");
                    streams.close().await;
                    return Ok(ExitCode::from(2));
                }
            }
        }
        (None, Some(sequence)) => (
            match args.log {
                LogName::Deliveries => Log::Deliveries,
                LogName::Events => Log::Events,
            },
            sequence,
        ),
        (None, None) => unreachable!("clap requires one of them"),
    };
    let outcome = inclusion(&pool, &streams.js, log, sequence).await;
    streams.close().await;
    match outcome {
        Ok(proof) => {
            print!("{proof}");
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (ProveError::NotSealedYet { .. }
            | ProveError::NoMessage { .. }
            | ProveError::NoCheckpoint(_)),
        ) => {
            eprintln!("hooklog: {err}");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}

fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if !is_valid_name(&args.name) {
        eprintln!(
            "hooklog: --name: {:?} is not a key name (non-empty, no spaces and no `+`)",
            args.name
        );
        return Ok(ExitCode::from(2));
    }
    let key = SigningKey::generate(&args.name).context("cannot generate a key")?;
    match write_new_key_file(&args.out, &key) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "hooklog: --out: {} already exists; hooklog never overwrites a signing key",
                args.out.display()
            );
            return Ok(ExitCode::from(2));
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot write {}", args.out.display()))
        }
    }
    println!("{}", key.verifier());
    Ok(ExitCode::SUCCESS)
}
