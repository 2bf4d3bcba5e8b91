//! `hooklog replay deliveries|events`: a range of a stream as JSON Lines, each message with its
//! sequence, stored time, subject, headers, body and leaf hash (the hash of its canonical entry,
//! so a replayed line can be checked against the audit log's tiles).
//!
//! The range ends at `--to-seq`, `--until` or the stream's last message when the replay
//! started, so it never waits on a live stream. A body that is JSON (on one line) is written as
//! it was stored; with `--raw`, or a body that is not JSON, its bytes are `body_base64`. Filters
//! narrow what is written, never what is read past: `--event` and `--aggregate` become the
//! consumer's subject filter, the others are checked per message.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use futures::StreamExt;
use hooklog_audit::Log;
use hooklog_infra::config::Settings;
use hooklog_infra::streams::{
    check_subject_token, DELIVERIES_SUBJECT_PREFIX, EVENTS_SUBJECT_PREFIX,
};
use hooklog_sealer::message::{stream_message, stream_name};
use serde_json::value::RawValue;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::{LogName, ReplayArgs};
use crate::connect::Streams;

/// What a message must be to be written.
struct Filter {
    installation: Option<u64>,
    repository: Option<String>,
    until: Option<OffsetDateTime>,
}

pub async fn run(settings: &Settings, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let log = match args.log {
        LogName::Deliveries => Log::Deliveries,
        LogName::Events => Log::Events,
    };
    let usage = |message: String| -> anyhow::Result<ExitCode> {
        eprintln!("hooklog: {message}");
        Ok(ExitCode::from(2))
    };
    if let (Some(from), Some(to)) = (args.from_seq, args.to_seq) {
        if from > to {
            return usage(format!("--from-seq {from} is past --to-seq {to}"));
        }
    }
    let parse_time = |name: &str, value: &Option<String>| match value {
        None => Ok(None),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map(Some)
            .map_err(|err| format!("{name}: {text:?} is not an RFC 3339 time ({err})")),
    };
    let since = match parse_time("--since", &args.since) {
        Ok(since) => since,
        Err(message) => return usage(message),
    };
    let until = match parse_time("--until", &args.until) {
        Ok(until) => until,
        Err(message) => return usage(message),
    };
    for (flag, token) in [
        ("--event", args.event.as_deref()),
        (
            "--aggregate",
            args.aggregate
                .as_deref()
                .and_then(|a| a.split_once('/'))
                .map(|(t, _)| t),
        ),
        (
            "--aggregate",
            args.aggregate
                .as_deref()
                .and_then(|a| a.split_once('/'))
                .map(|(_, i)| i),
        ),
    ] {
        if let Some(Err(err)) = token.map(check_subject_token) {
            return usage(format!("{flag}: {err}"));
        }
    }
    let filter_subject = match (log, &args.event, &args.aggregate) {
        (Log::Deliveries, Some(event), None) => format!("{DELIVERIES_SUBJECT_PREFIX}.{event}"),
        (Log::Events, None, Some(aggregate)) => match aggregate.split_once('/') {
            Some((kind, id)) if !kind.is_empty() && !id.is_empty() => {
                format!("{EVENTS_SUBJECT_PREFIX}.{kind}.{id}")
            }
            _ => {
                return usage(format!(
                    "--aggregate: {aggregate:?} is not TYPE/ID (e.g. ConnectorTarget/0b5e…)"
                ))
            }
        },
        (Log::Deliveries, None, None) => format!("{DELIVERIES_SUBJECT_PREFIX}.>"),
        (Log::Events, None, None) => format!("{EVENTS_SUBJECT_PREFIX}.>"),
        (Log::Events, Some(_), _) => {
            return usage("--event filters deliveries; for events use --aggregate".into())
        }
        (Log::Deliveries, _, Some(_)) => {
            return usage("--aggregate filters events; for deliveries use --event".into())
        }
    };
    let filter = Filter {
        installation: args.installation,
        repository: args.repository.clone(),
        until,
    };

    if args.state {
        return state(settings, log, &args).await;
    }
    let streams = Streams::connect(settings, "hooklog-replay").await?;
    let outcome = replay(&streams, log, &args, since, &filter_subject, &filter).await;
    streams.close().await;
    outcome
}

