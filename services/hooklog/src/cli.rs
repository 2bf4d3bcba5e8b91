//! The command line. Settings come from `hooklog.toml` and `HOOKLOG_*` variables; flags here
//! only choose what to do.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hooklog",
    version,
    about = "Keeps a server's copy of GitHub repositories in step with GitHub App webhooks, with a replayable record of every delivery."
)]
pub struct Cli {
    /// Settings file (TOML). Default: ./hooklog.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run hooklog's roles (all of them unless --role picks some).
    Serve(ServeArgs),
    /// Create the database when missing and apply pending migrations.
    Migrate,
    /// Sign a payload file with the webhook secret and post it the way GitHub does.
    Deliver(DeliverArgs),
    /// Track, untrack and list the repository branches hooklog keeps in step.
    #[command(subcommand)]
    Targets(TargetsCommand),
    /// Rebuild the read models from the streams, or check them against a rebuild.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// The auditors' tools for the transparency logs of both streams.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a range of a stream as JSON Lines (seq, time, subject, headers, body or
    /// body_base64, leaf_hash), to stdout or --out; stops at the end of the range or of the
    /// stream as it was when the replay started. Prints the rate to stderr.
    Replay(ReplayArgs),
    /// The GitHub reconciler's findings: deliveries GitHub attempted that the stream lacked,
    /// and redeliveries asked now.
    #[command(subcommand)]
    Github(GithubCommand),
    /// Connect repositories without the App: hooklog creates (and on disconnect deletes) their
    /// webhooks at GitHub or GitLab with a secret of its own.
    #[command(subcommand)]
    Repositories(RepositoriesCommand),
    /// The vault of repository connections' secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum RepositoriesCommand {
    /// Connect one branch of a repository (prints the connection id; the webhook is created by
    /// `hooklog serve`'s repositories role).
    Connect(ConnectRepositoryArgs),
    /// Every connection in the event store, one JSON object per line (never a secret).
    List,
    /// Try again to create a connection's webhook after a failure.
    Retry(ConnectionArgs),
    /// Disconnect: deliveries are refused at once, the webhook is deleted, then the
    /// connection is disconnected.
    Disconnect(ConnectionArgs),
}

