//! Installation tokens: the App JWT exchanged for a token scoped to one installation, cached until
//! five minutes before it expires. Concurrent callers for one installation share one exchange;
//! installations do not wait on each other.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use hooklog_domain::ids::InstallationId;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::http::{bearer, Http};
use super::jwt::AppKey;
use crate::source::SourceError;

/// A token is replaced this long before GitHub would expire it, so no call starts with a token
/// that dies mid-sync.
const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// A token for one installation, as GitHub's `access_tokens` endpoint answers it.
#[derive(Debug, Deserialize)]
pub(super) struct InstallationToken {
    pub token: SecretString,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl InstallationToken {
    fn is_fresh(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at - REFRESH_MARGIN
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// The cached token of each installation, each behind its own lock.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    slots: Mutex<HashMap<InstallationId, Slot>>,
}

impl TokenCache {
    /// The cached token of `installation` while fresh, else the one `exchange` gets (and caches).
    /// Callers arriving during an exchange wait for it and take its token.
    pub(super) async fn get<F, Fut>(
        &self,
        installation: InstallationId,
        exchange: F,
    ) -> Result<SecretString, SourceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<InstallationToken, SourceError>>,
    {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            if token.is_fresh(OffsetDateTime::now_utc()) {
                return Ok(token.token.clone());
            }
        }
        let token = exchange().await?;
        let secret = token.token.clone();
        *cached = Some(token);
        Ok(secret)
    }

    /// Drops `rejected` (GitHub answered 401 to it), unless another caller already replaced it.
    pub(super) async fn forget(&self, installation: InstallationId, rejected: &SecretString) {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.token.expose_secret() == rejected.expose_secret())
        {
            *cached = None;
        }
    }

    fn slot(&self, installation: InstallationId) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(installation).or_default().clone()
    }
}

/// `POST /app/installations/{id}/access_tokens` with a fresh App JWT. Refusals (bad App id or
/// key, installation removed) are `Auth`.
pub(super) async fn exchange(
    http: &Http,
    key: &AppKey,
    installation: InstallationId,
) -> Result<InstallationToken, SourceError> {
    let jwt = key.sign(OffsetDateTime::now_utc())?;
    let path = format!("/app/installations/{installation}/access_tokens");
    let answer = http.send(Method::POST, &path, &bearer(&jwt)?).await?;
    let what = format!("an installation token for installation {installation}");
    match answer.status {
        StatusCode::CREATED | StatusCode::OK => answer.json(&what),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            Err(SourceError::Auth(format!(
                "GitHub refused {what} ({}); check HOOKLOG_GITHUB_APP_ID, the App's private key, \
                 and that the App is still installed",
                answer.describe()
            )))
        }
        _ => Err(answer.error(&what)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn token(value: &str, expires_in: Duration) -> InstallationToken {
        InstallationToken {
            token: SecretString::from(value),
            expires_at: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[test]
    fn a_token_is_stale_five_minutes_before_it_expires() {
        let now = OffsetDateTime::now_utc();
        let t = InstallationToken {
            token: SecretString::from("t"),
            expires_at: now + Duration::minutes(10),
        };
        assert!(t.is_fresh(now));
        assert!(t.is_fresh(now + Duration::minutes(4)));
        assert!(!t.is_fresh(now + Duration::minutes(5)));
    }

    #[test]
    fn the_exchange_answer_parses_with_its_rfc3339_expiry() {
        let t: InstallationToken =
            serde_json::from_str(r#"{"token":"ghs_x","expires_at":"2030-01-01T00:00:00Z"}"#)
                .unwrap();
        assert_eq!(t.token.expose_secret(), "ghs_x");
        assert_eq!(t.expires_at.year(), 2030);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_exchange_and_installations_are_separate() {
        let cache = TokenCache::default();
        let counter = AtomicUsize::new(0);
        let exchanges = &counter;
        let exchange = move || async move {
            exchanges.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(token("ghs_a", Duration::hours(1)))
        };
        let (a, b) = tokio::join!(
            cache.get(InstallationId(1), exchange),
            cache.get(InstallationId(1), exchange)
        );
        assert_eq!(a.unwrap().expose_secret(), "ghs_a");
        assert_eq!(b.unwrap().expose_secret(), "ghs_a");
        assert_eq!(exchanges.load(Ordering::SeqCst), 1);
        cache.get(InstallationId(2), exchange).await.unwrap();
        assert_eq!(exchanges.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_stale_or_forgotten_token_is_exchanged_again() {
        let cache = TokenCache::default();
        let id = InstallationId(1);
        let stale = cache
            .get(id, || async { Ok(token("old", Duration::minutes(4))) })
            .await
            .unwrap();
        let next = cache
            .get(id, || async { Ok(token("new", Duration::hours(1))) })
            .await
            .unwrap();
        assert_eq!(next.expose_secret(), "new");
        cache.forget(id, &stale).await;
        let cached_only = || async { Err(SourceError::Invalid("no exchange expected".into())) };
        let kept = cache.get(id, cached_only).await.unwrap();
        assert_eq!(
            kept.expose_secret(),
            "new",
            "forgetting an old token keeps the new one"
        );
        cache.forget(id, &kept).await;
        let again = cache
            .get(id, || async { Ok(token("newer", Duration::hours(1))) })
            .await
            .unwrap();
        assert_eq!(again.expose_secret(), "newer");
    }
}
