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
use hooklog_domain::clock::Timestamp;
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
use hooklog_domain::repository_connection::{
    ConnectionCommand, ConnectionId, PullRequest, PullRequestState, RepositoryConnection,
    WorkflowRun,
};

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
    /// A delivery of a repository connection's webhook (see [`Parsed::for_connection`]).
    Connection(Box<ConnectionDelivery>),
}

/// What a repository connection's webhook sent, as far as the worker reads it.
#[derive(Debug)]
pub struct ConnectionDelivery {
    pub connection: String,
    pub event: String,
    /// A ping's hook id.
    pub hook_id: Option<u64>,
    /// What the delivery asks of the connection (a completed workflow run, a pull request's
    /// change), with the connection's id.
    pub command: Option<(ConnectionId, ConnectionCommand)>,
    /// Why a delivery the connection acts on asks nothing (a run not completed yet).
    pub nothing: Option<String>,
    /// A push to a branch (GitHub's, or GitLab's Push Hook): the connection's target of that
    /// branch and the push (its delivery id is the delivery's, set when it runs).
    pub push: Option<(TargetId, Branch, Push)>,
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

    /// A repository connection's delivery. Its webhook speaks for one repository and nothing
    /// else: whoever administers that repository can set the webhook's secret, so an App
    /// event (`installation`, `installation_repositories`, …) from it is never acted on.
    pub fn for_connection(connection: &str, delivery: Delivery<'_>) -> Result<Self, Failure> {
        let (event, ct, body) = (delivery.event, delivery.content_type, delivery.body);
        let id = ConnectionId::parse(connection)?;
        let mut parsed = ConnectionDelivery {
            connection: connection.to_owned(),
            event: event.to_owned(),
            hook_id: None,
            command: None,
            nothing: None,
            push: None,
        };
        match event {
            "ping" => parsed.hook_id = gh::parse::<gh::PingEvent>(event, ct, body)?.hook_id,
            "push" | "gitlab_push_hook" => {
                let (git_ref, before, after, forced, deleted) = if event == "push" {
                    let e: gh::PushEvent = gh::parse(event, ct, body)?;
                    (e.git_ref, e.before, e.after, e.forced, e.deleted)
                } else {
                    let e: gh::GitlabPushEvent = gh::parse(event, ct, body)?;
                    let deleted = e.after.bytes().all(|b| b == b'0');
                    (e.git_ref, e.before, e.after, false, deleted)
                };
                match git_ref.strip_prefix("refs/heads/") {
                    Some(branch) => {
                        let branch = Branch::parse(branch)?;
                        let push = Push {
                            head_sha: CommitSha::parse(&after)?,
                            before_sha: CommitSha::parse(&before)?,
                            forced,
                            deleted,
                            delivery_id: String::new(),
                        };
                        let target = TargetId::for_connection(id, &branch);
                        parsed.push = Some((target, branch, push));
                    }
                    None => {
                        parsed.nothing = Some(format!(
                            "{git_ref} is not a branch; targets follow branches"
                        ))
                    }
                }
            }
            "workflow_run" => {
                let e: gh::WorkflowRunEvent = gh::parse(event, ct, body)?;
                match (e.action.as_str(), &e.workflow_run.head_branch) {
                    ("completed", Some(branch)) => {
                        let run = &e.workflow_run;
                        let command = ConnectionCommand::RecordWorkflowRun(WorkflowRun {
                            repository_id: e.repository.id,
                            run_id: run.id,
                            workflow_id: run.workflow_id,
                            name: run.name.clone().unwrap_or_default(),
                            branch: Branch::parse(branch)?,
                            head_sha: CommitSha::parse(&run.head_sha)?,
                            run_number: run.run_number,
                            run_attempt: run.run_attempt,
                            conclusion: run.conclusion.clone(),
                            url: run.html_url.clone(),
                            updated_at: timestamp("workflow_run.updated_at", &run.updated_at)?,
                        });
                        parsed.command = Some((id, command));
                    }
                    ("completed", None) => {
                        parsed.nothing = Some("the run has no head branch".to_owned())
                    }
                    (action, _) => {
                        parsed.nothing = Some(format!("workflow_run.{action}: not completed yet"))
                    }
                }
            }
            "pull_request" => {
                let e: gh::PullRequestEvent = gh::parse(event, ct, body)?;
                let pr = &e.pull_request;
                let state = match (
                    pr.state.as_str(),
                    pr.merged.unwrap_or(false) || pr.merged_at.is_some(),
                ) {
                    ("open", _) => PullRequestState::Open,
                    ("closed", true) => PullRequestState::Merged,
                    ("closed", false) => PullRequestState::Closed,
                    (other, _) => {
                        return Err(Failure::Poison(format!(
                            "pull_request.state {other:?} is neither open nor closed"
                        )))
                    }
                };
                let command = ConnectionCommand::RecordPullRequest(PullRequest {
                    repository_id: e.repository.id,
                    number: pr.number,
                    title: pr.title.clone(),
                    state,
                    action: e.action.clone(),
                    head_branch: pr.head.git_ref.clone(),
                    base_branch: pr.base.git_ref.clone(),
                    head_sha: CommitSha::parse(&pr.head.sha)?,
                    url: pr.html_url.clone(),
                    updated_at: timestamp("pull_request.updated_at", &pr.updated_at)?,
                });
                parsed.command = Some((id, command));
            }
            "gitlab_pipeline_hook" => {
                let e: gh::GitlabPipelineEvent = gh::parse(event, ct, body)?;
                let p = &e.object_attributes;
                let finished = p.finished_at.as_deref().or(p.created_at.as_deref());
                match (p.tag, finished) {
                    (true, _) => parsed.nothing = Some("a tag's pipeline".to_owned()),
                    (false, None) => {
                        parsed.nothing = Some(format!("pipeline {} not finished", p.id))
                    }
                    (false, Some(finished)) => {
                        let finished = gitlab_timestamp("object_attributes.finished_at", finished)?;
                        let conclusion = match p.status.as_str() {
                            "failed" => Some("failure".to_owned()),
                            "success" => Some("success".to_owned()),
                            other => Some(other.to_owned()),
                        };
                        let url = p.url.clone().unwrap_or_else(|| {
                            let web = e.project.web_url.clone().unwrap_or_default();
                            format!("{web}/-/pipelines/{}", p.id)
                        });
                        // A retried pipeline keeps its id and finishes again later: its
                        // finish time orders its attempts.
                        let attempt = finished
                            .0
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        let command = ConnectionCommand::RecordWorkflowRun(WorkflowRun {
                            repository_id: e.project.id,
                            run_id: p.id,
                            workflow_id: GITLAB_PIPELINE_WORKFLOW,
                            name: p.name.clone().unwrap_or_else(|| "pipeline".to_owned()),
                            branch: Branch::parse(&p.git_ref)?,
                            head_sha: CommitSha::parse(&p.sha)?,
                            run_number: p.id,
                            run_attempt: attempt,
                            conclusion,
                            url,
                            updated_at: finished,
                        });
                        parsed.command = Some((id, command));
                    }
                }
            }
            "gitlab_merge_request_hook" => {
                let e: gh::GitlabMergeRequestEvent = gh::parse(event, ct, body)?;
                let mr = &e.object_attributes;
                let state = match mr.state.as_str() {
                    "opened" | "locked" => PullRequestState::Open,
                    "merged" => PullRequestState::Merged,
                    "closed" => PullRequestState::Closed,
                    other => {
                        return Err(Failure::Poison(format!(
                            "object_attributes.state {other:?} is not a merge request state"
                        )))
                    }
                };
                let command = ConnectionCommand::RecordPullRequest(PullRequest {
                    repository_id: e.project.id,
                    number: mr.iid,
                    title: mr.title.clone(),
                    state,
                    action: mr.action.clone().unwrap_or_else(|| mr.state.clone()),
                    head_branch: mr.source_branch.clone(),
                    base_branch: mr.target_branch.clone(),
                    head_sha: CommitSha::parse(&mr.last_commit.id)?,
                    url: mr.url.clone(),
                    updated_at: gitlab_timestamp("object_attributes.updated_at", &mr.updated_at)?,
                });
                parsed.command = Some((id, command));
            }
            _ => {}
        }
        Ok(Self::Connection(Box::new(parsed)))
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
            Self::Connection(c) => c
                .command
                .as_ref()
                .map(|(id, _)| AggregateRef::Connection(*id))
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

    /// Runs a decoded delivery, each command committing alone through the bus.
    #[tracing::instrument(skip_all, fields(delivery_id = %delivery_id))]
    pub async fn process(&self, delivery_id: &str, parsed: Parsed) -> Result<Outcome, Failure> {
        let meta = CommandMetadata::from_delivery(delivery_id);
        run(&self.bus, parsed, &meta).await
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
        Parsed::Connection(mut c) => match (c.command.take(), c.push.take()) {
            (Some((id, command)), _) => on.connection(id, &c.event, command, meta).await,
            (None, Some((target, branch, push))) => {
                on.connection_push(&c.connection, target, branch, push, meta)
                    .await
            }
            (None, None) => Ok(connection_outcome(*c)),
        },
    }
}

/// The "workflow" all of a GitLab project's pipelines on a branch count as: an incident opens
/// when the branch's pipelines start failing and resolves when one succeeds again.
const GITLAB_PIPELINE_WORKFLOW: u64 = 0;

/// A GitLab payload's time (RFC 3339, or `2016-08-12 15:23:28 UTC`).
fn gitlab_timestamp(field: &str, value: &str) -> Result<Timestamp, Failure> {
    let text = gh::gitlab_time(value).unwrap_or_default();
    timestamp(field, &text)
}

/// A timestamp of a payload (RFC 3339); one that does not parse is poison.
fn timestamp(field: &str, value: &str) -> Result<Timestamp, Failure> {
    Timestamp::parse_rfc3339(value).map_err(|err| Failure::Poison(format!("{field}: {err}")))
}

/// What a repository connection's delivery that asks nothing of it comes to: a ping, a push of
/// a tag, a run not completed. Anything but its
/// pings, pushes, workflow runs and pull requests is not its webhook's to send.
fn connection_outcome(c: ConnectionDelivery) -> Outcome {
    match c.event.as_str() {
        "ping" => Outcome::processed(format!(
            "webhook ping of repository connection {} (hook {})",
            c.connection,
            c.hook_id.map_or("unknown".to_owned(), |id| id.to_string())
        )),
        "workflow_run" | "gitlab_pipeline_hook" => Outcome::ignored(format!(
            "workflow run of repository connection {}: {}",
            c.connection,
            c.nothing.unwrap_or_default()
        )),
        "push" | "gitlab_push_hook" => Outcome::ignored(format!(
            "push of repository connection {}: {}",
            c.connection,
            c.nothing.unwrap_or_default()
        )),
        other => Outcome::ignored(format!(
            "`{other}` from repository connection {}: a repository webhook speaks for its \
             repository only; not acted on",
            c.connection
        )),
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
        if let Some(done) = self.record_push(target, push.clone(), &label, meta).await? {
            return Ok(done);
        }
        let default_branch = e.repository.default_branch.as_deref();
        if push.deleted || default_branch != Some(branch.as_str()) {
            return Ok(Outcome::ignored(format!("no target tracks {label}")));
        }
        self.auto_track(installation, repo, branch, push, meta)
            .await
    }

    /// Sends `push` to `target` (`label` in the outcome): processed when taken, ignored with
    /// the reason when refused; `None` when no target is tracked there (the caller's to say
    /// what that means).
    async fn record_push(
        &self,
        target: TargetId,
        push: Push,
        label: &str,
        meta: &CommandMetadata,
    ) -> Result<Option<Outcome>, Failure> {
        let sent = self
            .commands
            .target(target, TargetCommand::RecordPush(push), meta)
            .await;
        Ok(match settle(sent)? {
            Ok(_) => Some(Outcome::processed(format!("push to {label}")).sent(
                ConnectorTarget::TYPE,
                target,
                "RecordPush",
            )),
            Err(TargetError::NotTracked) => None,
            Err(err) => Some(Outcome::ignored(format!("{label}: {err}"))),
        })
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
        // Only a rename takes the name; a deletion goes by id, so a name hooklog could not
        // parse does not keep a deleted repository's targets alive.
        let command = match e.action.as_str() {
            "renamed" | "transferred" => {
                let repo = repository(&e.repository)?;
                InstanceCommand::RenameRepository {
                    repository_id: repo.id,
                    repository: repo.full_name,
                }
            }
            "deleted" => InstanceCommand::RemoveRepositories {
                repository_ids: vec![RepositoryId(e.repository.id)],
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
    async fn connection(
        &self,
        id: ConnectionId,
        event: &str,
        command: ConnectionCommand,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        let name = command.name();
        match settle(self.commands.connection(id, command, meta).await)? {
            Ok(_) => Ok(Outcome::processed(format!(
                "`{event}` recorded on repository connection {id}"
            ))
            .sent(RepositoryConnection::TYPE, id, name)),
            Err(err) => Ok(Outcome::ignored(format!(
                "`{event}` of repository connection {id}: {err}"
            ))),
        }
    }

    /// A repository connection's push: to its target of the branch, under the same rules as the
    /// App's pushes. A branch other than the connected one has no target.
    async fn connection_push(
        &self,
        connection: &str,
        target: TargetId,
        branch: Branch,
        mut push: Push,
        meta: &CommandMetadata,
    ) -> Result<Outcome, Failure> {
        push.delivery_id = meta.delivery_id.clone().unwrap_or_default();
        let label =
            format!("branch {branch} of repository connection {connection} (target {target})");
        let done = self.record_push(target, push, &label, meta).await?;
        Ok(done.unwrap_or_else(|| {
            Outcome::ignored(format!(
                "no target tracks {label}: only the connected branch is synced, once its webhook \
                 is created"
            ))
        }))
    }

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
