//! Property tests of what one delivery makes happen, without infrastructure: `Parsed::parse`
//! decodes any payload of any event into a `Parsed` or a poison `Failure` (never a panic, never a
//! retry), and `process::run` turns any decoded delivery, whatever each command's answer, into an
//! `Outcome` or a `Failure` by the rules in `process`'s module doc.
//!
//! `run` sends its commands to a scripted `Commands` (`script`), the one thing faked here: each
//! call is answered from a drawn list (handled, already applied, each refusal, conflict, store
//! unavailable, corrupt), so every branch of the mapping is reached; the aggregates' own rules are
//! tested in `hooklog-domain`, and this file's neighbours run the same mapping against PostgreSQL.
//! Payloads are GitHub's own examples (`@octokit/webhooks-examples`) with the fields hooklog
//! decides on redrawn (`payloads`), or cut and padded bytes.
//!
//! Cases: 10,000 per property; `HOOKLOG_PROPTEST_CASES=100000 cargo test -p hooklog-worker
//! --test it properties` runs more (no database or NATS is started). A failure prints the
//! smallest input it shrank to and proptest keeps its seed in `tests/proptest-regressions/`;
//! `PROPTEST_RNG_SEED=<u64>` fixes a run's seed.

mod payloads;
mod script;

use hooklog_domain::github::events::{self as gh};
use hooklog_domain::ids::{Branch, InstallationId, InstanceId, RepositoryId, TargetId};
use hooklog_worker::process::{run, Delivery, Failure, OutcomeKind, Parsed};
use hooklog_write::AggregateRef;
use proptest::prelude::*;

use payloads::{any_delivery, decided_delivery, Drawn, ACTED_ON};
use script::{now, Reply, Script};

/// `HOOKLOG_PROPTEST_CASES` cases per property (10,000 unless set).
fn config() -> ProptestConfig {
    let cases = std::env::var("HOOKLOG_PROPTEST_CASES").map_or(10_000, |value| {
        value
            .parse()
            .expect("HOOKLOG_PROPTEST_CASES is a number of cases")
    });
    ProptestConfig::with_cases(cases)
}

