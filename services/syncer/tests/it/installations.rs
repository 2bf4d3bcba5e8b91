//! The App's installations through the fake GitHub: one looked up with the App JWT, and every
//! repository it gave the App listed with its token, page by page; and the fake's own paging and
//! token checks, asked directly.

use hooklog_domain::ids::InstallationId;
use hooklog_syncer::source::github::{AppClient, Installation, InstallationRepository};
use hooklog_syncer::source::SourceError;
use hooklog_syncer::testing::{FakeGithub, TestRepo, APP_ID, PRIVATE_KEY};
use serde_json::{json, Value};

#[tokio::test]
async fn an_installation_is_found_with_its_account_and_an_unknown_one_is_none() {
    let repo = TestRepo::new();
    let github = FakeGithub::start_for(&repo).await;
    github.add_installation(7, "octo-org", &[]);
    let client = AppClient::new(&github.app_config()).unwrap();
    assert_eq!(
        client.installation(7).await.unwrap(),
        Some(Installation {
            id: 7,
            account: "octo-org".into(),
            account_type: "Organization".into(),
            repository_selection: Some("selected".into()),
            suspended: false,
        })
    );
    assert_eq!(client.installation(8).await.unwrap(), None);
    assert_eq!(github.installation_lookups(), 2);

    let mut other = github.app_config();
    other.app_id = Some(1);
    let err = AppClient::new(&other)
        .unwrap()
        .installation(7)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("HOOKLOG_GITHUB_APP_ID"), "{err}");
    assert_eq!(github.rejected_jwts(), 1);
}

#[tokio::test]
async fn every_repository_of_an_installation_is_listed_across_pages() {
    let repo = TestRepo::new();
    let github = FakeGithub::start_for(&repo).await;
    let names: Vec<(u64, String, String)> = (1..=150)
        .map(|n| {
            let branch = if n % 2 == 0 { "main" } else { "trunk" };
            (n, format!("octo-org/repo-{n}"), branch.to_owned())
        })
        .collect();
    let repositories: Vec<(u64, &str, &str)> = names
        .iter()
        .map(|(id, name, branch)| (*id, name.as_str(), branch.as_str()))
        .collect();
    github.add_installation(9, "octo-org", &repositories);
    let listed = github
        .app()
        .installation_repositories(InstallationId(9))
        .await
        .unwrap();
    assert_eq!(listed.len(), 150);
    assert_eq!(github.repository_listings(), 2, "100 a page");
    assert_eq!(listed[0].full_name, "octo-org/repo-1");
    assert_eq!(listed[0].default_branch, "trunk");
    assert_eq!(listed[149].id, 150);
    assert_eq!(listed[149].default_branch, "main");
    assert!(listed.iter().all(|r| !r.private));
}

#[tokio::test]
async fn each_token_lists_its_own_installation_in_githubs_pages() {
    let repo = TestRepo::new();
    let github = FakeGithub::start_for(&repo).await;
    let names: Vec<String> = (1..=45).map(|n| format!("octo-org/r{n}")).collect();
    let many: Vec<(u64, &str, &str)> = names
        .iter()
        .zip(1..)
        .map(|(name, id)| (id, name.as_str(), "main"))
        .collect();
    github.add_installation(5, "octo-org", &many);
    github.add_installation(6, "other-org", &[(900, "other-org/solo", "trunk")]);

    // The client, as installation 6, sees only installation 6's repository, in one page.
    let solo = github
        .app()
        .installation_repositories(InstallationId(6))
        .await
        .unwrap();
    assert_eq!(
        solo,
        vec![InstallationRepository {
            id: 900,
            full_name: "other-org/solo".into(),
            default_branch: "trunk".into(),
            private: false,
        }]
    );
    assert_eq!(github.repository_listings(), 1);

    // GitHub's paging, asked directly: 30 a page by default, a `Link` to the next while more
    // remain, and a token required.
    let http = reqwest::Client::new();
    let url = format!("{}/installation/repositories", github.url());
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let token = exchange(&http, &github, 5).await;
    let first = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("/installation/repositories?per_page=30&page=2>; rel=\"next\""),
        "{link}"
    );
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["total_count"], 45);
    assert_eq!(first["repositories"].as_array().unwrap().len(), 30);
    assert_eq!(first["repositories"][0]["full_name"], "octo-org/r1");
    assert_eq!(first["repositories"][0]["owner"]["login"], "octo-org");
    let second = http
        .get(format!("{url}?per_page=30&page=2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(second.headers().get("link").is_none());
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["repositories"].as_array().unwrap().len(), 15);
    assert_eq!(second["repositories"][14]["id"], 45);
}

/// An installation token for `installation`, bought with an App JWT signed by the fixture key.
async fn exchange(http: &reqwest::Client, github: &FakeGithub, installation: u64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({ "iat": now - 60, "exp": now + 540, "iss": APP_ID.to_string() });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap();
    let answer: Value = http
        .post(format!(
            "{}/app/installations/{installation}/access_tokens",
            github.url()
        ))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_owned()
}
