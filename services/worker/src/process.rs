//! What one delivery makes happen: decode the payload, send the one command it implies through
//! the bus, and say what came of it. What that command's events ask of other aggregates (a
//! deleted installation's targets removed, an auto-tracked target tracked) is the process
//! manager's. Nothing here touches JetStream; `consumer` owns acks and redeliveries.
//!
//! Push refs, deliberately:
//! - `refs/tags/*` and any other non-branch ref: ignored (targets follow branches).
//! - a branch deletion (`deleted: true`): sent to the target, which disables itself
//!   (`BranchDeleted`); a later push that recreates the branch enables it and syncs.
//! - a forced push: synced like any other (a sync diffs the tree at the head SHA against the last
//!   synced snapshot, not against `before`, so rewritten history is safe); `forced` is recorded.
//! - a push to a branch no target follows: ignored, unless the installation has `auto_track` on
//!   and the branch is the repository's default one: then the instance attaches a target with
//!   the push, and the process manager tracks it and records the push (which syncs it).

use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::{
    ConnectorInstance, InstanceCommand, InstanceError, Repository,
};
use hooklog_domain::connector_target::{ConnectorTarget, Push, TargetCommand, TargetError};
use hooklog_domain::delivery::SentCommand;
use hooklog_domain::github::events::{self as gh, EventPayloadError};
use hooklog_domain::ids::{
    Branch, CommitSha, IdError, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;

use hooklog_write::{CommandBus, CommandError};

/// A delivery as read from `GITHUB_DELIVERIES`.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Commands were sent (whatever the aggregates decided).
    Processed,
    /// Nothing to do: an event or action hooklog does not act on, or an aggregate refused.
    Ignored,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub detail: String,
    /// The command the delivery sent, when the aggregate took it.
    pub commands: Vec<SentCommand>,
}

impl Outcome {
    fn processed(detail: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Processed,
            detail: detail.into(),
            commands: vec![],
        }
    }
    fn ignored(detail: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Ignored,
            detail: detail.into(),
            commands: vec![],
        }
    }
    fn sent(mut self, aggregate_type: &str, aggregate_id: impl ToString, command: &str) -> Self {
        self.commands.push(SentCommand {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_string(),
            command: command.to_owned(),
        });
        self
    }
}

/// Why a delivery could not be processed now.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Try again later: the event store is unavailable or an aggregate changed under us.
    #[error("retryable: {0}")]
    Retry(String),
    /// Never processable: record a dead letter.
    #[error("{0}")]
    Poison(String),
}

impl From<EventPayloadError> for Failure {
    fn from(err: EventPayloadError) -> Self {
        Self::Poison(err.to_string())
    }
}

impl From<IdError> for Failure {
    fn from(err: IdError) -> Self {
        Self::Poison(err.to_string())
    }
}

/// The worker's one mapping of the write side's classification: a refusal is a decision
/// (`Ok(Err)`), a retryable failure is tried again later, the rest can never be processed.
fn settle<T, E: std::error::Error>(
    result: Result<T, CommandError<E>>,
) -> Result<Result<T, E>, Failure> {
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(CommandError::Rejected(err)) => Ok(Err(err)),
        Err(err) if err.is_retryable() => Err(Failure::Retry(err.to_string())),
        Err(err) => Err(Failure::Poison(err.to_string())),
    }
}

fn repository(r: &gh::RepositoryRef) -> Result<Repository, Failure> {
    Ok(Repository {
        id: RepositoryId(r.id),
        full_name: RepositoryName::parse(&r.full_name)?,
    })
}

#[derive(Clone)]
pub struct Processor {
    bus: CommandBus,
}

impl Processor {
    pub fn new(bus: CommandBus) -> Self {
        Self { bus }
    }

