//! `hooklog targets track|untrack|list`: the write side's use cases, the same the admin API
//! calls, so the two answer a repeated command alike.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cqrs_es::Aggregate;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_target::{ConnectorTarget, TargetStatus};
use hooklog_domain::ids::TargetId;
use hooklog_domain::metadata::{keys, CommandMetadata};
use hooklog_domain::source::AllowedSources;
use hooklog_infra::config::Settings;
use hooklog_infra::streams::event_msg_id;
use hooklog_write::reactions::{self, Committed};
use hooklog_write::{usecases, CommandBus, ErrorClass, UseCaseError};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::{TargetsCommand, TrackArgs, UntrackArgs};

pub async fn run(settings: &Settings, command: TargetsCommand) -> anyhow::Result<ExitCode> {
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("cli", &uuid::Uuid::new_v4().to_string());
    let outcome = match command {
        TargetsCommand::Track(args) => {
            track(&bus, args, &settings.syncer_allowed_sources, &meta).await
        }
        TargetsCommand::Untrack(args) => untrack(&bus, args, &meta).await,
        TargetsCommand::List => list(&bus).await,
    };
    pool.close().await;
    outcome
}

/// The CLI's one mapping of the write side's classification: refusals and unknown targets exit
/// 1 with the reason, bad input 2 naming the flag, outages 75 (try again), unreadable history 70,
/// a setting missing 78.
pub(crate) fn failed(err: UseCaseError) -> ExitCode {
    match (err.class, err.field) {
        (ErrorClass::Invalid, Some(field)) => eprintln!("hooklog: --{field}: {}", err.message),
        _ => eprintln!("hooklog: {}", err.message),
    }
    ExitCode::from(match err.class {
        ErrorClass::Refused | ErrorClass::NotFound => 1,
        ErrorClass::Invalid => 2,
        ErrorClass::Conflict | ErrorClass::Retryable => 75,
        ErrorClass::Corrupt => 70,
        ErrorClass::Unconfigured => 78,
    })
}

/// Runs the process manager's steps for the events this command committed on `target`, so the
/// CLI leaves nothing half done even when no `hooklog serve` runs; the steps are keyed, so a
/// process manager that reaches the same events later changes nothing, and one that gets there
/// first leaves nothing to do here.
async fn finish_cascade(
    bus: &CommandBus,
    target: TargetId,
    meta: &CommandMetadata,
) -> anyhow::Result<()> {
    let events = bus
        .target_events(target)
        .await
        .context("cannot read the target's events")?;
    for envelope in events {
        if envelope.metadata.get(keys::CORRELATION_ID) != Some(&meta.correlation_id) {
            continue;
        }
        let id = event_msg_id(
            ConnectorTarget::TYPE,
            &target.to_string(),
            envelope.sequence as u64,
        );
        let committed = Committed::target(bus, target, envelope.payload).await?;
        reactions::run(bus, &id, &meta.correlation_id, None, &committed).await?;
    }
    Ok(())
}

async fn track(
    bus: &CommandBus,
    args: TrackArgs,
    allowed: &AllowedSources,
    meta: &CommandMetadata,
) -> anyhow::Result<ExitCode> {
    let request = usecases::TrackBranch {
        installation_id: args.installation,
        repository_id: args.repository_id,
        repository: args.repository,
        branch: args.branch,
        auto_sync: !args.no_auto_sync,
        source: args.source,
        path_filters: None,
    };
    let tracked = match usecases::track(bus, request, allowed, meta).await {
        Ok(tracked) => tracked,
        Err(err) => return Ok(failed(err)),
    };
    finish_cascade(bus, tracked.target, meta)
        .await
        .context("the target is tracked, but attaching it to its installation failed; the process manager finishes it")?;
    println!(
        "{}",
        json!({ "target_id": tracked.target.to_string(), "status": "tracked" })
    );
    Ok(ExitCode::SUCCESS)
}

async fn untrack(
    bus: &CommandBus,
    args: UntrackArgs,
    meta: &CommandMetadata,
) -> anyhow::Result<ExitCode> {
    let target = TargetId::parse(&args.target).context("--target")?;
    let untracked = match usecases::untrack(bus, target, meta).await {
        Ok(untracked) => untracked,
        Err(err) => return Ok(failed(err)),
    };
    finish_cascade(bus, untracked.target, meta)
        .await
        .context("the target is removed, but detaching it from its installation failed; the process manager finishes it")?;
    println!(
        "{}",
        json!({ "target_id": target.to_string(), "status": "removed" })
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(bus: &CommandBus) -> anyhow::Result<ExitCode> {
    for id in bus.target_ids().await.context("cannot list targets")? {
        let target = bus.load_target(id).await.context("cannot read a target")?;
        println!("{}", view(id, &target));
    }
    Ok(ExitCode::SUCCESS)
}

fn view(id: TargetId, target: &ConnectorTarget) -> serde_json::Value {
    let status = match target.status() {
        TargetStatus::Untracked => "untracked".to_owned(),
        TargetStatus::Active if target.in_flight().is_some() => "queued".to_owned(),
        TargetStatus::Active => "idle".to_owned(),
        TargetStatus::Disabled(reason) => format!(
            "disabled ({})",
            serde_json::to_value(reason)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("unknown")
        ),
        TargetStatus::Removed => "removed".to_owned(),
    };
    json!({
        "target_id": id.to_string(),
        "installation_id": target.installation_id(),
        "repository_id": target.repository_id(),
        "repository": target.repository(),
        "branch": target.branch(),
        "source": target.source(),
        "status": status,
        "auto_sync": target.auto_sync(),
        "sync_in_flight": target.in_flight().map(|s| json!({"sync_id": s.sync_id.to_string(), "head_sha": s.head_sha, "started": s.started})),
        "follow_up_head_sha": target.follow_up().map(|f| &f.head_sha),
        "last_head_sha": target.last_head(),
    })
}
