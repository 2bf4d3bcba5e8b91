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

use hooklog_write::{AggregateRef, CommandBus, CommandError, Commands};

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

/// A delivery's payload, decoded once: what `Processor::run` acts on, and what tells a batch
/// which aggregates to load before it runs.
#[derive(Debug)]
pub enum Parsed {
    Push(gh::PushEvent),
    Installation(gh::InstallationEvent),
    InstallationRepositories(gh::InstallationRepositoriesEvent),
    Repository(gh::RepositoryEvent),
    InstallationTarget(gh::InstallationTargetEvent),
    Ping(gh::PingEvent),
    /// An event hooklog records and does not act on.
    Other(String),
}

impl Parsed {
    /// Decodes the payload of the events hooklog acts on; a payload that does not decode is
    /// poison.
    pub fn parse(delivery: Delivery<'_>) -> Result<Self, Failure> {
        let (event, ct, body) = (delivery.event, delivery.content_type, delivery.body);
        Ok(match event {
            "push" => Self::Push(gh::parse(event, ct, body)?),
            "installation" => Self::Installation(gh::parse(event, ct, body)?),
            "installation_repositories" => {
                Self::InstallationRepositories(gh::parse(event, ct, body)?)
            }
            "repository" => Self::Repository(gh::parse(event, ct, body)?),
            "installation_target" => Self::InstallationTarget(gh::parse(event, ct, body)?),
            "ping" => Self::Ping(gh::parse(event, ct, body)?),
            other => Self::Other(other.to_owned()),
        })
    }

    /// The aggregates that running this may send commands to (a push: its branch's target,
    /// and the instance in case auto-track attaches one), so that a batch loads them all at
    /// once. A name that does not parse is left out: running it reports that.
    pub fn aggregates(&self) -> Vec<AggregateRef> {
        let instance = |id: u64| AggregateRef::Instance(InstanceId(InstallationId(id)));
        match self {
            Self::Push(e) => {
                let Some(installation) = &e.installation else {
                    return vec![];
                };
                let mut touched = vec![instance(installation.id)];
                if let Some(branch) = e
                    .git_ref
                    .strip_prefix("refs/heads/")
                    .and_then(|b| Branch::parse(b).ok())
                {
                    touched.push(AggregateRef::Target(TargetId::for_branch(
                        InstallationId(installation.id),
                        RepositoryId(e.repository.id),
                        &branch,
                    )));
                }
                touched
            }
            Self::Installation(e) => vec![instance(e.installation.id)],
            Self::InstallationRepositories(e) => vec![instance(e.installation.id)],
            Self::Repository(e) => e
                .installation
                .as_ref()
                .map(|i| instance(i.id))
                .into_iter()
                .collect(),
            Self::InstallationTarget(e) => vec![instance(e.installation.id)],
            Self::Ping(e) => e
                .installation
                .as_ref()
                .map(|i| instance(i.id))
                .into_iter()
                .collect(),
            Self::Other(_) => vec![],
        }
    }
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

    /// Decodes the delivery and runs it, each command committing alone through the bus.
    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.delivery_id, event = %delivery.event))]
    pub async fn process(&self, delivery: Delivery<'_>) -> Result<Outcome, Failure> {
        let meta = CommandMetadata::from_delivery(delivery.delivery_id);
        run(&self.bus, Parsed::parse(delivery)?, &meta).await
    }
}

/// Sends the commands a decoded delivery implies through `commands` (the bus, or a batch) and
/// says what came of it.
pub async fn run<C: Commands>(
    commands: &C,
    parsed: Parsed,
    meta: &CommandMetadata,
) -> Result<Outcome, Failure> {
    let on = On { commands };
    match parsed {
        Parsed::Push(e) => on.push(e, meta).await,
        Parsed::Installation(e) => on.installation(e, meta).await,
        Parsed::InstallationRepositories(e) => on.installation_repositories(e, meta).await,
        Parsed::Repository(e) => on.repository(e, meta).await,
        Parsed::InstallationTarget(e) => {
            if e.action != "renamed" {
                return Ok(Outcome::ignored(format!(
                    "installation_target.{} needs no change",
                    e.action
                )));
            }
            let command = InstanceCommand::RenameAccount {
                login: e.account.login,
            };
            on.instance(InstallationId(e.installation.id), command, meta)
                .await
        }
        Parsed::Ping(e) => match e.installation {
            Some(i) => {
                let command = InstanceCommand::RecordPing {
                    hook_id: e.hook_id,
                    zen: e.zen,
                };
                on.instance(InstallationId(i.id), command, meta).await
            }
            None => Ok(Outcome::processed(format!(
                "webhook ping (hook {}) with no installation: recorded on the stream only",
                e.hook_id.map_or("unknown".to_owned(), |id| id.to_string())
            ))),
        },
        Parsed::Other(other) => Ok(Outcome::ignored(format!(
            "`{other}` deliveries are recorded, not acted on"
        ))),
    }
}

/// The handlers of each event, over whichever `Commands` runs them.
struct On<'c, C> {
    commands: &'c C,
}

impl<C: Commands> On<'_, C> {
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
            self.commands
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
        match settle(self.commands.instance(instance, attach, meta).await)? {
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
        match settle(self.commands.instance(id, command, meta).await)? {
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
