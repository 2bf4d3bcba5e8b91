//! Who may upload a body before anything about it is verified.
//!
//! A signature can only be checked once the whole body is in, so until then a request is
//! unverified and costs a slot, memory and time. GitHub's deliveries must never wait behind
//! unverified uploads from someone else. What this module keeps, per client address (an IPv6
//! address counts as its `/64`, the smallest block one host is given):
//!
//! - *allowed networks*: with `HOOKLOG_INGRESS_ALLOWED_NETWORKS` set, an address outside every
//!   listed network is refused (403) before its body is read;
//! - *bounded uploads at once*: an address may have at most `uploads_per_address` bodies being
//!   read at the same time; one more is refused (429, `Retry-After`) without reading it. The
//!   permit is held from admission until the signature is checked, so it bounds exactly the
//!   unverified work an address can hold;
//! - *failures shrink an address's share*: every request that fails verification (a missing,
//!   malformed or wrong signature, an upload too slow to finish) spends one of the address's
//!   `failed_auth_per_minute` tokens, which refill evenly over a minute. An address with no token
//!   left may upload one body at a time only, and its failed requests are answered 429. It is
//!   not shut out: GitHub sends every App's and every repository's webhooks from the same
//!   addresses, so someone else's misconfigured hook must not stop hooklog's valid deliveries
//!   from the same address. A valid delivery from a limited address still gets through.
//!
//! The minimum upload rate is kept where the body is read ([`crate::VerifiedDelivery`]); the
//! global in-flight limit in [`crate::router`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// Above this many tracked addresses, those with nothing in flight and a full quota are
/// forgotten.
const MAX_TRACKED: usize = 10_000;
/// Uploads at once for an address with no failure token left.
const LIMITED_UPLOADS: usize = 1;

/// Why an address may not upload now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside `HOOKLOG_INGRESS_ALLOWED_NETWORKS`, or the address is unknown while networks are
    /// set.
    Network,
    /// The address has as many uploads in flight as it may have.
    Uploads,
}

