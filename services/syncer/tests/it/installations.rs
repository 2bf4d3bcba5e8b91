//! The App's installations through the fake GitHub: one looked up with the App JWT, and every
//! repository it gave the App listed with its token, page by page.

use hooklog_domain::ids::InstallationId;
use hooklog_syncer::source::github::{AppClient, Installation};
use hooklog_syncer::source::SourceError;
use hooklog_syncer::testing::{FakeGithub, TestRepo};

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
