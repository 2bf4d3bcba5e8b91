//! When to ask GitHub again: the wait a rate limit asks for, read from GitHub's headers as its
//! documentation says, and the backoff between retries of server and network errors. Pure, so
//! the policy is tested without a server.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// GitHub's advice when a rate limit names no time: wait at least a minute.
const UNNAMED_WAIT: Duration = Duration::from_secs(60);
/// Never hammer: a reset already past (clock drift) or `Retry-After: 0` still waits this long.
const MIN_WAIT: Duration = Duration::from_secs(1);
/// First retry after this long, doubling each time up to `MAX_BACKOFF`.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long GitHub asks us to wait, when `status` is a rate limit (primary or secondary); `None`
/// when it is not one (a 403 without rate-limit headers or message is a plain refusal).
pub(super) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs).max(MIN_WAIT));
    }
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    if let (true, Some(reset)) = (
        exhausted,
        header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()),
    ) {
        let reset = UNIX_EPOCH + Duration::from_secs(reset);
        let wait = reset.duration_since(now).unwrap_or_default();
        return Some(wait.max(MIN_WAIT));
    }
    let secondary = message.to_ascii_lowercase().contains("rate limit");
    (status == StatusCode::TOO_MANY_REQUESTS || exhausted || secondary).then_some(UNNAMED_WAIT)
}

/// The pause before retry number `retry` (0 for the first): 200 ms doubling, capped at 10 s,
/// plus up to a quarter more scaled by `jitter` (in `0.0..1.0`) so replicas do not retry in step.
pub(super) fn backoff(retry: u32, jitter: f64) -> Duration {
    let base = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(retry))
        .min(MAX_BACKOFF);
    base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
}

/// A number in `0.0..1.0` that differs from call to call, from std's randomly keyed hasher; good
/// enough to spread retries, and no random-number crate for it.
pub(super) fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_in_seconds_is_the_wait() {
        let wait = rate_limit_wait(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7")]),
            "",
            at(1000),
        );
        assert_eq!(wait, Some(Duration::from_secs(7)));
    }

    #[test]
    fn an_exhausted_quota_waits_until_its_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        let wait = rate_limit_wait(
            StatusCode::FORBIDDEN,
            &h,
            "API rate limit exceeded",
            at(1000),
        );
        assert_eq!(wait, Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_reset_already_past_still_waits_a_second() {
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "990")]);
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &h, "", at(1000));
        assert_eq!(wait, Some(MIN_WAIT));
    }

    #[test]
    fn a_forbidden_answer_without_rate_limit_signs_is_not_a_rate_limit() {
        let h = headers(&[
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-reset", "1030"),
        ]);
        let wait = rate_limit_wait(
            StatusCode::FORBIDDEN,
            &h,
            "Resource not accessible by integration",
            at(1000),
        );
        assert_eq!(wait, None);
    }

    #[test]
    fn a_secondary_rate_limit_without_headers_waits_a_minute() {
        let wait = rate_limit_wait(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            "You have exceeded a secondary rate limit.",
            at(1000),
        );
        assert_eq!(wait, Some(UNNAMED_WAIT));
    }

    #[test]
    fn other_statuses_are_never_rate_limits() {
        let h = headers(&[("retry-after", "5")]);
        assert_eq!(
            rate_limit_wait(StatusCode::SERVICE_UNAVAILABLE, &h, "", at(0)),
            None
        );
    }

    #[test]
    fn backoff_doubles_from_200_ms_and_is_capped() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(400));
        assert_eq!(backoff(3, 0.0), Duration::from_millis(1600));
        assert_eq!(backoff(40, 0.0), MAX_BACKOFF);
        assert_eq!(backoff(0, 1.0), Duration::from_millis(250));
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