/// The admission rules and each address's state.
pub struct Admission {
    networks: Option<Vec<IpNet>>,
    uploads_per_address: usize,
    failures_per_minute: f64,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

struct Address {
    uploading: usize,
    /// Failure tokens left, refilled at `failures_per_minute / 60` per second.
    tokens: f64,
    refilled: Instant,
}

impl Admission {
    pub fn new(
        networks: Option<Vec<IpNet>>,
        uploads_per_address: usize,
        failures_per_minute: u32,
    ) -> Self {
        Self {
            networks,
            uploads_per_address: uploads_per_address.max(1),
            failures_per_minute: f64::from(failures_per_minute.max(1)),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one upload from `peer`, or says why not. The permit ends the upload when dropped.
    pub fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<UploadPermit, Refusal> {
        if let Some(networks) = &self.networks {
            let allowed = peer.is_some_and(|ip| {
                let ip = ip.to_canonical();
                networks.iter().any(|net| net.contains(&ip))
            });
            if !allowed {
                return Err(Refusal::Network);
            }
        }
        let Some(peer) = peer else {
            // No address to account to (a router served without connection info).
            return Ok(UploadPermit {
                admission: Arc::clone(self),
                key: None,
            });
        };
        let key = address_key(peer);
        let now = Instant::now();
        let mut addresses = self.lock();
        if addresses.len() > MAX_TRACKED {
            let full = self.failures_per_minute;
            let rate = self.refill_rate();
            addresses.retain(|_, a| a.uploading > 0 || a.tokens_at(now, rate, full) < full);
        }
        let rate = self.refill_rate();
        let full = self.failures_per_minute;
        let address = addresses.entry(key).or_insert_with(|| Address {
            uploading: 0,
            tokens: full,
            refilled: now,
        });
        address.refill(now, rate, full);
        let allowed = if address.tokens < 1.0 {
            LIMITED_UPLOADS
        } else {
            self.uploads_per_address
        };
        if address.uploading >= allowed {
            return Err(Refusal::Uploads);
        }
        address.uploading += 1;
        Ok(UploadPermit {
            admission: Arc::clone(self),
            key: Some(key),
        })
    }

    fn refill_rate(&self) -> f64 {
        self.failures_per_minute / 60.0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Address>> {
        // A panic while holding the lock cannot leave the counts inconsistent in a way that
        // matters more than refusing every upload would.
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Address {
    fn tokens_at(&self, now: Instant, rate: f64, full: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        (self.tokens + elapsed * rate).min(full)
    }

    fn refill(&mut self, now: Instant, rate: f64, full: f64) {
        self.tokens = self.tokens_at(now, rate, full);
        self.refilled = now;
    }
}

/// One admitted upload. Dropping it ends the upload.
pub struct UploadPermit {
    admission: Arc<Admission>,
    key: Option<IpAddr>,
}

impl UploadPermit {
    /// Counts a failed verification against the address; true once the address has no
    /// failure token left (its failures are then answered 429).
    pub fn failed(&self) -> bool {
        let Some(key) = self.key else {
            return false;
        };
        let now = Instant::now();
        let (rate, full) = (
            self.admission.refill_rate(),
            self.admission.failures_per_minute,
        );
        let mut addresses = self.admission.lock();
        let Some(address) = addresses.get_mut(&key) else {
            return false;
        };
        address.refill(now, rate, full);
        let limited = address.tokens < 1.0;
        address.tokens = (address.tokens - 1.0).max(0.0);
        limited
    }

    /// How long until the address has a failure token again; zero when it has one.
    pub fn retry_after(&self) -> Duration {
        let Some(key) = self.key else {
            return Duration::ZERO;
        };
        let rate = self.admission.refill_rate();
        let addresses = self.admission.lock();
        addresses.get(&key).map_or(Duration::ZERO, |a| {
            let missing =
                1.0 - a.tokens_at(Instant::now(), rate, self.admission.failures_per_minute);
            Duration::from_secs_f64((missing / rate).max(0.0))
        })
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            if let Some(address) = self.admission.lock().get_mut(&key) {
                address.uploading = address.uploading.saturating_sub(1);
            }
        }
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its `/64`.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some([10, 0, 0, last].into())
    }

    #[test]
    fn an_address_has_at_most_its_uploads_at_once_and_others_are_not_affected() {
        let admission = Arc::new(Admission::new(None, 2, 30));
        let first = admission.admit(ip(1)).unwrap();
        let _second = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(1)).err(), Some(Refusal::Uploads));
        assert!(admission.admit(ip(2)).is_ok());
        drop(first);
        assert!(
            admission.admit(ip(1)).is_ok(),
            "a finished upload frees its place"
        );
    }

    #[test]
    fn an_address_out_of_failure_tokens_uploads_one_at_a_time_and_is_told_so() {
        let admission = Arc::new(Admission::new(None, 8, 3));
        for _ in 0..3 {
            assert!(!admission.admit(ip(1)).unwrap().failed());
        }
        let permit = admission.admit(ip(1)).unwrap();
        assert!(
            permit.failed(),
            "the fourth failure in a minute is over the quota"
        );
        assert!(permit.retry_after() > Duration::from_secs(10));
        assert_eq!(admission.admit(ip(1)).err(), Some(Refusal::Uploads));
        drop(permit);
        assert!(admission.admit(ip(1)).is_ok(), "still one upload at a time");
        assert!(!admission.admit(ip(2)).unwrap().failed());
    }

    #[test]
    fn outside_the_allowed_networks_is_refused_and_so_is_an_unknown_address() {
        let networks = vec![
            "192.30.252.0/22".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ];
        let admission = Arc::new(Admission::new(Some(networks), 8, 30));
        assert!(admission.admit(Some([192, 30, 252, 7].into())).is_ok());
        assert!(admission
            .admit(Some(std::net::Ipv6Addr::LOCALHOST.into()))
            .is_ok());
        let mapped: IpAddr = "::ffff:192.30.253.1".parse().unwrap();
        assert!(
            admission.admit(Some(mapped)).is_ok(),
            "an IPv4-mapped address is its IPv4"
        );
        assert_eq!(
            admission.admit(Some([192, 30, 248, 1].into())).err(),
            Some(Refusal::Network)
        );
        assert_eq!(admission.admit(None).err(), Some(Refusal::Network));
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_their_uploads() {
        let admission = Arc::new(Admission::new(None, 1, 30));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = admission.admit(Some(a)).unwrap();
        assert_eq!(admission.admit(Some(b)).err(), Some(Refusal::Uploads));
        assert!(admission.admit(Some(other)).is_ok());
    }
}
