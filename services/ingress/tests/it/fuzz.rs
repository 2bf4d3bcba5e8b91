//! An HTTP fuzzer against the running ingress (real TCP, a real `nats-server`): thousands of
//! drawn requests (`request`), most of them webhook posts made from GitHub's example payloads
//! with headers missing, duplicated, malformed or oversized, a `Content-Length` that is true,
//! missing or lies, chunked bodies, and signatures valid over the exact bytes sent or not; some
//! with other methods or paths; a few that are not HTTP at all. Each is written by hand
//! (`encode`, `wire`) from one of 32 quiet loopback addresses or a noisy one, 16 at a time.
//!
//! What it proves, for every request:
//! - the server answers: a panicking handler would drop its connection, and a connection is
//!   dropped without an answer only where the client lied about its body's length or did not
//!   speak HTTP; a body announced longer than sent is waited for, which is fine only then;
//! - no answer is a 5xx while JetStream is up, and once it is stopped the only 5xx is 503;
//! - a webhook answer has a documented status and a JSON `{"code","message"}` body (a receipt for
//!   a 2xx), and it is the one the domain's own checks give for what was sent (signature over
//!   the bytes read, headers, body format), so nothing unsigned or malformed is ever stored;
//!   the admission's 429 may come instead, but `rate_limited` never for a valid signature;
//! - another method on the webhook path is 405 and another path 404, with a JSON
//!   `{"code","message"}` body (a HEAD answer has none); a request hyper cannot frame gets a 4xx
//!   from hyper or a closed connection;
//! - every 2xx that is not a duplicate is one more message in `GITHUB_DELIVERIES`.
//!
//! `HOOKLOG_FUZZ_CASES` requests with JetStream up (10,000 unless set; about 6 s in a debug
//! build), then a fifth as many with it stopped. The run's seed is random unless
//! `HOOKLOG_FUZZ_SEED` is set; a failure names the seed and case, and
//! `HOOKLOG_FUZZ_SEED=<seed> HOOKLOG_FUZZ_CASE=<case>` sends that case alone. `--nocapture` shows
//! what each phase's answers were.

mod encode;
mod request;
mod wire;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use hooklog_domain::github::{
    signature, DeliveryEnvelope, Disposition, PayloadFormat, RawEnvelope, WebhookSecret,
};
use hooklog_ingress::{IngressConfig, WEBHOOK_PATH};
use serde_json::Value;

use crate::support::{config, spawn_app_with, TestApp, SECRET};
use request::{draw, Drawn, Length};
use wire::{exchange, Answer, Ended};

/// The statuses the webhook answers with (README, "Webhook ingress").
const DOCUMENTED: [u16; 10] = [200, 202, 400, 401, 403, 404, 408, 413, 429, 503];
const IN_FLIGHT: usize = 16;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} is a number, not {v:?}"))
    })
}

/// What the answer to a request must be.
#[derive(Debug)]
enum Class {
    /// Not HTTP the server can frame: any 4xx, or the connection closed.
    Protocol,
    /// HTTP, but not `POST` to the webhook path.
    Route(u16),
    /// A webhook request: the status and code the domain's checks give.
    Webhook {
        status: u16,
        code: &'static str,
        signed: bool,
    },
}

/// The first value of `name` that the server can read as a string, as `header_str` does.
fn first<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    let value = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let visible = value
        .1
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    visible.then(|| std::str::from_utf8(&value.1).expect("ASCII"))
}

fn classify(d: &Drawn) -> Class {
    let headers = d.headers();
    // A `Transfer-Encoding` whose last coding is not `chunked` cannot frame a request.
    let te = d
        .extra_headers
        .iter()
        .any(|(name, _)| name == "Transfer-Encoding");
    let unframed = te && !matches!(d.length, Length::Chunked);
    if d.raw.is_some() || matches!(d.length, Length::Garbage(_)) || unframed || d.path == "*" {
        return Class::Protocol;
    }
    if d.path.split('?').next() != Some(WEBHOOK_PATH) {
        return Class::Route(404);
    }
    if d.method != "POST" {
        return Class::Route(405);
    }
    let webhook = |status, code, signed| Class::Webhook {
        status,
        code,
        signed,
    };
    if matches!(d.length, Length::OverLimit(_)) {
        return webhook(413, "payload_too_large", false);
    }
    let body = d.effective_body();
    let secrets = [WebhookSecret::new(SECRET)];
    if signature::verify(first(&headers, "X-Hub-Signature-256"), body, &secrets).is_err() {
        return webhook(401, "invalid_signature", false);
    }
    let envelope = DeliveryEnvelope::parse(RawEnvelope {
        event: first(&headers, "X-GitHub-Event"),
        delivery_id: first(&headers, "X-GitHub-Delivery"),
        hook_id: first(&headers, "X-GitHub-Hook-ID"),
        target_type: first(&headers, "X-GitHub-Hook-Installation-Target-Type"),
        target_id: first(&headers, "X-GitHub-Hook-Installation-Target-ID"),
    });
    let Ok(envelope) = envelope else {
        return webhook(400, "invalid_headers", true);
    };
    if PayloadFormat::check(first(&headers, "Content-Type"), body).is_err() {
        return webhook(400, "invalid_payload", true);
    }
    match envelope.event.disposition() {
        Disposition::ActedOn => webhook(202, "", true),
        Disposition::Recorded => webhook(200, "", true),
    }
}

