//! Rate limit on failed signature checks, per client address. Only failures are counted, so a
//! delivery with a valid signature is never limited, whatever address it comes from.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Above this many tracked addresses, addresses whose quota has refilled are forgotten.
const MAX_TRACKED: usize = 10_000;

pub struct FailedAuthLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl FailedAuthLimiter {
    pub fn per_minute(failures: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(failures.max(1)).expect("at least 1"));
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Counts one failure from `addr`; false once the address is over its quota.
    pub fn allow_failure(&self, addr: IpAddr) -> bool {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&addr).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_quota_is_limited_and_others_are_not() {
        let limiter = FailedAuthLimiter::per_minute(3);
        let noisy: IpAddr = [10, 0, 0, 1].into();
        let quiet: IpAddr = [10, 0, 0, 2].into();
        assert!((0..3).all(|_| limiter.allow_failure(noisy)));
        assert!(!limiter.allow_failure(noisy));
        assert!(limiter.allow_failure(quiet));
    }
}
