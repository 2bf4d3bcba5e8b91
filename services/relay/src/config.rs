//! [`RelayConfig`]: how much the relay reads at once and how long it waits for what.

use std::time::Duration;

use crate::RelayError;

/// Settings of the relay. Every field has a sensible default; see [`RelayConfig::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Outbox rows read per query (default 256). It bounds memory, the size of one delete and
    /// of one wave of publishes (at most one event per aggregate, PubAcks awaited together).
    pub batch_size: usize,
    /// How often the outbox is read when no notification arrives (default 1 s). Notifications
    /// wake the relay at once; this is the fallback for one lost while the listener reconnected,
    /// and also how soon a dead Postgres session is noticed while idle.
    pub poll_interval: Duration,
    /// How long one publish attempt may wait for its PubAck before it is retried with the same
    /// `Nats-Msg-Id` (default 5 s).
    pub publish_timeout: Duration,
    /// How often a standby relay tries to take the lock, and how long the relay waits after
    /// losing its Postgres session before it tries again (default 1 s).
    pub lock_retry: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(5),
            lock_retry: Duration::from_secs(1),
        }
    }
}

impl RelayConfig {
    /// Refuses settings the relay cannot work with; the only errors `run` returns.
    pub(crate) fn validate(&self) -> Result<(), RelayError> {
        let invalid = |reason: &str| Err(RelayError::InvalidConfig(reason.to_owned()));
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1");
        }
        if i64::try_from(self.batch_size).is_err() {
            return invalid("batch_size is too large");
        }
        if self.poll_interval.is_zero() {
            return invalid("poll_interval must be longer than zero");
        }
        if self.publish_timeout.is_zero() {
            return invalid("publish_timeout must be longer than zero");
        }
        if self.lock_retry.is_zero() {
            return invalid("lock_retry must be longer than zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_zero_sizes_or_durations_are_not() {
        assert!(RelayConfig::default().validate().is_ok());
        let zero_batch = RelayConfig {
            batch_size: 0,
            ..Default::default()
        };
        assert!(zero_batch.validate().is_err());
        let zero_poll = RelayConfig {
            poll_interval: Duration::ZERO,
            ..Default::default()
        };
        assert!(zero_poll.validate().is_err());
        let zero_retry = RelayConfig {
            lock_retry: Duration::ZERO,
            ..Default::default()
        };
        assert!(zero_retry.validate().is_err());
    }
}