/// Whether the client announced more body than it sends and then waits: so does the server.
fn waits(d: &Drawn) -> bool {
    matches!(
        d.length,
        Length::High {
            half_close: false,
            ..
        }
    )
}

/// Whether the request announced a body length that is not the length of what follows it.
fn lied(d: &Drawn) -> bool {
    matches!(
        d.length,
        Length::Missing | Length::High { .. } | Length::Low(_) | Length::OverLimit(_)
    )
}

fn json_error(answer: &Answer) -> Result<String, String> {
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|err| format!("error body is not JSON ({err})"))?;
    let (Some(code), Some(_)) = (body["code"].as_str(), body["message"].as_str()) else {
        return Err(format!("error body is not {{code, message}}: {body}"));
    };
    Ok(code.to_owned())
}

/// Checks one exchange; `Ok` carries what to count it as.
fn check(d: &Drawn, class: &Class, ended: &Ended, outage: bool) -> Result<String, String> {
    let answer = match ended {
        Ended::Answered(answer) => answer,
        Ended::TimedOut if waits(d) => return Ok("waited for a body that never came".into()),
        Ended::Closed { .. } if lied(d) || matches!(class, Class::Protocol) => {
            return Ok(format!(
                "closed after a {} request",
                if lied(d) { "lying" } else { "non-HTTP" }
            ));
        }
        other => return Err(format!("no answer: {other}")),
    };
    let status = answer.status;
    if status >= 500 && !(outage && status == 503) {
        return Err(format!("answered {status}"));
    }
    match class {
        Class::Protocol if (400..500).contains(&status) => Ok(format!("protocol {status}")),
        Class::Protocol => Err(format!("{status} to a request that is not HTTP")),
        Class::Route(expected) if status == *expected => {
            if d.method != "HEAD" {
                json_error(answer)
                    .map_err(|e| format!("route {status} without a JSON error body: {e}"))?;
            }
            Ok(format!("route {status}"))
        }
        Class::Route(expected) => Err(format!("answered {status}, not {expected}")),
        Class::Webhook {
            status: want,
            code: want_code,
            signed,
        } => {
            if !DOCUMENTED.contains(&status) {
                return Err(format!("undocumented status {status}"));
            }
            if (200..300).contains(&status) {
                receipt(d, answer)?;
                return if status == *want && !matches!(d.length, Length::High { .. }) {
                    Ok(format!("webhook {status}"))
                } else {
                    Err(format!(
                        "accepted ({status}) what the checks give {want} {want_code}"
                    ))
                };
            }
            let code = json_error(answer)?;
            let code = code.as_str();
            let retry_after = answer.header("retry-after").is_some();
            let exact =
                status == *want && code == *want_code && !matches!(d.length, Length::High { .. });
            let admission = status == 429
                && retry_after
                && (code == "too_many_uploads" || !signed && code == "rate_limited");
            let stored_later = outage
                && status == 503
                && retry_after
                && (*want < 300 && code == "store_unavailable" || code == "overloaded");
            let short_body = matches!(d.length, Length::High { .. })
                && matches!(
                    (status, code),
                    (400, "body_unreadable") | (408, _) | (401, "invalid_signature")
                );
            if exact || admission || stored_later || short_body {
                Ok(format!("webhook {status} {code}"))
            } else {
                Err(format!(
                    "answered {status} {code}; the checks give {want} {want_code}"
                ))
            }
        }
    }
}

