//! `hooklog targets track|untrack|list`: operate on targets through the same command bus the
//! worker uses, before (and besides) any admin API.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::connector_target::{
    ConnectorTarget, RemovalReason, TargetCommand, TargetError, TargetStatus,
};
use hooklog_domain::ids::{
    Branch, InstallationId, InstanceId, RepositoryId, RepositoryName, SourceLocation, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::config::Settings;
use hooklog_worker::{CommandBus, CommandError};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::{TargetsCommand, TrackArgs, UntrackArgs};

pub async fn run(settings: &Settings, command: TargetsCommand) -> anyhow::Result<ExitCode> {
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("cli", &uuid::Uuid::new_v4().to_string());
    let outcome = match command {
        TargetsCommand::Track(args) => track(&bus, args, &meta).await,
        TargetsCommand::Untrack(args) => untrack(&bus, args, &meta).await,
        TargetsCommand::List => list(&bus).await,
    };
    pool.close().await;
    outcome
}

/// A refused command is the user's answer, not a fault: print it and exit 1.
fn refused(what: &str, err: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("hooklog: {what}: {err}");
    Ok(ExitCode::FAILURE)
}

async fn track(
    bus: &CommandBus,
    args: TrackArgs,
    meta: &CommandMetadata,
) -> anyhow::Result<ExitCode> {
    let installation = InstallationId(args.installation);
    let repository_id = RepositoryId(args.repository_id);
    let repository = RepositoryName::parse(&args.repository).context("--repository")?;
    let branch = Branch::parse(&args.branch).context("--branch")?;
    let source = args
        .source
        .as_deref()
        .map(SourceLocation::parse)
        .transpose()
        .context("--source")?;
    let instance = InstanceId(installation);
    let attach = InstanceCommand::AttachTarget {
        installation_id: installation,
        repository_id,
        repository: repository.clone(),
        branch: branch.clone(),
    };
    match bus.instance(instance, attach, meta).await {
        Ok(_) => {}
        Err(CommandError::Rejected(err)) => {
            return refused(&format!("installation {installation}"), err)
        }
        Err(err) => return Err(err).context("cannot attach the target to its installation"),
    }
    let target = TargetId::for_branch(installation, repository_id, &branch);
    let command = TargetCommand::Track {
        installation_id: installation,
        repository_id,
        repository,
        branch,
        auto_sync: !args.no_auto_sync,
        source,
    };
    let status = match bus
        .target(target, command, &meta.caused_by(&instance.to_string()))
        .await
    {
        Ok(_) => "tracked",
        Err(CommandError::Rejected(TargetError::AlreadyTracked)) => "already tracked",
        Err(CommandError::Rejected(err)) => return refused(&format!("target {target}"), err),
        Err(err) => return Err(err).context("cannot track the target"),
    };
    println!(
        "{}",
        json!({ "target_id": target.to_string(), "status": status })
    );
    Ok(ExitCode::SUCCESS)
}

async fn untrack(
    bus: &CommandBus,
    args: UntrackArgs,
    meta: &CommandMetadata,
) -> anyhow::Result<ExitCode> {
    let target = TargetId::parse(&args.target).context("--target")?;
    let state = bus
        .load_target(target)
        .await
        .context("cannot read the target")?;
    let command = TargetCommand::Remove {
        reason: RemovalReason::Operator,
    };
    match bus.target(target, command, meta).await {
        Ok(_) => {}
        Err(CommandError::Rejected(err)) => return refused(&format!("target {target}"), err),
        Err(err) => return Err(err).context("cannot remove the target"),
    }
    if let Some(installation) = state.installation_id() {
        let detach = InstanceCommand::DetachTarget { target_id: target };
        bus.instance(
            InstanceId(installation),
            detach,
            &meta.caused_by(&target.to_string()),
        )
        .await
        .context("the target is removed, but detaching it from its installation failed")?;
    }
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
