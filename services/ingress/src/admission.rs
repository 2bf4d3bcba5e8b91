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
//!   read at the same time. One more waits up to `wait` for one of them to finish (a fast
//!   upload, as GitHub's are, takes microseconds, so a burst from one address only queues
//!   briefly), then is refused (429, `Retry-After`) without its body being read. The permit is
//!   held from admission until the signature is checked, so it bounds exactly the unverified work
//!   an address can hold;
//! - *failures shrink an address's share*: every request that fails verification (a missing,
//!   malformed or wrong signature, an upload too slow to finish) spends one of the address's
//!   `failed_auth_per_minute` tokens, which refill evenly over a minute. An address with no token
//!   left uploads one body at a time (its upload takes every one of the address's permits), and
//!   its failed requests are answered 429. It is not shut out: GitHub sends every App's and every
//!   repository's webhooks from the same addresses, so someone else's misconfigured hook must not
//!   stop hooklog's valid deliveries from the same address. A valid delivery from a limited
//!   address still gets through.
//!
//! One map holds both of an address's counts, because admission needs them together: a rate
//! limiter such as `governor` counts requests over time, not uploads in flight, and cannot say
//! whether an address is out of tokens without spending one.
//!
//! *Behind a reverse proxy* every request's TCP peer is the proxy. With
//! `HOOKLOG_INGRESS_TRUSTED_PROXIES` naming it, the client address of a request from a trusted
//! proxy is read from `X-Forwarded-For` ([`client_address`]): the rightmost address there that is
//! not itself a trusted proxy. Only the rightmost entries are the proxies' own words; anything to
//! the left of the first untrusted one came from the client and is ignored, so a client cannot
//! pick another address to be accounted to. From any other peer the header is ignored.
//!
//! The minimum upload rate is kept where the body is read ([`crate::VerifiedDelivery`]); the
//! global in-flight limit in [`crate::router`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Above this many tracked addresses, those with nothing in flight and a full quota are
/// forgotten.
const MAX_TRACKED: usize = 10_000;

/// Why an address may not upload now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside `HOOKLOG_INGRESS_ALLOWED_NETWORKS`, or the address is unknown while networks are
    /// set.
    Network,
    /// The address's uploads stayed at its limit for the whole wait.
    Uploads,
}

/// The admission rules and each address's state.
pub struct Admission {
    networks: Option<Vec<IpNet>>,
    uploads_per_address: u32,
    failures_per_minute: f64,
    wait: Duration,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

struct Address {
    /// `uploads_per_address` permits: one per upload, all of them for an upload of a limited
    /// address.
    uploads: Arc<Semaphore>,
    /// Failure tokens left, refilled at `failures_per_minute / 60` per second.
    tokens: f64,
    refilled: Instant,
}

impl Admission {
    pub fn new(
        networks: Option<Vec<IpNet>>,
        uploads_per_address: usize,
        failures_per_minute: u32,
        wait: Duration,
    ) -> Self {
        let uploads =
            u32::try_from(uploads_per_address.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        Self {
            networks,
            uploads_per_address: uploads,
            failures_per_minute: f64::from(failures_per_minute.max(1)),
            wait,
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one upload from `peer`, waiting up to `wait` for a place, or says why not. The
    /// permit ends the upload when dropped.
    pub async fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<UploadPermit, Refusal> {
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
                _uploading: None,
            });
        };
        let key = address_key(peer);
        let (uploads, limited) = {
            let now = Instant::now();
            let (rate, full) = (self.refill_rate(), self.failures_per_minute);
            let mut addresses = self.lock();
            if addresses.len() > MAX_TRACKED {
                let idle = self.uploads_per_address as usize;
                addresses.retain(|_, a| {
                    a.uploads.available_permits() < idle || a.tokens_at(now, rate, full) < full
                });
            }
            let address = addresses.entry(key).or_insert_with(|| Address {
                uploads: Arc::new(Semaphore::new(self.uploads_per_address as usize)),
                tokens: full,
                refilled: now,
            });
            address.refill(now, rate, full);
            (Arc::clone(&address.uploads), address.tokens < 1.0)
        };
        let needed = if limited { self.uploads_per_address } else { 1 };
        match tokio::time::timeout(self.wait, uploads.acquire_many_owned(needed)).await {
            Ok(Ok(uploading)) => Ok(UploadPermit {
                admission: Arc::clone(self),
                key: Some(key),
                _uploading: Some(uploading),
            }),
            _ => Err(Refusal::Uploads),
        }
    }

