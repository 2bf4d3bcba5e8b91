//! One service per use case that more than one edge offers (the admin API and the CLI; the
//! worker for connect and disconnect's GitHub twins), so the edges cannot disagree: each checks
//! its input the same way, sends one command, and fails with the same classified error. What
//! follows on other aggregates (attach, detach, remove the targets) is the process manager's.

use hooklog_domain::connector_instance::{InstanceCommand, InstanceStatus};
use hooklog_domain::connector_target::{
    PathFilters, RemovalReason, TargetCommand, TargetError, TargetOwner, TargetStatus,
};
use hooklog_domain::ids::{
    Branch, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::source::{AllowedSources, SourceRefused};

use crate::bus::CommandBus;
use crate::error::{CommandError, ErrorClass, UseCaseError};

/// Code of an aggregate's refusal that has no code of its own.
const REJECTED: &str = "command_rejected";

/// Track one branch of a repository, as the caller wrote it.
#[derive(Debug, Clone)]
pub struct TrackBranch {
    pub installation_id: u64,
    /// GitHub's numeric repository id (stable across renames).
    pub repository_id: u64,
    pub repository: String,
    pub branch: String,
    pub auto_sync: bool,
    /// A git repository path or URL to read instead of the GitHub App; it must be under a
    /// prefix of `HOOKLOG_SYNCER_ALLOWED_SOURCES`.
    pub source: Option<String>,
    /// `(include, exclude)` globs.
    pub path_filters: Option<(Vec<String>, Vec<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    pub target: TargetId,
    pub instance: InstanceId,
    /// Whether the process manager attaches it (it was not attached yet).
    pub attaches: bool,
}

/// Tracks the branch: the target is tracked at once (refused when it already is, or when its
/// installation is gone); the process manager attaches it to its installation. A `source` must
/// be one `allowed` (the process's `HOOKLOG_SYNCER_ALLOWED_SOURCES`) lets targets read.
pub async fn track(
    bus: &CommandBus,
    request: TrackBranch,
    allowed: &AllowedSources,
    meta: &CommandMetadata,
) -> Result<Tracked, UseCaseError> {
    let repository = RepositoryName::parse(&request.repository)
        .map_err(|e| UseCaseError::invalid("repository", "invalid_repository", e))?;
    let branch = Branch::parse(&request.branch)
        .map_err(|e| UseCaseError::invalid("branch", "invalid_branch", e))?;
    let source = request
        .source
        .as_deref()
        .map(|source| allowed.admit(source))
        .transpose()
        .map_err(|e| {
            let code = match e {
                SourceRefused::Invalid(_) => "invalid_source",
                SourceRefused::NoneAllowed | SourceRefused::NotAllowed(_) => "source_not_allowed",
            };
            UseCaseError::invalid("source", code, e)
        })?;
    let path_filters = match request.path_filters {
        Some((include, exclude)) => PathFilters::parse(include, exclude)
            .map_err(|e| UseCaseError::invalid("path_filters", "invalid_path_filters", e))?,
        None => PathFilters::default(),
    };
    let installation = InstallationId(request.installation_id);
    let repository_id = RepositoryId(request.repository_id);
    let instance = InstanceId(installation);
    let target = TargetId::for_branch(installation, repository_id, &branch);
    // The installation's refusal, said before anything is tracked; the process manager removes
    // a target whose installation went away in between.
    let state = bus
        .load_instance(instance)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    if let Some(refusal) = state.refuses_targets() {
        return Err(UseCaseError::new(
            ErrorClass::Refused,
            REJECTED,
            refusal.to_string(),
        ));
    }
    let command = TargetCommand::Track {
        owner: TargetOwner::Installation(installation),
        repository_id,
        repository,
        branch,
        auto_sync: request.auto_sync,
        source,
        path_filters,
    };
    match bus.target(target, command, meta).await {
        Ok(_) => Ok(Tracked {
            target,
            instance,
            attaches: !state.targets().any(|t| t.target_id == target),
        }),
        Err(CommandError::Rejected(TargetError::AlreadyTracked)) => Err(UseCaseError::new(
            ErrorClass::Refused,
            "already_tracked",
            format!("target {target} is already tracked"),
        )),
        Err(err) => Err(UseCaseError::command(REJECTED, err)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untracked {
    pub target: TargetId,
    /// The installation it belongs to.
    pub instance: Option<InstanceId>,
    /// Whether the process manager detaches it (it was attached).
    pub detaches: bool,
}

/// Stops tracking a target (its history stays); the process manager detaches it.
pub async fn untrack(
    bus: &CommandBus,
    target: TargetId,
    meta: &CommandMetadata,
) -> Result<Untracked, UseCaseError> {
    let state = bus
        .load_target(target)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    if state.status() == TargetStatus::Untracked {
        return Err(UseCaseError::not_found(
            "target_not_found",
            format_args!("target {target}"),
        ));
    }
    let remove = TargetCommand::Remove {
        reason: RemovalReason::Operator,
    };
    bus.target(target, remove, meta)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    let instance = state.installation_id().map(InstanceId);
    let detaches = match instance {
        Some(instance) => bus
            .load_instance(instance)
            .await
            .map_err(|e| UseCaseError::command(REJECTED, e))?
            .targets()
            .any(|t| t.target_id == target),
        None => false,
    };
    Ok(Untracked {
        target,
        instance,
        detaches,
    })
}

/// Connects an installation, with `auto_track` when given.
pub async fn connect(
    bus: &CommandBus,
    installation_id: u64,
    account: Option<String>,
    auto_track: Option<bool>,
    meta: &CommandMetadata,
) -> Result<InstanceId, UseCaseError> {
    let installation = InstallationId(installation_id);
    let instance = InstanceId(installation);
    let command = InstanceCommand::Connect {
        installation_id: installation,
        account: account.unwrap_or_default(),
        repository_selection: None,
        repositories: vec![],
        auto_track,
    };
    bus.instance(instance, command, meta)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    Ok(instance)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    pub instance: InstanceId,
    /// The targets the process manager removes.
    pub removed_targets: Vec<TargetId>,
}

/// Disconnects an installation; the process manager removes its targets.
pub async fn disconnect(
    bus: &CommandBus,
    instance: InstanceId,
    meta: &CommandMetadata,
) -> Result<Disconnected, UseCaseError> {
    let state = bus
        .load_instance(instance)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    if state.status() == InstanceStatus::Unknown {
        return Err(UseCaseError::not_found(
            "instance_not_found",
            format_args!("instance {instance}"),
        ));
    }
    bus.instance(instance, InstanceCommand::Disconnect, meta)
        .await
        .map_err(|e| UseCaseError::command(REJECTED, e))?;
    Ok(Disconnected {
        instance,
        removed_targets: state.targets().map(|t| t.target_id).collect(),
    })
}
