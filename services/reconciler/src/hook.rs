//! Which webhook's delivery log a pass reads: the App's, or a repository connection's webhook
//! (GitHub serves both in the same shape). Each log has its own checkpoint, and a pass takes
//! steps only for the GUIDs its own log listed, so one log's pass never asks another webhook
//! to redeliver what it never sent.

use hooklog_domain::clock::Timestamp;
use hooklog_domain::ids::RepositoryName;
use hooklog_domain::repository_connection::ConnectionId;
use sqlx::PgPool;
use time::OffsetDateTime;

use hooklog_syncer::source::github::repository_path;

use crate::log::PER_PAGE;
use crate::ReconcileError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookLog {
    /// The App's webhook (`/app/hook/deliveries`), read with the App JWT; its checkpoint is
    /// keyed by the App's id.
    App { app_id: u64 },
    /// A repository connection's webhook
    /// (`/repos/{owner}/{repo}/hooks/{hook_id}/deliveries`), read with the connection's token.
    Repository {
        connection: ConnectionId,
        repository: RepositoryName,
        hook_id: u64,
    },
}

impl HookLog {
    /// The repository connection whose webhook it is; `None` for the App's.
    pub fn connection(&self) -> Option<ConnectionId> {
        match self {
            Self::App { .. } => None,
            Self::Repository { connection, .. } => Some(*connection),
        }
    }

    fn root(&self) -> Result<String, ReconcileError> {
        match self {
            Self::App { .. } => Ok("/app/hook".to_owned()),
            Self::Repository {
                repository,
                hook_id,
                ..
            } => {
                let repository = repository_path(repository).map_err(ReconcileError::Github)?;
                Ok(format!("{repository}/hooks/{hook_id}"))
            }
        }
    }

    /// The log's first page (newest first, as many as GitHub serves at once).
    pub fn first_page(&self) -> Result<String, ReconcileError> {
        Ok(format!("{}/deliveries?per_page={PER_PAGE}", self.root()?))
    }

    /// Where GitHub is asked to redeliver attempt `github_id`.
    pub fn attempts_path(&self, github_id: u64) -> Result<String, ReconcileError> {
        Ok(format!("{}/deliveries/{github_id}/attempts", self.root()?))
    }

    /// The log, in words.
    pub fn what(&self) -> String {
        match self {
            Self::App { .. } => "the App's webhook delivery log".to_owned(),
            Self::Repository {
                connection,
                hook_id,
                ..
            } => format!(
                "the delivery log of webhook {hook_id} of repository connection {connection}"
            ),
        }
    }

    /// What to check when GitHub refuses the credentials.
    pub fn credentials(&self) -> &'static str {
        match self {
            Self::App { .. } => "check HOOKLOG_GITHUB_APP_ID and the App's private key",
            Self::Repository { .. } => {
                "the connection's token may be revoked or lack webhook read access"
            }
        }
    }

    pub(crate) async fn checkpoint(
        &self,
        pool: &PgPool,
    ) -> Result<Option<Timestamp>, ReconcileError> {
        let at: Option<OffsetDateTime> = match self {
            Self::App { app_id } => {
                sqlx::query_scalar(
                    "SELECT checked_until FROM github_reconcile_checkpoints WHERE app_id = $1",
                )
                .bind(*app_id as i64)
                .fetch_optional(pool)
                .await?
            }
            Self::Repository { connection, .. } => {
                sqlx::query_scalar(
                    "SELECT checked_until FROM repository_reconcile_checkpoints \
                     WHERE connection_id = $1",
                )
                .bind(connection.0)
                .fetch_optional(pool)
                .await?
            }
        };
        Ok(at.map(|at| Timestamp(at.into())))
    }

    pub(crate) async fn save_checkpoint(
        &self,
        pool: &PgPool,
        at: Timestamp,
    ) -> Result<(), ReconcileError> {
        let at = OffsetDateTime::from(at.0);
        match self {
            Self::App { app_id } => {
                sqlx::query(
                    "INSERT INTO github_reconcile_checkpoints (app_id, checked_until, updated_at) \
                     VALUES ($1, $2, now()) ON CONFLICT (app_id) DO UPDATE \
                     SET checked_until = GREATEST(github_reconcile_checkpoints.checked_until, \
                     EXCLUDED.checked_until), updated_at = now()",
                )
                .bind(*app_id as i64)
                .bind(at)
                .execute(pool)
                .await?;
            }
            Self::Repository { connection, .. } => {
                sqlx::query(
                    "INSERT INTO repository_reconcile_checkpoints \
                     (connection_id, checked_until, updated_at) VALUES ($1, $2, now()) \
                     ON CONFLICT (connection_id) DO UPDATE SET checked_until = \
                     GREATEST(repository_reconcile_checkpoints.checked_until, \
                     EXCLUDED.checked_until), updated_at = now()",
                )
                .bind(connection.0)
                .bind(at)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// GUIDs of this log recorded missing or asked for and not settled yet (from the read
    /// model).
    pub(crate) async fn open_guids(&self, pool: &PgPool) -> Result<Vec<String>, ReconcileError> {
        Ok(sqlx::query_scalar(
            "SELECT guid FROM github_deliveries WHERE status IN ('missing', 'requested') \
             AND connection_id IS NOT DISTINCT FROM $1 ORDER BY guid",
        )
        .bind(self.connection().map(|c| c.0))
        .fetch_all(pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_has_its_own_paths() {
        let app = HookLog::App { app_id: 1 };
        assert_eq!(
            app.first_page().unwrap(),
            "/app/hook/deliveries?per_page=100"
        );
        assert_eq!(
            app.attempts_path(5).unwrap(),
            "/app/hook/deliveries/5/attempts"
        );
        let repo = HookLog::Repository {
            connection: ConnectionId(uuid::Uuid::nil()),
            repository: RepositoryName::parse("octo-org/docs.v2").unwrap(),
            hook_id: 42,
        };
        assert_eq!(
            repo.first_page().unwrap(),
            "/repos/octo-org/docs.v2/hooks/42/deliveries?per_page=100"
        );
        assert_eq!(
            repo.attempts_path(7).unwrap(),
            "/repos/octo-org/docs.v2/hooks/42/deliveries/7/attempts"
        );
        let stored = HookLog::Repository {
            connection: ConnectionId(uuid::Uuid::nil()),
            repository: RepositoryName::from_stored("octo/..").unwrap(),
            hook_id: 42,
        };
        assert!(
            stored.first_page().is_err(),
            "a `..` name never reaches a path"
        );
    }
}
