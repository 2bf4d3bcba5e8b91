//! What the one-shot commands (`projections`, `audit`) connect to: PostgreSQL, and the NATS
//! server of `HOOKLOG_NATS_URL` or, without it, the embedded server's store on
//! `HOOKLOG_DATA_DIR` (started for the command; refused while `hooklog serve` holds it).

use anyhow::Context;
use hooklog_infra::config::Settings;
use hooklog_infra::nats::{self, find_nats_server, EmbeddedNats, NatsAuth};
use secrecy::ExposeSecret;

/// A NATS connection, with the embedded server it runs on when this command started one.
pub struct Streams {
    pub js: async_nats::jetstream::Context,
    client: async_nats::Client,
    embedded: Option<EmbeddedNats>,
}

impl Streams {
    pub async fn connect(settings: &Settings, client_name: &str) -> anyhow::Result<Streams> {
        let mut embedded = None;
        let url = match &settings.nats_url {
            Some(url) => url.expose_secret().to_owned(),
            None => {
                let bin = find_nats_server(settings.nats_server_bin.as_deref())?;
                let server = EmbeddedNats::start(&bin, &settings.data_dir.join("nats"))
                    .await
                    .context("cannot start the embedded nats-server on HOOKLOG_DATA_DIR (if `hooklog serve` is running, set HOOKLOG_NATS_URL to its server)")?;
                let url = server.url();
                embedded = Some(server);
                url
            }
        };
        let client =
            nats::connect_with(&url, NatsAuth::from_settings(settings), client_name).await?;
        Ok(Streams {
            js: async_nats::jetstream::new(client.clone()),
            client,
            embedded,
        })
    }

    /// Disconnects, then stops the embedded server if this command started one.
    pub async fn close(self) {
        let _ = self.client.drain().await;
        if let Some(mut server) = self.embedded {
            server.stop().await;
        }
    }
}

/// The migrated database of `HOOKLOG_DATABASE_URL`.
pub async fn database(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    Ok(hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?)
}