    pub fn bus(&self) -> &CommandBus {
        &self.bus
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.delivery_id, event = %delivery.event))]
    pub async fn process(&self, delivery: Delivery<'_>) -> Result<Outcome, Failure> {
        let meta = CommandMetadata::from_delivery(delivery.delivery_id);
        let (event, ct, body) = (delivery.event, delivery.content_type, delivery.body);
        match event {
            "push" => self.push(gh::parse(event, ct, body)?, &meta).await,
            "installation" => self.installation(gh::parse(event, ct, body)?, &meta).await,
            "installation_repositories" => {
                self.installation_repositories(gh::parse(event, ct, body)?, &meta)
                    .await
            }
            "repository" => self.repository(gh::parse(event, ct, body)?, &meta).await,
            "installation_target" => {
                let e: gh::InstallationTargetEvent = gh::parse(event, ct, body)?;
                if e.action != "renamed" {
                    return Ok(Outcome::ignored(format!(
                        "installation_target.{} needs no change",
                        e.action
                    )));
                }
                let command = InstanceCommand::RenameAccount {
                    login: e.account.login,
                };
                self.instance(InstallationId(e.installation.id), command, &meta)
                    .await
            }
            "ping" => {
                let e: gh::PingEvent = gh::parse(event, ct, body)?;
                match e.installation {
                    Some(i) => {
                        let command = InstanceCommand::RecordPing {
                            hook_id: e.hook_id,
                            zen: e.zen,
                        };
                        self.instance(InstallationId(i.id), command, &meta).await
                    }
                    None => Ok(Outcome::processed(format!(
                        "webhook ping (hook {}) with no installation: recorded on the stream only",
                        e.hook_id.map_or("unknown".to_owned(), |id| id.to_string())
                    ))),
                }
            }
            other => Ok(Outcome::ignored(format!(
                "`{other}` deliveries are recorded, not acted on"
            ))),
        }
    }

    async fn push(&self, e: gh::PushEvent, meta: &CommandMetadata) -> Result<Outcome, Failure> {
        let Some(branch) = e.git_ref.strip_prefix("refs/heads/") else {
            return Ok(Outcome::ignored(format!(
                "{} is not a branch; targets follow branches",
                e.git_ref
            )));
        };
        let Some(installation) = e.installation else {
            return Ok(Outcome::ignored(
                "push without an installation: not a GitHub App delivery",
            ));
        };
        let installation = InstallationId(installation.id);
        let branch = Branch::parse(branch)?;
        let repo = repository(&e.repository)?;
        let push = Push {
            head_sha: CommitSha::parse(&e.after)?,
            before_sha: CommitSha::parse(&e.before)?,
            forced: e.forced,
            deleted: e.deleted,
            delivery_id: meta.delivery_id.clone().unwrap_or_default(),
        };
        let target = TargetId::for_branch(installation, repo.id, &branch);
        let label = format!("{}@{branch} (target {target})", repo.full_name);
        match settle(
            self.bus
                .target(target, TargetCommand::RecordPush(push.clone()), meta)
                .await,
        )? {
            Ok(_) => Ok(Outcome::processed(format!("push to {label}")).sent(
                ConnectorTarget::TYPE,
                target,
                "RecordPush",
            )),
            Err(TargetError::NotTracked) => {
                let default_branch = e.repository.default_branch.as_deref();
                if push.deleted || default_branch != Some(branch.as_str()) {
                    return Ok(Outcome::ignored(format!("no target tracks {label}")));
                }
                self.auto_track(installation, repo, branch, push, meta)
                    .await
            }
            Err(err) => Ok(Outcome::ignored(format!("{label}: {err}"))),
        }
    }

    /// A push to the default branch of a repository no target follows: the instance decides
    /// whether auto-track attaches a target for it; the process manager tracks it and hands it
    /// the push.
    async fn auto_track(
        &self,
        installation: InstallationId,
        repo: Repository,
        branch: Branch,
        push: Push,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let instance = InstanceId(installation);
        let label = format!("{}@{branch}", repo.full_name);
        let target = TargetId::for_branch(installation, repo.id, &branch);
        let attach = InstanceCommand::AutoTrack {
            repository_id: repo.id,
            repository: repo.full_name,
            default_branch: branch.clone(),
            branch,
            push,
        };
        match settle(self.bus.instance(instance, attach, meta).await)? {
            Ok(_) => Ok(Outcome::processed(format!(
                "{label} attached for auto-track (target {target})"
            ))
            .sent(ConnectorInstance::TYPE, instance, "AutoTrack")),
            Err(InstanceError::AutoTrackOff) => Ok(Outcome::ignored(format!(
                "no target tracks {label} and auto_track is off"
            ))),
            Err(err) => Ok(Outcome::ignored(format!(
                "{label} not tracked automatically: {err}"
            ))),
        }
    }

    async fn installation(
        &self,
        e: gh::InstallationEvent,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let id = InstallationId(e.installation.id);
        let command = match e.action.as_str() {
            "created" => InstanceCommand::Connect {
                auto_track: None,
                installation_id: id,
                account: e.installation.account.login,
                repository_selection: e.installation.repository_selection,
                repositories: e
                    .repositories
                    .unwrap_or_default()
                    .iter()
                    .map(repository)
                    .collect::<Result<_, _>>()?,
            },
            "deleted" => InstanceCommand::Delete,
            "suspend" => InstanceCommand::Suspend,
            "unsuspend" => InstanceCommand::Unsuspend,
            "new_permissions_accepted" => InstanceCommand::AcceptPermissions {
                permissions: e.installation.permissions,
            },
            other => {
                return Ok(Outcome::ignored(format!(
                    "installation.{other} needs no change"
                )))
            }
        };
        self.instance(id, command, meta).await
    }

    async fn installation_repositories(
        &self,
        e: gh::InstallationRepositoriesEvent,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let command = match e.action.as_str() {
            "added" => InstanceCommand::AddRepositories {
                repositories: e
                    .repositories_added
                    .iter()
                    .map(repository)
                    .collect::<Result<_, _>>()?,
            },
            "removed" => InstanceCommand::RemoveRepositories {
                deleted: false,
                repository_ids: e
                    .repositories_removed
                    .iter()
                    .map(|r| RepositoryId(r.id))
                    .collect(),
            },
            other => {
                return Ok(Outcome::ignored(format!(
                    "installation_repositories.{other} needs no change"
                )))
            }
        };
        self.instance(InstallationId(e.installation.id), command, meta)
            .await
    }

    async fn repository(
        &self,
        e: gh::RepositoryEvent,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let Some(installation) = e.installation else {
            return Ok(Outcome::ignored("repository event without an installation"));
        };
        let repo = repository(&e.repository)?;
        let command = match e.action.as_str() {
            "renamed" | "transferred" => InstanceCommand::RenameRepository {
                repository_id: repo.id,
                repository: repo.full_name,
            },
            "deleted" => InstanceCommand::RemoveRepositories {
                repository_ids: vec![repo.id],
                deleted: true,
            },
            other => {
                return Ok(Outcome::ignored(format!(
                    "repository.{other} needs no change"
                )))
            }
        };
        self.instance(InstallationId(installation.id), command, meta)
            .await
    }

    /// Runs `command` on the instance; the process manager follows its events.
    async fn instance(
        &self,
        installation: InstallationId,
        command: InstanceCommand,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let id = InstanceId(installation);
        let name = command.name();
        match settle(self.bus.instance(id, command, meta).await)? {
            Ok(_) => Ok(
                Outcome::processed(format!("installation {installation} updated")).sent(
                    ConnectorInstance::TYPE,
                    id,
                    name,
                ),
            ),
            Err(err) => Ok(Outcome::ignored(format!(
                "installation {installation}: {err}"
            ))),
        }
    }
}
