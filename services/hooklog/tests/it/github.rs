//! The GitHub reconciler in `hooklog serve` against the fake GitHub: deliveries GitHub sent
//! while hooklog was down come back on their own, and `hooklog github deliveries|redeliver`
//! show and ask from the command line.

use std::time::{Duration, Instant, SystemTime};

use hooklog_infra::testing::octokit_example;
use hooklog_syncer::testing::{FakeGithub, APP_ID, PRIVATE_KEY, PUBLIC_KEY};
use serde_json::Value;

use crate::support::{free_addr, fresh_database_url, hooklog, nats_server_bin, run, text, Served};

const SECRET: &str = "github-reconciler-cli-secret";
const TOKEN: &str = "github-reconciler-cli-admin-token";

fn push(n: u64) -> Vec<u8> {
    let mut body = octokit_example("push", |_| true);
    body["after"] = serde_json::json!(format!("{n:040x}"));
    serde_json::to_vec(&body).unwrap()
}

struct Env {
    dir: tempfile::TempDir,
    db: String,
    key_file: std::path::PathBuf,
    github: FakeGithub,
}

impl Env {
    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKLOG_DATABASE_URL", self.db.clone()),
            ("HOOKLOG_GITHUB_API_URL", self.github.url()),
            ("HOOKLOG_GITHUB_APP_ID", APP_ID.to_string()),
            (
                "HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE",
                self.key_file.display().to_string(),
            ),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOOKLOG_ADMIN_TOKEN", TOKEN.to_owned()),
            ("HOOKLOG_GITHUB_RECONCILE_INTERVAL", "1s".to_owned()),
            ("HOOKLOG_GITHUB_RECONCILE_SETTLE", "0s".to_owned()),
            (
                "HOOKLOG_NATS_SERVER_BIN",
                nats_server_bin().display().to_string(),
            ),
        ]
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = hooklog(self.dir.path());
        for (key, value) in self.settings() {
            command.env(key, value);
        }
        run(command.arg("github").args(args))
    }

    fn json_lines(output: &std::process::Output) -> Vec<Value> {
        text(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn deliveries_sent_while_hooklog_was_down_come_back_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, PRIVATE_KEY).unwrap();
    let github = FakeGithub::start(dir.path().to_path_buf(), APP_ID, PUBLIC_KEY).await;
    github.set_webhook_secret(SECRET);
    let env = Env {
        db: fresh_database_url().0,
        key_file,
        github,
        dir,
    };
    let (ingress, admin) = (free_addr(), free_addr());
    // GitHub sends two pushes while nothing listens at hooklog's address, and one that it
    // counts as answered 200 but hooklog lost.
    env.github
        .set_webhook_url(&format!("http://{ingress}/v1/webhooks/connectors/github"));
    let down: Vec<String> = {
        let mut guids = vec![];
        for n in 0..2 {
            let sent = env.github.deliver("push", &push(n)).await;
            assert_eq!(sent.status_code, 0, "nothing listens yet");
            guids.push(sent.guid);
        }
        guids
    };
    let lost = env
        .github
        .record_lost("push", &push(9), SystemTime::now(), 200)
        .guid;

    let mut settings = env.settings();
    settings.push(("HOOKLOG_INGRESS_ADDR", ingress.clone()));
    settings.push(("HOOKLOG_ADMIN_ADDR", admin.clone()));
    let mut served = Served::start(env.dir.path(), &[], &settings);
    crate::support::wait_ready(&admin, &mut served).await;

    // Within a few passes every one is redelivered by GitHub, stored, and recorded arrived.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let output = env.cli(&["deliveries"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let rows = Env::json_lines(&output);
        let arrived = rows.iter().filter(|r| r["status"] == "arrived").count();
        if arrived == 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let guids: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["guid"].as_str().unwrap()).collect();
    let expected: std::collections::BTreeSet<&str> = down
        .iter()
        .map(String::as_str)
        .chain([lost.as_str()])
        .collect();
    assert_eq!(guids, expected, "{rows:?}\n{}", served.logs());
    for row in &rows {
        assert_eq!(row["status"], "arrived", "{row}");
        assert_eq!(row["attempts"], 1, "{row}");
        assert!(row["stream_sequence"].as_i64().unwrap() >= 1, "{row}");
    }
    assert_eq!(env.github.redelivery_requests().len(), 3);
    assert_eq!(env.github.rejected_jwts(), 0);

    // Nothing is missing now; an operator's redelivery of an arrived GUID is refused.
    let missing = env.cli(&["deliveries", "--missing"]);
    assert!(missing.status.success(), "{}", text(&missing.stderr));
    assert!(Env::json_lines(&missing).is_empty());
    let again = env.cli(&["redeliver", &lost]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    let answer = &Env::json_lines(&again)[0];
    assert_eq!(answer["outcome"], "refused");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("already arrived"),
        "{answer}"
    );
    let unknown = env.cli(&["redeliver", "no-such-guid"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stdout).contains("not recorded missing"));
    // The admin API shows the same and refuses the same, through the App `serve` gave it.
    let http = hooklog_infra::http::client().unwrap();
    let listed: Value = http
        .get(format!(
            "http://{admin}/v1/admin/github/deliveries?status=arrived"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
    let refused = http
        .post(format!(
            "http://{admin}/v1/admin/github/deliveries/{lost}/redeliver"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409, "{}", refused.text().await.unwrap());
    assert_eq!(env.github.redelivery_requests().len(), 3);
    served.terminate();
}

#[test]
fn redeliver_without_the_app_names_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(hooklog(dir.path())
        .env("HOOKLOG_DATABASE_URL", fresh_database_url().0)
        .args(["github", "redeliver", "--all-missing"]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("HOOKLOG_GITHUB_APP_ID")
            && stderr.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"),
        "{stderr}"
    );
}
