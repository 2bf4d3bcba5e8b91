//! `hooklog projections rebuild [--projection P] [--verify]`: replay read models from the
//! streams into the shadow schema, then swap them in or compare them with the live tables.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_infra::config::Settings;
use hooklog_projections::{rebuild, Projection, ProjectorConfig};

use crate::cli::{ProjectionName, ProjectionsCommand};
use crate::connect::{database, Streams};

pub async fn run(settings: &Settings, command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let ProjectionsCommand::Rebuild(args) = command;
    let projections = match args.projection {
        None => Projection::ALL.to_vec(),
        Some(ProjectionName::Connector) => vec![Projection::Connector],
        Some(ProjectionName::Deliveries) => vec![Projection::Deliveries],
    };
    let pool = database(settings).await?;
    let streams = Streams::connect(settings, "hooklog-projections").await?;
    let js = streams.js.clone();
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
    streams.close().await;
    Ok(match all_equal {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}
