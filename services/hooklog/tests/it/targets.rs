//! `hooklog targets track|untrack|list` against a fresh database: what each prints, what a
//! refused command says, and that the commands go through the event store.

use serde_json::Value;

use crate::support::{fresh_database_url, hooklog, run, text};

struct Cli {
    dir: tempfile::TempDir,
    db: String,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            db: fresh_database_url().0,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        run(hooklog(self.dir.path())
            .env("HOOKLOG_DATABASE_URL", &self.db)
            .arg("targets")
            .args(args))
    }

    /// `run` with `HOOKLOG_SYNCER_ALLOWED_SOURCES` set to `allowed`.
    fn run_allowing(&self, allowed: &str, args: &[&str]) -> std::process::Output {
        run(hooklog(self.dir.path())
            .env("HOOKLOG_DATABASE_URL", &self.db)
            .env("HOOKLOG_SYNCER_ALLOWED_SOURCES", allowed)
            .arg("targets")
            .args(args))
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let output = self.run(args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

const TRACK: [&str; 9] = [
    "track",
    "--installation",
    "12",
    "--repository-id",
    "34",
    "--repository",
    "octo/docs",
    "--branch",
    "main",
];

#[test]
fn a_tracked_branch_is_listed_and_untracking_it_removes_it() {
    let cli = Cli::new();
    let tracked = cli.json_lines(&TRACK);
    assert_eq!(tracked[0]["status"], "tracked");
    let id = tracked[0]["target_id"].as_str().unwrap().to_owned();
    // Repeated, it is refused as the admin API refuses it (409 `already_tracked`).
    let again = cli.run(&TRACK);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains(&format!("target {id} is already tracked")),
        "{}",
        text(&again.stderr)
    );

    let listed = cli.json_lines(&["list"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["target_id"], id.as_str());
    assert_eq!(listed[0]["installation_id"], 12);
    assert_eq!(listed[0]["repository_id"], 34);
    assert_eq!(listed[0]["repository"], "octo/docs");
    assert_eq!(listed[0]["branch"], "main");
    assert_eq!(listed[0]["status"], "idle");
    assert_eq!(listed[0]["auto_sync"], true);

    assert_eq!(
        cli.json_lines(&["untrack", "--target", &id])[0]["status"],
        "removed"
    );
    assert_eq!(cli.json_lines(&["list"])[0]["status"], "removed");
    let again = cli.run(&["untrack", "--target", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("the target was removed"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_branch_tracked_with_a_git_source_lists_it() {
    let cli = Cli::new();
    let mut track = TRACK.to_vec();
    track.extend(["--source", "/srv/git/docs.git"]);
    let output = cli.run_allowing("/srv/git", &track);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed = cli.json_lines(&["list"]);
    assert_eq!(listed[0]["source"], "/srv/git/docs.git");
}

#[test]
fn a_source_the_setting_does_not_allow_exits_2_naming_the_setting() {
    let cli = Cli::new();
    let with_source = |source: &'static str| {
        let mut track = TRACK.to_vec();
        track.extend(["--source", source]);
        track
    };
    let refused = |output: std::process::Output| {
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        text(&output.stderr)
    };

    // Unset: every source is refused.
    let stderr = refused(cli.run(&with_source("/srv/git/docs.git")));
    assert!(
        stderr.contains("--source") && stderr.contains("HOOKLOG_SYNCER_ALLOWED_SOURCES"),
        "{stderr}"
    );
    // Beside the prefix, or climbing out of it.
    for source in ["/srv/gitevil/docs.git", "/srv/git/../etc"] {
        let stderr = refused(cli.run_allowing("/srv/git", &with_source(source)));
        assert!(stderr.contains("--source"), "{stderr}");
    }
    // A token as the user name, under an allowed URL prefix: refused, never echoed.
    let token = with_source("https://ghp_hunter2@github.com/octo/docs.git");
    let stderr = refused(cli.run_allowing("https://github.com/octo/", &token));
    assert!(
        stderr.contains("credentials") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    assert!(cli.json_lines(&["list"]).is_empty());

    // A prefix that is no prefix stops the CLI at start, naming the setting.
    let stderr = refused(cli.run_allowing("srv/git", &with_source("/srv/git/docs.git")));
    assert!(
        stderr.contains("HOOKLOG_SYNCER_ALLOWED_SOURCES") && stderr.contains("absolute"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_refused_with_the_flag_they_concern() {
    let cli = Cli::new();
    let mut bad_repo = TRACK;
    bad_repo[6] = "docs";
    let output = cli.run(&bad_repo);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--repository") && stderr.contains("OWNER/NAME"),
        "{stderr}"
    );

    let mut bad_branch = TRACK;
    bad_branch[8] = "refs/heads/main";
    let stderr = text(&cli.run(&bad_branch).stderr);
    assert!(stderr.contains("--branch"), "{stderr}");

    let mut bad_source = TRACK.to_vec();
    bad_source.extend(["--source", "ext::sh -c touch% /tmp/owned"]);
    let stderr = text(&cli.run(&bad_source).stderr);
    assert!(
        stderr.contains("--source") && stderr.contains("not a git repository path or URL"),
        "{stderr}"
    );

    let stderr = text(&cli.run(&["untrack", "--target", "not-a-uuid"]).stderr);
    assert!(
        stderr.contains("--target") && stderr.contains("not a target id"),
        "{stderr}"
    );
    assert!(cli.json_lines(&["list"]).is_empty());
}

#[test]
fn an_unreachable_database_is_named() {
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
        db: "postgres://postgres@127.0.0.1:1/hooklog".to_owned(),
    };
    let output = cli.run(&["list"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("PostgreSQL"),
        "{}",
        text(&output.stderr)
    );
}
