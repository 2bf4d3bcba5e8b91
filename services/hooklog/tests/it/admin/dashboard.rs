//! The dashboard in headless Chromium (Debian's `chromium`, driven by `playwright-core` from
//! `services/admin/tests/dashboard/dashboard.test.mjs`) against `hooklog serve` with every role:
//! a wrong token is refused; logged in, the instance and its target show; a signed push shows
//! up live and its sync completes; Sync goes queued, running, completed without a reload; the
//! delivery's raw payload; phone width; keyboard; a read-token session has no write controls
//! and the API refuses it anyway; Connect GitHub (the install link, GitHub's redirect to the
//! setup callback with its one-use state, the installation verified with the fake GitHub, the
//! repository picker tracking a default branch); no page error and no request to another origin. Screenshots
//! are saved under the test's temporary target directory (`dashboard/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use hooklog_syncer::testing::{FakeGithub, TestRepo, APP_ID, PRIVATE_KEY, PUBLIC_KEY};

use super::sync::{commit, push_of};
use super::*;

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../admin/tests/dashboard")
}

#[tokio::test]
async fn the_dashboard_shows_a_push_and_a_sync_live_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run `source .ci/setup` (it installs Debian's chromium)"
    );
    assert!(
        script_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `source .ci/setup` (npm ci in {})",
        script_dir().display()
    );
    let repo = TestRepo::new();
    commit(&repo, &[("README.md", Some(b"# first\n"))]);
    let cache = tempfile::tempdir().unwrap();
    // The App, for Connect GitHub: an installation GitHub knows, with two repositories.
    let github = FakeGithub::start(cache.path().to_path_buf(), APP_ID, PUBLIC_KEY).await;
    github.add_installation(
        4300,
        "octo-org",
        &[
            (501, "octo-org/docs", "main"),
            (502, "octo-org/site", "trunk"),
        ],
    );
    let key_file = cache.path().join("app.pem");
    std::fs::write(&key_file, PRIVATE_KEY).unwrap();
    let stack = Stack::start_with(
        &[],
        &[
            ("HOOKLOG_GITHUB_API_URL", github.url()),
            ("HOOKLOG_GITHUB_APP_ID", APP_ID.to_string()),
            (
                "HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE",
                key_file.display().to_string(),
            ),
            ("HOOKLOG_GITHUB_APP_SLUG", "hooklog-test".to_owned()),
            (
                "HOOKLOG_SYNCER_GIT_CACHE_DIR",
                cache.path().display().to_string(),
            ),
            (
                "HOOKLOG_SYNCER_ALLOWED_SOURCES",
                repo.path().display().to_string(),
            ),
            ("HOOKLOG_SECRETS_KEY", SECRETS_KEY.to_owned()),
            ("HOOKLOG_PUBLIC_URL", "https://hooks.example.com".to_owned()),
            // Nothing listens there: a GitLab connection's webhook creation fails at once.
            (
                "HOOKLOG_GITLAB_API_URL",
                "http://127.0.0.1:9/api/v4".to_owned(),
            ),
        ],
    )
    .await;
    let installation = 4200;
    connect(&stack, installation).await;
    let source = json!({ "source": repo.path().display().to_string() });
    let (target, _) = track_with(&stack, installation, "main", source).await;
    let head = commit(
        &repo,
        &[
            ("README.md", Some(b"# docs\n")),
            ("docs/guide.md", Some(b"guide\n")),
        ],
    );
    // A push without the fields a push needs: a dead letter to redrive.
    stack
        .send(
            "push",
            "dashboard-bad-push",
            &json!({"zen": "no repository"}),
        )
        .await;
    // A repository connected without the App (its webhook creation fails against the fake,
    // which knows only the App; a failed connection still takes its webhook's deliveries), and
    // a failing CI run of it: an open incident, which the browser sees resolve live.
    let connected = stack
        .command(
            Method::POST,
            "/v1/admin/repositories",
            json!({"provider": "github", "repository": "octo-org/docs", "branch": "main", "token": "ghp_dashboard-test-token"}),
        )
        .await;
    let connection = connected["connection_id"].as_str().unwrap().to_owned();
    let vault = hooklog_write::vault::Vault::new(
        stack.pool.clone(),
        hooklog_write::vault::VaultKeys {
            current: hooklog_write::vault::SecretsKey::new(&[5; 32]),
            previous: None,
        },
    );
    let deadline = std::time::Instant::now() + WAIT;
    let connection_secret = loop {
        use secrecy::ExposeSecret;
        let secret = vault
            .get(&connection, hooklog_write::vault::SecretKind::WebhookSecret)
            .await
            .unwrap();
        if let Some(secret) = secret {
            break secret.expose_secret().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no secret sealed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let connection_url = format!(
        "http://{}/v1/webhooks/repositories/{connection}",
        stack.ingress
    );
    let run_failed = workflow_run(7, "failure");
    let mut accepted = 0;
    while accepted != 202 {
        // The ingress takes the connection once its directory has loaded it.
        accepted = send_signed(&connection_url, &connection_secret, &run_failed).await;
        assert!(
            std::time::Instant::now() < deadline,
            "the connection's URL answered {accepted}"
        );
        if accepted != 202 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let run_file = stack.dir.path().join("run.json");
    std::fs::write(&run_file, workflow_run(8, "success")).unwrap();
    let push_file = stack.dir.path().join("push.json");
    std::fs::write(
        &push_file,
        serde_json::to_vec(&push_of(installation, &sha(0), &head)).unwrap(),
    )
    .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");

    let output = tokio::task::spawn_blocking({
        let (admin, ingress, artifacts) = (
            format!("http://{}", stack.admin),
            format!("http://{}", stack.ingress),
            artifacts.clone(),
        );
        move || {
            Command::new("node")
                .arg(script_dir().join("dashboard.test.mjs"))
                .current_dir(script_dir())
                .env("CHROMIUM", chromium)
                .env("ADMIN_URL", admin)
                .env("INGRESS_URL", ingress)
                .env("WRITE_TOKEN", WRITE_TOKEN)
                .env("READ_TOKEN", READ_TOKEN)
                .env("SECRET", SECRET)
                .env("TARGET_ID", &target)
                .env("INSTALLATION", installation.to_string())
                .env("PUSH_HEAD", &head)
                .env("PUSH_FILE", &push_file)
                .env("CONNECTION_URL", &connection_url)
                .env("CONNECTION_SECRET", &connection_secret)
                .env("RUN_FILE", &run_file)
                .env("ARTIFACTS", &artifacts)
                .output()
                .expect("node runs (Debian's nodejs)")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stderr}\n{stdout}\nhooklog:\n{}",
        stack.served.logs()
    );
    assert_eq!(
        github.rejected_jwts(),
        0,
        "App JWTs the fake could not verify"
    );
    assert!(
        github.installation_lookups() >= 1,
        "the installation was verified with GitHub"
    );
    // The picker asked GitHub once when opened and once more to show what it tracked.
    assert_eq!(github.repository_listings(), 2);
    for shot in [
        "instances",
        "targets",
        "target",
        "delivery",
        "targets-phone",
        "read-only",
        "repositories",
    ] {
        let path = artifacts.join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 1000,
            "screenshot {} is missing or empty",
            path.display()
        );
    }
}

/// `HOOKLOG_SECRETS_KEY` of the test: 32 bytes of 5, as base64.
const SECRETS_KEY: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";

/// A real `workflow_run.completed` example made run `number` of workflow 161335 ("CI") on
/// `main` of `octo-org/docs`, with `conclusion`.
fn workflow_run(number: u64, conclusion: &str) -> Vec<u8> {
    let mut body = hooklog_infra::testing::octokit_example("workflow_run", |e| {
        e["action"] == "completed" && e["workflow_run"]["conclusion"] == "success"
    });
    let run = &mut body["workflow_run"];
    run["id"] = json!(70_000 + number);
    run["workflow_id"] = json!(161_335);
    run["name"] = json!("CI");
    run["head_branch"] = json!("main");
    run["head_sha"] = json!(format!("{number:040x}"));
    run["run_number"] = json!(number);
    run["conclusion"] = json!(conclusion);
    run["html_url"] = json!(format!(
        "https://github.com/octo-org/docs/actions/runs/{number}"
    ));
    run["updated_at"] = json!(format!("2026-12-01T10:{number:02}:00Z"));
    serde_json::to_vec(&body).unwrap()
}

/// Posts `body` as a `workflow_run` signed with `secret`; the status.
async fn send_signed(url: &str, secret: &str, body: &[u8]) -> u16 {
    let signature = Signature::sign(&WebhookSecret::new(secret), body).to_string();
    hooklog_infra::http::client()
        .unwrap()
        .post(url)
        .header("X-GitHub-Event", "workflow_run")
        .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
