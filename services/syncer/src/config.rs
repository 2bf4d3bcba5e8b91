//! How the syncer consumes, syncs and reconciles, built from the process settings.

use std::path::PathBuf;
use std::time::Duration;

use hooklog_infra::config::Settings;

use crate::source::github::GithubAppConfig;
use crate::sync::SyncLimits;

#[derive(Debug, Clone)]
pub struct SyncerConfig {
    /// The durable consumer's name: syncers with the same name share the work.
    pub durable_name: String,
    /// Syncs one process runs at once.
    pub concurrency: usize,
    /// Sync requests handed out and not yet acked, across all syncer processes.
    pub max_ack_pending: i64,
    /// How long JetStream waits for an ack (or an in-progress ack) before handing a request to
    /// another syncer.
    pub ack_wait: Duration,
    /// In-progress acks while a sync runs; well below `ack_wait`.
    pub progress_interval: Duration,
    /// The first `nak` delay when PostgreSQL is away; doubles up to 30 s.
    pub retry_delay: Duration,
    pub limits: SyncLimits,
    pub reconcile: ReconcileConfig,
}

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Time between passes.
    pub interval: Duration,
    /// A sync requested this long ago and never started is run by the reconcile loop.
    pub stale_after: Duration,
    /// Automatic retries of a failed (retryable) sync of one head before it stays failed until
    /// an admin retries it.
    pub max_retries: u32,
    /// The pause before the first automatic retry; it doubles with each failure.
    pub retry_delay: Duration,
    /// How often the pass also asks each idle target's source for its branch head (one API
    /// call per target: GitHub counts them against the installation's rate limit).
    pub head_check_interval: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            stale_after: Duration::from_secs(600),
            max_retries: 5,
            retry_delay: Duration::from_secs(30),
            head_check_interval: Duration::from_secs(600),
        }
    }
}

impl ReconcileConfig {
    /// The pause after the `failures`-th failure of a head, before its next automatic retry.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.retry_delay.saturating_mul(1 << doublings)
    }
}

impl Default for SyncerConfig {
    fn default() -> Self {
        Self {
            durable_name: "hooklog-syncer".to_owned(),
            concurrency: 4,
            max_ack_pending: 256,
            ack_wait: Duration::from_secs(60),
            progress_interval: Duration::from_secs(15),
            retry_delay: Duration::from_millis(500),
            limits: SyncLimits::default(),
            reconcile: ReconcileConfig::default(),
        }
    }
}

impl SyncerConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        let defaults = Self::default();
        Self {
            concurrency: settings.syncer_concurrency,
            limits: SyncLimits {
                max_file_size: settings.syncer_max_file_size,
                timeout: settings.syncer_sync_timeout,
                ..defaults.limits
            },
            reconcile: ReconcileConfig {
                interval: settings.syncer_reconcile_interval,
                stale_after: settings.syncer_stale_after,
                max_retries: settings.syncer_max_retries,
                retry_delay: settings.syncer_retry_delay,
                head_check_interval: settings.syncer_head_check_interval,
            },
            ..defaults
        }
    }

    pub(crate) fn retry_delay(&self, attempts: i64) -> Duration {
        hooklog_infra::nats::durable::retry_delay(
            self.retry_delay,
            attempts,
            Duration::from_secs(30),
        )
    }
}

/// Where mirrors of remote git sources are kept.
pub fn git_cache_dir(settings: &Settings) -> PathBuf {
    settings
        .syncer_git_cache_dir
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("git"))
}

/// The GitHub App source's settings (the key already read from its file, when given as one).
pub fn github_app_config(settings: &Settings) -> Result<GithubAppConfig, std::io::Error> {
    let private_key = match (
        &settings.github_app_private_key,
        &settings.github_app_private_key_file,
    ) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(path)) => Some(std::fs::read_to_string(path)?.into()),
        (None, None) => None,
    };
    Ok(GithubAppConfig {
        api_url: settings.github_api_url.clone(),
        app_id: settings.github_app_id,
        private_key,
        ..GithubAppConfig::default()
    })
}

/// The sources of every target: GitHub from the settings (as the App, or with a repository
/// connection's token from `vault`), and git repositories mirrored under the git cache
/// directory, read only when `HOOKLOG_SYNCER_ALLOWED_SOURCES` covers them (a GitLab
/// connection's project: when it is on the GitLab of `HOOKLOG_GITLAB_API_URL`).
pub fn sources(
    settings: &Settings,
    vault: Option<hooklog_write::vault::Vault>,
) -> Result<crate::source::Sources, String> {
    use std::sync::Arc;

    use crate::source::github::GithubApp;
    use crate::source::local::LocalGit;

    let github = github_app_config(settings)
        .map_err(|err| format!("cannot read HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE: {err}"))?;
    let github = GithubApp::new(github)
        .map_err(|err| err.to_string())?
        .with_vault(vault.clone());
    Ok(crate::source::Sources {
        github: Arc::new(github),
        local: Arc::new(
            LocalGit::new(
                git_cache_dir(settings),
                settings.syncer_allowed_sources.clone(),
            )
            .with_connections(vault, &settings.gitlab_api_url),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_double_from_the_configured_delay() {
        let config = ReconcileConfig::default();
        assert_eq!(config.backoff(1), Duration::from_secs(30));
        assert_eq!(config.backoff(2), Duration::from_secs(60));
        assert_eq!(config.backoff(4), Duration::from_secs(240));
    }

    #[test]
    fn nak_delays_are_capped() {
        let config = SyncerConfig::default();
        assert_eq!(config.retry_delay(1), Duration::from_millis(500));
        assert_eq!(config.retry_delay(100), Duration::from_secs(30));
    }
}
