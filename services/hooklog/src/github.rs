//! `hooklog github deliveries|redeliver`: the GitHub reconciler's findings from the read model,
//! and an operator's redelivery through the same use case the admin API calls.

use std::process::ExitCode;
use std::sync::Arc;

use hooklog_domain::clock::SystemClock;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::config::Settings;
use hooklog_projections::query::{self, GithubDeliveryFilter, PageRequest, QueryError};
use hooklog_reconciler::redeliver::{self, Reported};
use hooklog_reconciler::ReconcilerConfig;
use hooklog_write::CommandBus;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::{GithubCommand, GithubDeliveriesArgs, RedeliverArgs};

pub async fn run(settings: &Settings, command: GithubCommand) -> anyhow::Result<ExitCode> {
    match command {
        GithubCommand::Deliveries(args) => deliveries(settings, args).await,
        GithubCommand::Redeliver(args) => redeliver(settings, args).await,
    }
}

async fn deliveries(settings: &Settings, args: GithubDeliveriesArgs) -> anyhow::Result<ExitCode> {
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let filter = GithubDeliveryFilter {
        status: args.status,
        missing: args.missing.then_some(true),
        ..GithubDeliveryFilter::default()
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut page = PageRequest {
        cursor: None,
        limit: Some(500),
    };
    let mut printed = 0;
    let code = loop {
        let rows = match query::github_deliveries(&pool, &filter, &page).await {
            Ok(rows) => rows,
            Err(QueryError::BadFilter(message)) => {
                eprintln!("hooklog: {message}");
                break ExitCode::from(2);
            }
            Err(err) => return Err(err.into()),
        };
        for row in rows.items.iter().take(limit - printed) {
            println!("{}", serde_json::to_string(row)?);
            printed += 1;
        }
        match rows.next_cursor {
            Some(cursor) if printed < limit => page.cursor = Some(cursor),
            _ => break ExitCode::SUCCESS,
        }
    };
    pool.close().await;
    Ok(code)
}

async fn redeliver(settings: &Settings, args: RedeliverArgs) -> anyhow::Result<ExitCode> {
    let app = crate::serve::github_reconciler_client(settings)?;
    let (client, policy) = (
        app.client,
        ReconcilerConfig::from_settings(app.app_id, settings).policy,
    );
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("cli", &uuid::Uuid::new_v4().to_string());
    let guids = match (args.guid, args.all_missing) {
        (Some(guid), _) => vec![guid],
        (None, _) => query::open_github_deliveries(&pool).await?,
    };
    let mut code = ExitCode::SUCCESS;
    for guid in &guids {
        let result = redeliver::by_operator(&bus, &client, guid, policy, &meta).await;
        let (reported, detail) = redeliver::reported(&result);
        let outcome = match reported {
            Reported::Accepted => "accepted",
            Reported::Refused => {
                code = ExitCode::from(1);
                "refused"
            }
            Reported::Failed => {
                code = ExitCode::from(75);
                "failed"
            }
        };
        let detail = detail.unwrap_or_default();
        println!(
            "{}",
            json!({"guid": guid, "outcome": outcome, "detail": detail})
        );
    }
    if guids.is_empty() {
        eprintln!("hooklog: no GitHub delivery is missing");
    }
    pool.close().await;
    Ok(code)
}