async fn replay(
    streams: &Streams,
    log: Log,
    args: &ReplayArgs,
    since: Option<OffsetDateTime>,
    filter_subject: &str,
    filter: &Filter,
) -> anyhow::Result<ExitCode> {
    let name = stream_name(log);
    let mut stream = match streams.js.get_stream(name).await {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("hooklog: the stream {name} is not there ({err}); has `hooklog serve` run against this NATS server?");
            return Ok(ExitCode::from(2));
        }
    };
    let state = stream
        .info()
        .await
        .with_context(|| format!("cannot read {name}"))?
        .state
        .clone();
    let first = args.from_seq.unwrap_or(1).max(1);
    let last = args
        .to_seq
        .map_or(state.last_sequence, |to| to.min(state.last_sequence));
    if args.from_seq.is_some_and(|from| from > state.last_sequence) {
        eprintln!(
            "hooklog: --from-seq {first} is past the end of {name} (its last sequence is {})",
            state.last_sequence
        );
        return Ok(ExitCode::from(2));
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
    };
    let started = Instant::now();
    let mut written = 0u64;
    let mut read = 0u64;
    if state.messages > 0 && first <= last {
        let deliver_policy = match since {
            Some(time) if args.from_seq.is_none() => {
                DeliverPolicy::ByStartTime { start_time: time }
            }
            _ => DeliverPolicy::ByStartSequence {
                start_sequence: first,
            },
        };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter_subject.to_owned(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot read {name}"))?;
        let progress = progress_bar(last.saturating_sub(first) + 1);
        let mut messages = consumer
            .messages()
            .await
            .with_context(|| format!("cannot read {name}"))?;
        let mut line = Vec::with_capacity(16 * 1024);
        while let Some(message) = messages.next().await {
            let message = message.with_context(|| format!("cannot read {name}"))?;
            let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if sequence > last {
                break;
            }
            if filter.until.is_some_and(|until| info.published > until) {
                break;
            }
            read += 1;
            if since.is_none_or(|since| info.published >= since) && filter.keeps(&message) {
                line.clear();
                write_line(&mut line, &message, args.raw)?;
                out.write_all(&line)?;
                written += 1;
            }
            if let Some(bar) = &progress {
                bar.set_position(sequence.saturating_sub(first) + 1);
            }
            if pending == 0 || sequence == last {
                break;
            }
        }
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
    }
    out.flush()?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "hooklog: replayed {written} of {read} messages read from {name} in {elapsed:.2} s ({:.0} messages/s)",
        read as f64 / elapsed.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} messages ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    Some(bar)
}

impl Filter {
    fn keeps(&self, message: &async_nats::jetstream::Message) -> bool {
        if self.installation.is_none() && self.repository.is_none() {
            return true;
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
            return false;
        };
        let installation_ok = self.installation.is_none_or(|id| {
            body.pointer("/installation/id").and_then(|v| v.as_u64()) == Some(id)
                || find(&body, "installation_id").and_then(|v| v.as_u64()) == Some(id)
                || message
                    .subject
                    .as_str()
                    .ends_with(&format!(".github-installation-{id}"))
        });
        let repository_ok = self.repository.as_deref().is_none_or(|repo| {
            let as_id = repo.parse::<u64>().ok();
            let full_name = body
                .pointer("/repository/full_name")
                .and_then(|v| v.as_str());
            full_name.is_some_and(|name| name.eq_ignore_ascii_case(repo))
                || as_id.is_some_and(|id| {
                    body.pointer("/repository/id").and_then(|v| v.as_u64()) == Some(id)
                        || find(&body, "repository_id").and_then(|v| v.as_u64()) == Some(id)
                })
                || find(&body, "repository")
                    .and_then(|v| v.as_str())
                    .is_some_and(|name| name.eq_ignore_ascii_case(repo))
        });
        installation_ok && repository_ok
    }
}

/// The value of the first field called `key` in `value` or the objects directly inside it (an
/// event's payload is `{"EventName": {...fields}}`).
fn find<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .values()
            .filter_map(|inner| inner.as_object())
            .find_map(|inner| inner.get(key))
    })
}

