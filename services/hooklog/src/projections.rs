//! `hooklog projections rebuild [--projection P] [--verify]`: replay read models from the
//! streams into the shadow schema, then swap them in or compare them with the live tables.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_infra::config::Settings;
use hooklog_infra::nats::{self, find_nats_server, EmbeddedNats};
use hooklog_projections::{rebuild, Projection, ProjectorConfig};
use secrecy::ExposeSecret;

use crate::cli::{ProjectionName, ProjectionsCommand};

pub async fn run(settings: &Settings, command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let ProjectionsCommand::Rebuild(args) = command;
    let projections = match args.projection {
        None => Projection::ALL.to_vec(),
        Some(ProjectionName::Connector) => vec![Projection::Connector],
        Some(ProjectionName::Deliveries) => vec![Projection::Deliveries],
    };
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    // Without HOOKLOG_NATS_URL the streams are those of the embedded server's store: start it
    // (it refuses while `hooklog serve` holds the same store; point HOOKLOG_NATS_URL there).
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
    let client = nats::connect(&url, "hooklog-projections").await?;
    let js = async_nats::jetstream::new(client);
    let config = ProjectorConfig::default();
    let mut all_equal = true;
    for projection in projections {
        let report = if args.verify {
            rebuild::verify(&pool, &js, projection, &config).await
        } else {
            rebuild::replace(&pool, &js, projection, &config).await
        }
        .with_context(|| format!("cannot rebuild the {} projection", projection.name()))?;
        all_equal &= report.equal();
        println!("{}", serde_json::to_string(&report)?);
    }
    pool.close().await;
    if let Some(mut server) = embedded {
        server.stop().await;
    }
    Ok(match all_equal {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}
