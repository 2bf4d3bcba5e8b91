//! The `hooklog` binary: parse the command line and settings, start telemetry, run the command.
#![forbid(unsafe_code)]

mod audit;
mod cli;
mod connect;
mod deliver;
mod github;
mod progress;
mod projections;
mod replay;
mod repositories;
mod serve;
mod targets;

use clap::Parser;
use hooklog_infra::config::Settings;
use hooklog_infra::telemetry;

use crate::cli::{Cli, Command};

/// mimalloc instead of glibc's allocator: under load most of the process's allocations are small
/// and short-lived (payload buffers, headers, events), and glibc's malloc took about 30% of its
/// CPU in the write-path benchmark (`perf`), mostly consolidating and unlinking free chunks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hooklog: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let output = match cli.command {
        Command::Serve(_) => telemetry::Output::Batched,
        _ => telemetry::Output::Direct,
    };
    telemetry::init(&settings.log, settings.log_format, output);
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Migrate => migrate(&settings).await,
        Command::Deliver(args) => deliver::run(&settings, args).await,
        Command::Targets(command) => targets::run(&settings, command).await,
        Command::Projections(command) => projections::run(&settings, command).await,
        Command::Audit(command) => audit::run(&settings, command).await,
        Command::Replay(args) => replay::run(&settings, args).await,
        Command::Github(command) => github::run(&settings, command).await,
        Command::Repositories(command) => repositories::run(&settings, command).await,
        Command::Secrets(command) => repositories::secrets(&settings, command).await,
    };
    let code = match outcome {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "hooklog failed");
            eprintln!("hooklog: {err:#}");
            std::process::ExitCode::FAILURE
        }
    };
    telemetry::flush();
    code
}

async fn migrate(settings: &Settings) -> anyhow::Result<std::process::ExitCode> {
    use secrecy::ExposeSecret;
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    pool.close().await;
    println!("migrations applied");
    Ok(std::process::ExitCode::SUCCESS)
}
