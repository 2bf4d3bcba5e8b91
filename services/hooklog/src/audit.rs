//! `hooklog audit keygen`: the signing key of the audit checkpoints, written where only its
//! owner can read it, and the verifier key auditors check checkpoints with; `hooklog audit
//! prove`: a delivery's inclusion proof in the latest checkpoint; `hooklog audit verify`: every
//! check of both logs, a report, exit 1 on any finding.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_audit::note::is_valid_name;
use hooklog_audit::{Log, SigningKey};
use hooklog_infra::config::Settings;
use hooklog_sealer::key::write_new_key_file;
use hooklog_sealer::prove::{inclusion, ProveError};

use hooklog_audit::VerifierKey;
use hooklog_domain::github::WebhookSecret;
use hooklog_sealer::message::stream_name;
use hooklog_sealer::verify::{Options as VerifyOptions, VerifyError};

use hooklog_sealer::bundle::{self, verify_bundle, BundleError};

use crate::cli::{AuditCommand, ExportArgs, KeygenArgs, LogName, ProveArgs, VerifyArgs};
use crate::connect::{database, Streams};
use crate::progress::Progress;

pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Keygen(args) => keygen(args),
        AuditCommand::Prove(args) => prove(settings, args).await,
        AuditCommand::Verify(args) => verify(settings, args).await,
        AuditCommand::Export(args) => export(settings, args).await,
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

async fn verify(settings: &Settings, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let public_key = match args
        .public_key
        .as_deref()
        .map(read_verifier_key)
        .transpose()
    {
        Ok(key) => key,
        Err(message) => {
            eprintln!("hooklog: --public-key: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    if let (Some(dir), Some(key)) = (&args.bundle, &public_key) {
        return verify_bundle_dir(dir, key);
    }
    let options = VerifyOptions {
        public_key,
        secrets: args.secret.iter().map(WebhookSecret::new).collect(),
    };
    let pool = database(settings).await?;
    let streams = Streams::connect(settings, "hooklog-audit").await?;
    let mut progress = Progress::new("verifying");
    let outcome =
        hooklog_sealer::verify::verify(&pool, &streams.js, &options, &mut |log, done, total| {
            progress.update(stream_name(log), done, total)
        })
        .await;
    progress.finish();
    streams.close().await;
    let report = match outcome {
        Ok(report) => report,
        Err(err @ VerifyError::NoStream(_)) => {
            eprintln!("hooklog: {err}; has `hooklog serve` run against this NATS server?");
            return Ok(ExitCode::from(2));
        }
        Err(err) => return Err(err.into()),
    };
    Ok(print_report(
        &report.passed,
        &report.skipped,
        &report.findings,
    ))
}

/// Prints a verify report, `ok`, `skipped` and `FINDING` lines and a count; exit 1 on a finding.
fn print_report<F: std::fmt::Display>(
    passed: &[String],
    skipped: &[String],
    findings: &[F],
) -> ExitCode {
    for line in passed {
        println!("ok       {line}");
    }
    for line in skipped {
        println!("skipped  {line}");
    }
    for finding in findings {
        println!("FINDING  {finding}");
    }
    let plural = if findings.len() == 1 { "" } else { "s" };
    println!("{} finding{plural}", findings.len());
    match findings.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// A verifier key given as its text or as a file holding it.
fn read_verifier_key(given: &str) -> Result<VerifierKey, String> {
    if let Ok(key) = VerifierKey::parse(given.trim()) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(given).map_err(|err| {
        format!("{given:?} is neither a verifier key (<name>+<id>+<base64>) nor a readable file ({err})")
    })?;
    VerifierKey::parse(text.trim())
        .map_err(|err| format!("{given} does not hold a verifier key: {err}"))
}

fn verify_bundle_dir(dir: &std::path::Path, key: &VerifierKey) -> anyhow::Result<ExitCode> {
    let report = match verify_bundle(dir, key) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("hooklog: --bundle: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    Ok(print_report(&report.passed, &[], &report.findings))
}

async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    if args.from_seq == 0 || args.from_seq > args.to_seq {
        eprintln!(
            "hooklog: --from-seq {} to --to-seq {} is not a range of sequences (they start at 1)",
            args.from_seq, args.to_seq
        );
        return Ok(ExitCode::from(2));
    }
    let log = match args.log {
        LogName::Deliveries => Log::Deliveries,
        LogName::Events => Log::Events,
    };
    let pool = database(settings).await?;
    let streams = Streams::connect(settings, "hooklog-audit").await?;
    let outcome = bundle::export(
        &pool,
        &streams.js,
        log,
        args.from_seq,
        args.to_seq,
        &args.out,
    )
    .await;
    streams.close().await;
    match outcome {
        Ok(count) => {
            eprintln!(
                "hooklog: wrote {count} entries of the {} log to {}",
                log.name(),
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (BundleError::NotEmpty(_)
            | BundleError::Prove(
                ProveError::NotSealedYet { .. }
                | ProveError::NoMessage { .. }
                | ProveError::NoCheckpoint(_),
            )),
        ) => {
            eprintln!("hooklog: {err}");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}