    fn refill_rate(&self) -> f64 {
        self.failures_per_minute / 60.0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Address>> {
        // The map holds counts only; a panic elsewhere while it was locked leaves it usable.
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
    _uploading: Option<OwnedSemaphorePermit>,
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

/// The key an address is counted under: IPv4 as is, IPv6 by its `/64`.
/// The client address of a request whose TCP peer is `peer`, given its `X-Forwarded-For`
/// values (`forwarded`, in header order) and the trusted proxies.
///
/// A peer that is not a trusted proxy is the client, whatever the header says. From a trusted
/// proxy, the header is read from the right: each address that is a trusted proxy too is
/// skipped, and the first one that is not is the client. An entry that is not an address (say
/// `unknown`, or garbage a client sent) stops the walk at the trusted hop to its right, which is
/// then accounted for the request; so does a missing header (the proxy itself). Addresses may
/// carry a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
pub fn client_address<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = forwarded_address(entry) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry as an address: `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|ip| ip.parse().ok())
        })
}

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
    mod client_address {
        use std::net::IpAddr;

        use super::super::client_address;

        fn ip(text: &str) -> IpAddr {
            text.parse().unwrap()
        }

        fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> IpAddr {
            let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
            client_address(Some(ip(peer)), forwarded.iter().copied(), &trusted).unwrap()
        }

        #[test]
        fn without_trusted_proxies_the_header_is_ignored() {
            assert_eq!(client("192.0.2.1", &["203.0.113.7"], &[]), ip("192.0.2.1"));
            assert_eq!(
                client("192.0.2.1", &["203.0.113.7"], &["10.0.0.0/8"]),
                ip("192.0.2.1"),
                "a peer that is not a trusted proxy is the client"
            );
        }

        #[test]
        fn from_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
            let trusted = ["10.0.0.0/8"];
            assert_eq!(
                client("10.0.0.2", &["203.0.113.7"], &trusted),
                ip("203.0.113.7")
            );
            // What the client wrote itself (198.51.100.1) is left of the address the proxy saw.
            assert_eq!(
                client(
                    "10.0.0.2",
                    &["198.51.100.1, 203.0.113.7, 10.0.0.9"],
                    &trusted
                ),
                ip("203.0.113.7")
            );
            // Several header lines read as one list.
            assert_eq!(
                client("10.0.0.2", &["198.51.100.1", "203.0.113.7:4711"], &trusted),
                ip("203.0.113.7")
            );
            assert_eq!(
                client("10.0.0.2", &["[2001:db8::1]:443"], &trusted),
                ip("2001:db8::1")
            );
            // An IPv4-mapped peer counts as its IPv4 address.
            assert_eq!(
                client("::ffff:10.0.0.2", &["203.0.113.7"], &trusted),
                ip("203.0.113.7")
            );
        }

        #[test]
        fn a_missing_or_garbled_header_is_accounted_to_the_last_trusted_hop() {
            let trusted = ["10.0.0.0/8"];
            assert_eq!(client("10.0.0.2", &[], &trusted), ip("10.0.0.2"));
            assert_eq!(client("10.0.0.2", &["unknown"], &trusted), ip("10.0.0.2"));
            assert_eq!(
                client("10.0.0.2", &["203.0.113.7, garbage, 10.0.0.5"], &trusted),
                ip("10.0.0.5")
            );
            assert_eq!(
                client_address(
                    None,
                    ["203.0.113.7"].into_iter(),
                    &[trusted[0].parse().unwrap()]
                ),
                None
            );
        }
    }

    use super::*;

    const WAIT: Duration = Duration::from_millis(50);

    fn ip(last: u8) -> Option<IpAddr> {
        Some([10, 0, 0, last].into())
    }

    #[tokio::test]
    async fn an_address_has_at_most_its_uploads_at_once_and_others_are_not_affected() {
        let admission = Arc::new(Admission::new(None, 2, 30, WAIT));
        let first = admission.admit(ip(1)).await.unwrap();
        let _second = admission.admit(ip(1)).await.unwrap();
        assert_eq!(admission.admit(ip(1)).await.err(), Some(Refusal::Uploads));
        assert!(admission.admit(ip(2)).await.is_ok());
        drop(first);
        assert!(
            admission.admit(ip(1)).await.is_ok(),
            "a finished upload frees its place"
        );
    }

    #[tokio::test]
    async fn one_upload_over_the_limit_waits_for_a_place_within_the_wait() {
        let admission = Arc::new(Admission::new(None, 1, 30, Duration::from_secs(5)));
        let held = admission.admit(ip(1)).await.unwrap();
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit(ip(1)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "it waits while the place is taken");
        drop(held);
        assert!(waiting.await.unwrap(), "and gets it once the place is free");
    }

    #[tokio::test]
    async fn an_address_out_of_failure_tokens_uploads_one_at_a_time_and_is_told_so() {
        let admission = Arc::new(Admission::new(None, 8, 3, WAIT));
        for _ in 0..3 {
            assert!(!admission.admit(ip(1)).await.unwrap().failed());
        }
        let permit = admission.admit(ip(1)).await.unwrap();
        assert!(
            permit.failed(),
            "the fourth failure in a minute is over the quota"
        );
        assert!(permit.retry_after() > Duration::from_secs(10));
        assert_eq!(admission.admit(ip(1)).await.err(), Some(Refusal::Uploads));
        drop(permit);
        assert!(
            admission.admit(ip(1)).await.is_ok(),
            "still one upload at a time"
        );
        assert!(!admission.admit(ip(2)).await.unwrap().failed());
    }

    #[tokio::test]
    async fn outside_the_allowed_networks_is_refused_and_so_is_an_unknown_address() {
        let networks = vec![
            "192.30.252.0/22".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ];
        let admission = Arc::new(Admission::new(Some(networks), 8, 30, WAIT));
        assert!(admission
            .admit(Some([192, 30, 252, 7].into()))
            .await
            .is_ok());
        assert!(admission
            .admit(Some(std::net::Ipv6Addr::LOCALHOST.into()))
            .await
            .is_ok());
        let mapped: IpAddr = "::ffff:192.30.253.1".parse().unwrap();
        assert!(
            admission.admit(Some(mapped)).await.is_ok(),
            "an IPv4-mapped address is its IPv4"
        );
        assert_eq!(
            admission.admit(Some([192, 30, 248, 1].into())).await.err(),
            Some(Refusal::Network)
        );
        assert_eq!(admission.admit(None).await.err(), Some(Refusal::Network));
    }

    #[tokio::test]
    async fn ipv6_addresses_of_one_64_share_their_uploads() {
        let admission = Arc::new(Admission::new(None, 1, 30, WAIT));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = admission.admit(Some(a)).await.unwrap();
        assert_eq!(admission.admit(Some(b)).await.err(), Some(Refusal::Uploads));
        assert!(admission.admit(Some(other)).await.is_ok());
    }
}
