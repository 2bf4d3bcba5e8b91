//! `hooklog repositories connect|list|retry|disconnect` and `hooklog secrets rotate` against a
//! fresh database: what each prints and exits with, that a missing setting or bad input is
//! named, and that the token is never printed.

use serde_json::Value;

use crate::support::{fresh_database_url, hooklog, run, text};

const TOKEN: &str = "ghp_cli-test-token-0123456789";
/// 32 bytes of 1 and of 2, as base64.
const KEY_ONE: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_TWO: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

struct Cli {
    dir: tempfile::TempDir,
    db: String,
}

impl Cli {
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut command = hooklog(self.dir.path());
        command.env("HOOKLOG_DATABASE_URL", &self.db);
        for (name, value) in env {
            command.env(name, value);
        }
        run(command.args(args))
    }
}

fn configured() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HOOKLOG_SECRETS_KEY", KEY_ONE),
        ("HOOKLOG_PUBLIC_URL", "https://hooks.example.com"),
        ("HOOKLOG_REPOSITORY_TOKEN", TOKEN),
    ]
}

const CONNECT: [&str; 8] = [
    "repositories",
    "connect",
    "--provider",
    "github",
    "--repository",
    "octo/docs",
    "--branch",
    "main",
];

#[test]
fn a_repository_is_connected_listed_and_disconnected_and_its_token_never_printed() {
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
        db: fresh_database_url().0,
    };
    let refused = cli.run(&[("HOOKLOG_REPOSITORY_TOKEN", TOKEN)], &CONNECT);
    assert_eq!(refused.status.code(), Some(78), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("HOOKLOG_SECRETS_KEY"));
    let no_token = cli.run(&configured()[..2], &CONNECT);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(text(&no_token.stderr).contains("HOOKLOG_REPOSITORY_TOKEN"));
    let mut bad = CONNECT.to_vec();
    bad[3] = "bitbucket";
    let bad = cli.run(&configured(), &bad);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--provider"),
        "{}",
        text(&bad.stderr)
    );

    let connected = cli.run(&configured(), &CONNECT);
    assert!(connected.status.success(), "{}", text(&connected.stderr));
    let printed: Value = serde_json::from_slice(&connected.stdout).unwrap();
    let id = printed["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(printed["status"], "pending");
    assert_eq!(
        printed["hook_url"],
        format!("https://hooks.example.com/v1/webhooks/repositories/{id}")
    );
    let again = cli.run(&configured(), &CONNECT);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("connected already"));

    let listed = cli.run(&configured(), &["repositories", "list"]);
    assert!(listed.status.success());
    let lines: Vec<Value> = text(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["connection_id"], id.as_str());
    assert_eq!(lines[0]["status"], "pending");
    let retried = cli.run(&configured(), &["repositories", "retry", &id]);
    assert_eq!(retried.status.code(), Some(1), "nothing failed yet");
    let gone = cli.run(&configured(), &["repositories", "disconnect", &id]);
    assert!(gone.status.success(), "{}", text(&gone.stderr));
    let gone: Value = serde_json::from_slice(&gone.stdout).unwrap();
    assert_eq!(gone["status"], "disconnecting");
    let bad_id = cli.run(&configured(), &["repositories", "disconnect", "not-an-id"]);
    assert_eq!(bad_id.status.code(), Some(2));
    for output in [&connected, &listed, &again, &refused] {
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!all.contains(TOKEN), "the token was printed: {all}");
    }

    // Rotation: the new key current and the old one previous, then the new key alone opens.
    let rotating = [
        ("HOOKLOG_SECRETS_KEY", KEY_TWO),
        ("HOOKLOG_SECRETS_KEY_PREVIOUS", KEY_ONE),
    ];
    let rotated = cli.run(&rotating, &["secrets", "rotate"]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(rotated["resealed"], 2, "{rotated}");
    let again = cli.run(&[("HOOKLOG_SECRETS_KEY", KEY_TWO)], &["secrets", "rotate"]);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (
            again["resealed"].as_u64(),
            again["already_current"].as_u64()
        ),
        (Some(0), Some(2))
    );
    let unkeyed = cli.run(&[], &["secrets", "rotate"]);
    assert_eq!(unkeyed.status.code(), Some(78));
}