/// A 2xx body: the receipt of this delivery.
fn receipt(d: &Drawn, answer: &Answer) -> Result<(), String> {
    let receipt: Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("receipt is not JSON: {e}"))?;
    let headers = d.headers();
    let ok = receipt["delivery_id"].as_str() == first(&headers, "X-GitHub-Delivery")
        && receipt["event"].as_str() == first(&headers, "X-GitHub-Event")
        && receipt["stream_seq"].is_u64()
        && receipt["duplicate"].is_boolean();
    ok.then_some(())
        .ok_or_else(|| format!("receipt {receipt} does not match the request"))
}

/// A request, shortened for a failure message.
fn describe(d: &Drawn) -> String {
    let mut out = format!(
        "{} {} ({:?}, {} body bytes) from {:?}\n",
        d.method,
        short(d.path.as_bytes()),
        d.length,
        d.body.len(),
        d.source
    );
    if let Some(raw) = &d.raw {
        let _ = writeln!(out, "  raw: {}", short(raw));
    }
    for (name, value) in d.headers() {
        let _ = writeln!(out, "  {name}: {}", short(&value));
    }
    let _ = write!(out, "  body: {}", short(&d.body));
    out
}

fn short(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(160)]).into_owned();
    if bytes.len() > 160 {
        format!("{text:?}… ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

/// Sends cases `range` of run `seed`; returns what each counted as, and the failures.
async fn phase(
    app: &TestApp,
    seed: u64,
    range: std::ops::Range<u64>,
    outage: bool,
) -> (BTreeMap<String, u64>, Vec<String>, u64) {
    let only = env_u64("HOOKLOG_FUZZ_CASE");
    let results = stream::iter(range.filter(|case| only.is_none_or(|o| o == *case)))
        .map(|case| async move {
            let d = draw(seed, case);
            let class = classify(&d);
            // Bytes that are not HTTP are followed by a half-close, or a partial request line
            // would just wait (as a partial request should).
            let half_close = matches!(
                d.length,
                Length::High {
                    half_close: true,
                    ..
                }
            ) || d.raw.is_some();
            let patience = if waits(&d) {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(12)
            };
            let ended = exchange(d.source, app.addr, &d.wire(), half_close, patience).await;
            let stored = matches!(&ended, Ended::Answered(a) if (200..300).contains(&a.status)
                && serde_json::from_slice::<Value>(&a.body).is_ok_and(|r| r["duplicate"] == false));
            let verdict = check(&d, &class, &ended, outage).map_err(|reason| {
                let request = describe(&d);
                format!(
                    "case {case} of seed {seed}: {reason}\n  expected {class:?}\n  got {ended}\n  \
                     {request}"
                )
            });
            (verdict, stored)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();
    let mut stored = 0;
    for (verdict, was_stored) in results {
        stored += u64::from(was_stored);
        match verdict {
            Ok(kind) => *counts.entry(kind).or_insert(0) += 1,
            Err(failure) => failures.push(failure),
        }
    }
    (counts, failures, stored)
}

fn report(
    name: &str,
    seed: u64,
    counts: &BTreeMap<String, u64>,
    failures: &[String],
    started: Instant,
) {
    let total: u64 = counts.values().sum::<u64>() + failures.len() as u64;
    eprintln!(
        "fuzz {name}: {total} requests, seed {seed}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (kind, n) in counts {
        eprintln!("  {n:>6}  {kind}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed (replay with HOOKLOG_FUZZ_SEED={seed} \
         HOOKLOG_FUZZ_CASE=<case>):\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_documented_answers_and_never_a_5xx_unless_jetstream_is_down() {
    let cases = env_u64("HOOKLOG_FUZZ_CASES").unwrap_or(10_000);
    let seed = env_u64("HOOKLOG_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    // Failure tokens enough for the 32 quiet addresses, not for the noisy one, which meets the
    // 429s (250 a minute for 10,000 requests); a short publish timeout, so that the outage phase
    // answers 503 quickly.
    let mut app = spawn_app_with(IngressConfig {
        failed_auth_per_minute: u32::try_from(cases / 40).unwrap_or(u32::MAX).max(250),
        publish_timeout: Duration::from_secs(1),
        ..config()
    })
    .await;

    let started = Instant::now();
    let (counts, failures, stored) = phase(&app, seed, 0..cases, false).await;
    report("with JetStream up", seed, &counts, &failures, started);
    if env_u64("HOOKLOG_FUZZ_CASE").is_none() {
        assert_eq!(
            app.stored_count().await,
            stored,
            "every 2xx that is not a duplicate is stored, once"
        );
    }

    app.nats.stop().await;
    let started = Instant::now();
    let (counts, failures, _) = phase(&app, seed, cases..cases + cases / 5, true).await;
    report("with JetStream stopped", seed, &counts, &failures, started);
}