/// One JSON line: `seq`, `time`, `subject`, `headers`, `body` or `body_base64`, `leaf_hash`.
/// The headers are the entry's canonical ones (sorted by name, then value), so a name that
/// repeats is a run of pairs, written as one array.
fn write_line(
    line: &mut Vec<u8>,
    message: &async_nats::jetstream::Message,
    raw: bool,
) -> anyhow::Result<()> {
    let entry = stream_message(message)?;
    let leaf = entry.leaf_hash()?;
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(entry.time_unix_nanos))?;
    write!(line, "{{\"seq\":{},\"time\":\"", entry.sequence)?;
    time.format_into(line, &Rfc3339)?;
    line.extend_from_slice(b"\",\"subject\":");
    serde_json::to_writer(&mut *line, &entry.subject)?;
    line.extend_from_slice(b",\"headers\":{");
    let headers = entry.canonical_headers();
    let mut pairs = headers.iter().peekable();
    let mut first = true;
    while let Some(&(name, value)) = pairs.next() {
        if !std::mem::take(&mut first) {
            line.push(b',');
        }
        serde_json::to_writer(&mut *line, name)?;
        line.push(b':');
        if pairs.peek().is_some_and(|(next, _)| *next == name) {
            line.push(b'[');
            serde_json::to_writer(&mut *line, value)?;
            while let Some((_, value)) = pairs.next_if(|(next, _)| *next == name) {
                line.push(b',');
                serde_json::to_writer(&mut *line, value)?;
            }
            line.push(b']');
        } else {
            serde_json::to_writer(&mut *line, value)?;
        }
    }
    line.push(b'}');
    let payload = &message.payload;
    let json = (!raw)
        .then(|| serde_json::from_slice::<&RawValue>(payload).ok())
        .flatten();
    match json {
        Some(body) if !body.get().contains(['\n', '\r']) => {
            line.extend_from_slice(b",\"body\":");
            line.extend_from_slice(body.get().as_bytes());
        }
        Some(body) => {
            let value: serde_json::Value = serde_json::from_str(body.get())?;
            line.extend_from_slice(b",\"body\":");
            serde_json::to_writer(&mut *line, &value)?;
        }
        None => {
            line.extend_from_slice(b",\"body_base64\":\"");
            let at = line.len();
            line.resize(
                at + base64::encoded_len(payload.len(), true).unwrap_or(0),
                0,
            );
            let used = BASE64.encode_slice(payload, &mut line[at..])?;
            line.truncate(at + used);
            line.push(b'"');
        }
    }
    writeln!(line, ",\"leaf_hash\":\"{leaf}\"}}")?;
    Ok(())
}

/// `--state`: the aggregate's state folded up to `--to-seq` or `--until`.
async fn state(settings: &Settings, log: Log, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    use hooklog_admin::routes::events::{state_at, Until};
    let usage = |message: &str| -> anyhow::Result<ExitCode> {
        eprintln!("hooklog: {message}");
        Ok(ExitCode::from(2))
    };
    if log != Log::Events {
        return usage("--state folds events: use `replay events --aggregate TYPE/ID --state`");
    }
    let Some((kind, id)) = args.aggregate.as_deref().and_then(|a| a.split_once('/')) else {
        return usage("--state needs --aggregate TYPE/ID");
    };
    let until = match (args.to_seq, &args.until) {
        (Some(_), Some(_)) => return usage("--state takes --to-seq or --until, not both"),
        (Some(seq), None) => Until::Sequence(seq),
        (None, Some(text)) => match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(time) => Until::Time(time),
            Err(err) => {
                return usage(&format!(
                    "--until: {text:?} is not an RFC 3339 time ({err})"
                ))
            }
        },
        (None, None) => Until::End,
    };
    let streams = Streams::connect(settings, "hooklog-replay").await?;
    let outcome = state_at(&streams.js, kind, id, until).await;
    streams.close().await;
    match outcome {
        Ok(Some(view)) => {
            println!("{}", serde_json::to_string(&view)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => usage(&format!("no event of {kind}/{id} up to that point")),
        Err(err) => usage(&err.to_string()),
    }
}