#[derive(Debug, Args)]
pub struct ConnectRepositoryArgs {
    /// github or gitlab.
    #[arg(long)]
    pub provider: String,
    /// GitHub: OWNER/NAME; GitLab: the project's path (group/sub/name) or numeric id.
    #[arg(long)]
    pub repository: String,
    /// The branch to track, without refs/heads/.
    #[arg(long)]
    pub branch: String,
    /// A file holding the provider token (`-`: standard input). Without it, the token is read
    /// from HOOKLOG_REPOSITORY_TOKEN. Never taken on the command line, where `ps` shows it.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// The connection id, as `hooklog repositories list` shows it.
    pub connection: String,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every secret under HOOKLOG_SECRETS_KEY again (after moving the old key to
    /// HOOKLOG_SECRETS_KEY_PREVIOUS); safe to run again.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum GithubCommand {
    /// Deliveries GitHub attempted that GITHUB_DELIVERIES lacked when the reconciler looked,
    /// newest found first, one JSON object per line.
    Deliveries(GithubDeliveriesArgs),
    /// Ask GitHub now for the next redelivery of a recorded GUID (or of every one not arrived).
    Redeliver(RedeliverArgs),
}

#[derive(Debug, Args)]
pub struct GithubDeliveriesArgs {
    /// Only those not arrived (missing, requested or unrecoverable).
    #[arg(long)]
    pub missing: bool,
    /// Only those with this status: missing, requested, arrived or unrecoverable.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RedeliverArgs {
    /// The delivery's GUID (`X-GitHub-Delivery`), as `hooklog github deliveries` lists it.
    pub guid: Option<String>,
    /// Every recorded GUID that has not arrived.
    #[arg(long)]
    pub all_missing: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Which stream: deliveries (GITHUB_DELIVERIES) or events (HOOKLOG_EVENTS).
    #[arg(value_enum)]
    pub log: LogName,
    /// First stream sequence (default 1).
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Last stream sequence (default: the stream's last when the replay starts).
    #[arg(long)]
    pub to_seq: Option<u64>,
    /// Only messages stored at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only messages stored at or before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Deliveries of this GitHub event (e.g. push).
    #[arg(long)]
    pub event: Option<String>,
    /// Messages about this installation id.
    #[arg(long)]
    pub installation: Option<u64>,
    /// Messages about this repository (OWNER/NAME or its numeric id).
    #[arg(long)]
    pub repository: Option<String>,
    /// Events of one aggregate, TYPE/ID (e.g. ConnectorInstance/github-installation-42).
    #[arg(long, value_name = "TYPE/ID")]
    pub aggregate: Option<String>,
    /// Every body as body_base64 (its exact bytes), JSON or not.
    #[arg(long)]
    pub raw: bool,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Instead of the events, print the state of --aggregate folded from them up to --to-seq
    /// or --until (default: all), as the admin API's `/state` route answers it.
    #[arg(long, requires = "aggregate")]
    pub state: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Generate an Ed25519 signed-note key for the audit checkpoints: writes the private key
    /// (`PRIVATE+KEY+<name>+<id>+<base64>`, as Go's note.GenerateKey does) to --out with mode
    /// 0600, never over an existing file, and prints the verifier key for auditors.
    Keygen(KeygenArgs),
    /// Print the inclusion proof of one delivery (or one message of a log) in the latest signed
    /// checkpoint, in the C2SP tlog-proof form: `index`, the proof's hashes, a blank line and the
    /// checkpoint; the `extra` line holds the entry (base64) whose leaf hash the proof starts
    /// from. Exits 2 when it is not sealed yet or there is no such delivery.
    Prove(ProveArgs),
    /// Check both logs: streams immutable and contiguous from 1, bodies matching their digests
    /// (and, with --secret, their GitHub signatures), every checkpoint signed by --public-key and
    /// the root of the stream's first leaves, the stored tiles, and HOOKLOG_EVENTS equal to the
    /// event store. Prints a report (ok, skipped, FINDING lines naming stream and sequence);
    /// exits 1 on any finding, 2 when it cannot run.
    Verify(VerifyArgs),
    /// Write a range of one log with its checkpoint and proofs to a new directory, for
    /// `audit verify --bundle` to check offline: DIR/manifest, DIR/checkpoint, and per message
    /// DIR/<seq>.tlog-proof and DIR/<seq>.body.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    pub log: LogName,
    #[arg(long)]
    pub from_seq: u64,
    #[arg(long)]
    pub to_seq: u64,
    /// A new or empty directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The checkpoints' verifier key (`<name>+<id>+<base64>`), or a file holding it. Without
    /// it, signatures are not checked (the report says so).
    #[arg(long, value_name = "KEY_OR_FILE")]
    pub public_key: Option<String>,
    /// A webhook secret deliveries may be signed with; repeat for rotated secrets.
    #[arg(long)]
    pub secret: Vec<String>,
    /// Check the bundle `audit export` wrote to DIR instead, offline (no database, no NATS);
    /// needs --public-key.
    #[arg(long, value_name = "DIR", requires = "public_key")]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["delivery_id", "seq"])))]
pub struct ProveArgs {
    /// The delivery (X-GitHub-Delivery); the first message on GITHUB_DELIVERIES that carries it.
    #[arg(long)]
    pub delivery_id: Option<String>,
    /// A stream sequence of --log instead.
    #[arg(long)]
    pub seq: Option<u64>,
    /// The log of --seq.
    #[arg(long, value_enum, default_value = "deliveries", requires = "seq")]
    pub log: LogName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogName {
    Deliveries,
    Events,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name, which checkpoint origins start with (`<name>/deliveries`,
    /// `<name>/events`), e.g. `audit.example.com`.
    #[arg(long)]
    pub name: String,
    /// Where to write the private key (HOOKLOG_AUDIT_SIGNING_KEY_FILE reads it).
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Replay a projection from sequence 1 into the shadow schema `hooklog_rebuild`, then swap
    /// it into the live tables (or, with --verify, compare it with them and change nothing).
    /// Prints one JSON report per projection; with --verify, exits 1 when a table differs.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Which projection (default: every one).
    #[arg(long, value_enum)]
    pub projection: Option<ProjectionName>,
    /// Compare the rebuilt tables with the live ones at the same stream position instead of
    /// replacing them.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProjectionName {
    /// Instances, targets, sync runs, delivery effects (from HOOKLOG_EVENTS).
    Connector,
    /// Deliveries (from GITHUB_DELIVERIES).
    Deliveries,
}

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Track one branch of one repository of an installation (prints the target id).
    Track(TrackArgs),
    /// Stop tracking a target; its history stays in the event store.
    Untrack(UntrackArgs),
    /// Every target in the event store, one JSON object per line.
    List,
}

#[derive(Debug, Args)]
pub struct TrackArgs {
    /// GitHub App installation id.
    #[arg(long)]
    pub installation: u64,
    /// GitHub repository id (stable across renames), e.g. from the repository API.
    #[arg(long)]
    pub repository_id: u64,
    /// Repository full name, OWNER/NAME.
    #[arg(long)]
    pub repository: String,
    /// Branch to keep in step, without refs/heads/.
    #[arg(long)]
    pub branch: String,
    /// Record pushes without requesting syncs.
    #[arg(long)]
    pub no_auto_sync: bool,
    /// Read the branch from this git repository (an absolute path or a URL) instead of the
    /// GitHub App; it must be under a prefix of HOOKLOG_SYNCER_ALLOWED_SOURCES.
    #[arg(long, value_name = "PATH_OR_URL")]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct UntrackArgs {
    /// The target id `track` printed (also in `targets list`).
    #[arg(long)]
    pub target: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Role {
    /// The GitHub webhook receiver on HOOKLOG_INGRESS_ADDR.
    Ingress,
    /// Health, readiness and the admin API on HOOKLOG_ADMIN_ADDR.
    Admin,
    /// Turns stored deliveries into commands on the aggregates.
    Worker,
    /// Publishes every committed domain event to HOOKLOG_EVENTS.
    Relay,
    /// Keeps the read models from HOOKLOG_EVENTS and GITHUB_DELIVERIES.
    Projector,
    /// Runs requested syncs (GitHub App or git source) and the reconcile loop.
    Syncer,
    /// Runs every cross-aggregate step (cascades) from the events on HOOKLOG_EVENTS.
    ProcessManager,
    /// Keeps both streams' Merkle trees and tiles and signs checkpoints into HOOKLOG_AUDIT.
    Sealer,
    /// Has GitHub redeliver what the App's webhook delivery log has and GITHUB_DELIVERIES lacks
    /// (needs the GitHub App; in the default roles only when it is configured).
    GithubReconciler,
    /// Creates, adopts and deletes the webhooks of repositories connected without the App
    /// (needs HOOKLOG_SECRETS_KEY; in the default roles only when it is set).
    Repositories,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Roles to run; repeat or separate with commas. Default: all.
    #[arg(long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
}

#[derive(Debug, Args)]
pub struct DeliverArgs {
    /// GitHub event name (X-GitHub-Event), e.g. push.
    #[arg(long)]
    pub event: String,
    /// File holding the JSON payload, sent byte for byte.
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,
    /// Webhook URL. Default: the ingress at HOOKLOG_INGRESS_ADDR.
    #[arg(long)]
    pub url: Option<String>,
    /// Secret to sign with. Default: HOOKLOG_GITHUB_WEBHOOK_SECRET.
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// Delivery id (X-GitHub-Delivery). Default: a new random UUID.
    #[arg(long)]
    pub delivery_id: Option<String>,
}
