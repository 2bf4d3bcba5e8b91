//! Sync benchmark: the time of a first sync of a repository with `FILES` files (default 10,000)
//! and of an incremental sync after `CHANGED` of them change (default 10), through the GitHub App
//! source (the fake GitHub over loopback HTTP: trees, tarball and blobs APIs) and the git source,
//! into a fresh PostgreSQL database. Prints how many blobs each sync fetched and, for GitHub, the
//! requests it took (tarball archives, single blobs): an incremental sync must
//! fetch only the changed ones.
//!
//! `cargo run --release -p hooklog-syncer --features testing --example sync_bench [FILES] [CHANGED]`

use std::sync::Arc;
use std::time::Instant;

use hooklog_domain::ids::{
    InstallationId, RepositoryId, RepositoryName, SourceLocation, SyncId, TargetId,
};
use hooklog_domain::source::AllowedSources;
use hooklog_syncer::source::local::LocalGit;
use hooklog_syncer::source::{RepoRef, Sources};
use hooklog_syncer::sync::{self, SyncJob, SyncLimits};
use hooklog_syncer::testing::{FakeGithub, TestRepo};

/// A file's text: a few hundred bytes, different per file and per version.
fn content(file: usize, version: usize) -> String {
    format!(
        "# file {file}, version {version}\n\n{}\n",
        "Lorem ipsum dolor sit amet. ".repeat(16)
    )
}

fn path(file: usize) -> String {
    format!(
        "plugins/p{:02}/skills/s{:03}/notes-{file}.md",
        file % 50,
        file % 1000
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let files = args.first().copied().unwrap_or(10_000);
    let changed = args.get(1).copied().unwrap_or(10).min(files);

    let started = Instant::now();
    let repo = TestRepo::new();
    for file in 0..files {
        repo.write(&path(file), content(file, 0));
    }
    let first = repo.commit("first");
    println!(
        "repository: {files} files, built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Its own database, dropped at the end (the test suite's clean-up never touches it).
    let server = hooklog_infra::testing::postgres_server_url();
    let database = format!("hooklog_bench_{}", std::process::id());
    let pool =
        hooklog_infra::postgres::connect_and_migrate(&format!("{server}/{database}")).await?;
    let github = FakeGithub::start_for(&repo).await;
    let cache = tempfile::tempdir()?;
    let sources = Sources {
        github: Arc::new(github.app()),
        // The benchmark's own repository is the one source it may read.
        local: Arc::new(LocalGit::new(
            cache.path().to_path_buf(),
            AllowedSources::parse(&repo.path().display().to_string())?,
        )),
    };
    let limits = SyncLimits::default();

    // The change both sources sync second.
    for file in (0..files)
        .step_by((files / changed.max(1)).max(1))
        .take(changed)
    {
        repo.write(&path(file), content(file, 1));
    }
    let second = repo.commit("change");

    println!(
        "| source | sync | created | updated | skipped | blobs fetched | GitHub requests | time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, source) in [
        ("GitHub App (fake, HTTP)", None),
        ("git (local path)", Some(repo.path().display().to_string())),
    ] {
        let target = TargetId(uuid::Uuid::new_v4());
        let repo_ref = RepoRef {
            owner: hooklog_syncer::source::TargetOwner::Installation(InstallationId(1)),
            repository_id: RepositoryId(1),
            repository: RepositoryName::parse("octo/bench")?,
            source: source.as_deref().map(SourceLocation::parse).transpose()?,
        };
        for (label, head) in [("first", &first), ("incremental", &second)] {
            let job = SyncJob {
                target_id: target,
                sync_id: SyncId(uuid::Uuid::new_v4()),
                head_sha: head.clone(),
                repo: repo_ref.clone(),
                filters: Default::default(),
            };
            let before = (github.blob_fetches(), github.tarball_fetches());
            let started = Instant::now();
            let result = sync::run(&pool, &sources, &limits, &job).await?;
            let elapsed = started.elapsed();
            let requests = match source {
                None => format!(
                    "{} tarball, {} blobs",
                    github.tarball_fetches() - before.1,
                    github.blob_fetches() - before.0
                ),
                Some(_) => "-".to_owned(),
            };
            println!(
                "| {name} | {label} | {} | {} | {} | {} | {requests} | {:.2} s |",
                result.created,
                result.updated,
                result.skipped,
                result.fetched,
                elapsed.as_secs_f64()
            );
            assert!(result.failures.is_empty(), "{:?}", result.failures);
        }
    }
    pool.close().await;
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    ))
    .execute(&admin)
    .await?;
    Ok(())
}
