//! `hooklog projections rebuild [--projection P] [--verify]`: replay read models from the
//! streams into the shadow schema, then swap them in or compare them with the live tables.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_infra::config::Settings;
use hooklog_projections::rebuild::RebuildReport;
use hooklog_projections::{rebuild, Projection, ProjectorConfig, ProjectorError};

use crate::cli::{ProjectionName, ProjectionsCommand};
use crate::connect::{database, Streams};
use crate::progress::Progress;

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
        let work = async {
            if args.verify {
                rebuild::verify(&pool, &js, projection, &config).await
            } else {
                rebuild::replace(&pool, &js, projection, &config).await
            }
        };
        let report = with_progress(&pool, &js, projection, work)
            .await
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

/// Runs a rebuild of `projection`, showing how far its replay is: the shadow schema's checkpoint
/// (which the replay advances as it commits) against the stream's last sequence.
async fn with_progress(
    pool: &sqlx::PgPool,
    js: &async_nats::jetstream::Context,
    projection: Projection,
    work: impl std::future::Future<Output = Result<RebuildReport, ProjectorError>>,
) -> Result<RebuildReport, ProjectorError> {
    let total = match js.get_stream(projection.stream()).await {
        Ok(mut stream) => stream
            .info()
            .await
            .map(|info| info.state.last_sequence)
            .unwrap_or(0),
        Err(_) => 0,
    };
    let mut progress = Progress::new("rebuilding");
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tick.tick() => {
                let position: Option<i64> = sqlx::query_scalar(
                    "SELECT position FROM hooklog_rebuild.projection_checkpoints WHERE projection = $1",
                )
                .bind(projection.name())
                .fetch_optional(pool)
                .await
                .ok()
                .flatten();
                if let Some(position) = position {
                    progress.update(projection.name(), position.max(0) as u64, total);
                }
            }
        }
    };
    if let Ok(report) = &outcome {
        let total = total.max(report.position);
        progress.update(projection.name(), report.position, total);
    }
    progress.finish();
    outcome
}
