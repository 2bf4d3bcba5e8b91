//! Time as the aggregates see it: a `Timestamp` (RFC 3339 in events) read from a `Clock` port,
//! so that aggregate tests can fix the time and events say when a decision was taken.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_rfc3339_micros(self.0).fmt(f)
    }
}

impl Timestamp {
    /// An RFC 3339 time as a provider writes it (`2026-12-01T10:00:00Z`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        humantime::parse_rfc3339(text)
            .map(Self)
            .map_err(|err| format!("{text:?} is not an RFC 3339 time: {err}"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Where aggregates read the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(SystemTime::now())
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_json_as_rfc3339() {
        let at = Timestamp(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456),
        );
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
    }
}