/// The first command the rules of `process` say a delivery sends: the aggregate and the
/// command's name, or `None` when it sends nothing.
fn first_command(drawn: &Drawn) -> Option<(AggregateRef, &'static str)> {
    let p = &drawn.payload;
    let installation = p["installation"]["id"].as_u64().map(InstallationId);
    let instance = |name| Some((AggregateRef::Instance(InstanceId(installation?)), name));
    let action = p["action"].as_str().unwrap_or_default();
    match drawn.event.as_str() {
        "push" => {
            let branch = p["ref"].as_str()?.strip_prefix("refs/heads/")?;
            let target = TargetId::for_branch(
                installation?,
                RepositoryId(p["repository"]["id"].as_u64()?),
                &Branch::parse(branch).ok()?,
            );
            Some((AggregateRef::Target(target), "RecordPush"))
        }
        "installation" => instance(match action {
            "created" => "Connect",
            "deleted" => "Delete",
            "suspend" => "Suspend",
            "unsuspend" => "Unsuspend",
            "new_permissions_accepted" => "AcceptPermissions",
            _ => return None,
        }),
        "installation_repositories" => instance(match action {
            "added" => "AddRepositories",
            "removed" => "RemoveRepositories",
            _ => return None,
        }),
        "repository" => instance(match action {
            "renamed" | "transferred" => "RenameRepository",
            "deleted" => "RemoveRepositories",
            _ => return None,
        }),
        "installation_target" if action == "renamed" => instance("RenameAccount"),
        "ping" => instance("RecordPing"),
        _ => None,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any body as any event: the events hooklog acts on decode to their `Parsed` variant or are
    /// poison (exactly when the domain's typed parse refuses them); every other event is
    /// `Other` whatever its body. Nothing is ever a retry. The aggregates a decoded delivery
    /// names never panic to compute, and a push names its instance whenever it has one.
    #[test]
    fn any_delivery_decodes_or_is_poison_and_never_a_retry(drawn in any_delivery()) {
        let delivery = drawn.delivery();
        let acted_on = ACTED_ON.contains(&drawn.event.as_str());
        match Parsed::parse(delivery) {
            Ok(Parsed::Other(name)) => prop_assert!(!acted_on && name == drawn.event),
            Ok(parsed) => {
                prop_assert!(acted_on);
                let aggregates = parsed.aggregates();
                prop_assert!(aggregates.len() <= 2);
                if let Parsed::Push(push) = &parsed {
                    let instance = push.installation.as_ref().map(|i| {
                        AggregateRef::Instance(InstanceId(InstallationId(i.id)))
                    });
                    prop_assert_eq!(aggregates.first(), instance.as_ref());
                }
            }
            Err(Failure::Poison(reason)) => {
                prop_assert!(acted_on, "{} refused: {reason}", drawn.event);
                prop_assert!(domain_refuses(delivery), "poison, yet the domain parses it");
            }
            Err(Failure::Retry(reason)) => {
                prop_assert!(false, "decoding asked for a retry: {reason}")
            }
        }
    }

    /// Any decided delivery, whatever each command is answered: `run` sends at most two commands,
    /// only to aggregates that `Parsed::aggregates` named (so a batch has loaded them), the first
    /// one the rules name, with the delivery's own metadata; a second only after a push's target
    /// said `NotTracked`, as `AutoTrack` to the instance, for an undeleted push to the default
    /// branch. A retryable answer is a retry, a corrupt one poison, and a command the aggregate
    /// took is the outcome's one recorded command.
    #[test]
    fn run_sends_what_the_rules_say_to_the_aggregates_it_named(
        drawn in decided_delivery(),
        replies in prop::collection::vec(any::<Reply>(), 0..3),
    ) {
        let delivery = drawn.delivery();
        let meta = hooklog_domain::metadata::CommandMetadata::from_delivery(delivery.delivery_id);
        let parsed = match Parsed::parse(delivery) {
            Ok(parsed) => parsed,
            Err(Failure::Poison(_)) => return Ok(()),
            Err(err) => return Err(TestCaseError::fail(format!("{err}"))),
        };
        let named = parsed.aggregates();
        let push = match &parsed { Parsed::Push(push) => Some(push.clone()), _ => None };
        let script = Script::new(replies);
        let result = now(run(&script, parsed, &meta));
        let calls = script.calls();

        for call in &calls {
            prop_assert!(named.contains(&call.aggregate), "{call:?} not among {named:?}");
            prop_assert_eq!(&call.metadata, &meta);
        }
        match (calls.first(), first_command(&drawn)) {
            (Some(call), Some((aggregate, name))) => {
                prop_assert_eq!(&call.aggregate, &aggregate);
                prop_assert_eq!(call.command, name);
            }
            // A payload the rules would act on can still fail an id check first (a branch, a
            // repository name or a SHA): that is poison, with nothing sent.
            (None, Some(_)) => {
                prop_assert!(matches!(result, Err(Failure::Poison(_))), "{result:?}")
            }
            (None, None) => {}
            (Some(call), None) => prop_assert!(false, "{call:?} sent against the rules"),
        }
        if let [first, second] = calls.as_slice() {
            let push = push.as_ref().expect("only a push sends two commands");
            prop_assert_eq!(first.reply, Reply::NotTracked);
            prop_assert_eq!(second.command, "AutoTrack");
            let branch = push.git_ref.strip_prefix("refs/heads/");
            prop_assert!(!push.deleted && push.repository.default_branch.as_deref() == branch);
        }
        prop_assert!(calls.len() <= 2);

        let last = calls.last().map(|call| call.reply);
        match result {
            Err(Failure::Retry(_)) => prop_assert!(last.is_some_and(Reply::is_retryable)),
            Err(Failure::Poison(_)) => prop_assert!(last.is_none_or(|r| r == Reply::Corrupt)),
            Ok(outcome) => {
                prop_assert!(last.is_none_or(|r| !r.is_retryable() && r != Reply::Corrupt));
                let took = calls.last().filter(|call| call.reply.took());
                let recorded: Vec<_> = outcome.commands.iter()
                    .map(|c| (c.aggregate_id.clone(), c.command.clone()))
                    .collect();
                let expected: Vec<_> = took.iter()
                    .map(|call| (call.aggregate_id(), call.command.to_owned()))
                    .collect();
                prop_assert_eq!(recorded, expected);
                let silent_ping = drawn.event == "ping" && calls.is_empty();
                prop_assert_eq!(
                    outcome.kind == OutcomeKind::Processed,
                    took.is_some() || silent_ping,
                    "{:?}", outcome
                );
            }
        }
        if let (Some(push), Some(call)) = (&push, calls.first()) {
            let recorded = call.push.as_ref().expect("a target is only sent RecordPush");
            prop_assert_eq!(recorded.head_sha.as_str(), push.after.as_str());
            prop_assert_eq!(recorded.before_sha.as_str(), push.before.as_str());
            prop_assert_eq!((recorded.forced, recorded.deleted), (push.forced, push.deleted));
            prop_assert_eq!(recorded.delivery_id.as_str(), delivery.delivery_id);
        }
    }
}

/// Whether the domain's typed parse refuses the delivery's payload.
fn domain_refuses(d: Delivery<'_>) -> bool {
    let (event, ct, body) = (d.event, d.content_type, d.body);
    match event {
        "push" => gh::parse::<gh::PushEvent>(event, ct, body).is_err(),
        "installation" => gh::parse::<gh::InstallationEvent>(event, ct, body).is_err(),
        "installation_repositories" => {
            gh::parse::<gh::InstallationRepositoriesEvent>(event, ct, body).is_err()
        }
        "repository" => gh::parse::<gh::RepositoryEvent>(event, ct, body).is_err(),
        "installation_target" => gh::parse::<gh::InstallationTargetEvent>(event, ct, body).is_err(),
        "ping" => gh::parse::<gh::PingEvent>(event, ct, body).is_err(),
        _ => false,
    }
}
