//! The `GithubApp` source against the fake GitHub over real HTTP, serving a real git repository:
//! App JWT and installation tokens, trees and blobs byte for byte, branch heads, and the auth and
//! configuration errors a sync reports. `World` and the helpers here are shared with
//! `github_faults`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use hooklog_domain::ids::{Branch, CommitSha, InstallationId, RepositoryId, RepositoryName};
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use hooklog_syncer::source::{RepoRef, RepoSource, SourceError, TreeEntry};
use hooklog_syncer::testing::{FakeGithub, TestRepo, APP_ID, PUBLIC_KEY};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;

/// A repository with nested directories, a binary file, an executable and a symlink, committed,
/// and the fake GitHub serving it.
pub struct World {
    pub repo: TestRepo,
    pub commit: CommitSha,
    /// Path to the bytes git stores for it.
    pub files: BTreeMap<String, Vec<u8>>,
    pub fake: FakeGithub,
}

impl World {
    pub async fn new() -> Self {
        let repo = TestRepo::new();
        let binary: Vec<u8> = (0..=255u8).rev().cycle().take(1500).collect();
        let mut files = BTreeMap::new();
        for (path, content) in [
            ("README.md", b"# plugins\n".to_vec()),
            (
                ".claude-plugin/marketplace.json",
                br#"{"name":"m"}"#.to_vec(),
            ),
            (
                "plugins/alpha/skills/review/SKILL.md",
                b"---\nname: review\n---\n".to_vec(),
            ),
            ("plugins/alpha/assets/logo.png", binary),
            (
                "plugins/beta/agents/deep/nested/agent.md",
                b"agent\n".to_vec(),
            ),
            ("bin/tool", b"#!/bin/sh\necho tool\n".to_vec()),
            ("empty.txt", Vec::new()),
        ] {
            repo.write(path, &content);
            files.insert(path.to_owned(), content);
        }
        let tool = repo.path().join("bin/tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir_all(repo.path().join("links")).expect("mkdir");
        std::os::unix::fs::symlink("../README.md", repo.path().join("links/readme"))
            .expect("symlink");
        files.insert("links/readme".to_owned(), b"../README.md".to_vec());
        let commit = repo.commit("plugins");
        let fake = FakeGithub::start(repo.to_path_buf(), APP_ID, PUBLIC_KEY).await;
        Self {
            repo,
            commit,
            files,
            fake,
        }
    }

    pub fn config(&self) -> GithubAppConfig {
        self.fake.app_config()
    }

    pub fn app(&self) -> GithubApp {
        self.fake.app()
    }

    /// Git's own listing of the commit's files, in path order.
    pub fn git_listing(&self) -> Vec<TreeEntry> {
        let out = self
            .repo
            .git(&["ls-tree", "-r", "-l", "-z", self.commit.as_str()]);
        let mut entries: Vec<TreeEntry> = out
            .split_terminator('\0')
            .map(|record| {
                let (meta, path) = record.split_once('\t').expect("a tab");
                let fields: Vec<&str> = meta.split_whitespace().collect();
                assert_eq!(fields[1], "blob", "the fixture has no submodules");
                TreeEntry {
                    path: path.to_owned(),
                    blob_sha: fields[2].to_owned(),
                    size: fields[3].parse().expect("a size"),
                    mode: fields[0].to_owned(),
                }
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }
}

pub fn repo_ref() -> RepoRef {
    RepoRef {
        owner: hooklog_syncer::source::TargetOwner::Installation(InstallationId(7)),
        repository_id: RepositoryId(99),
        repository: RepositoryName::parse("octo-org/plugins").unwrap(),
        source: None,
    }
}

pub fn shas(entries: &[TreeEntry]) -> Vec<String> {
    entries.iter().map(|e| e.blob_sha.clone()).collect()
}

/// Each entry's content is the file's (`files`: path to bytes), byte for byte, and its size.
pub fn assert_contents(files: &BTreeMap<String, Vec<u8>>, tree: &[TreeEntry], blobs: &[Bytes]) {
    assert_eq!(tree.len(), blobs.len());
    for (entry, bytes) in tree.iter().zip(blobs) {
        assert_eq!(
            bytes.as_ref(),
            files[&entry.path].as_slice(),
            "{}",
            entry.path
        );
        assert_eq!(bytes.len() as u64, entry.size, "{}", entry.path);
    }
}

pub fn unwrap_all(blobs: Vec<Result<Bytes, SourceError>>) -> Vec<Bytes> {
    blobs.into_iter().map(|b| b.expect("a blob")).collect()
}

/// A second RSA key, which the fake does not know, made with openssl.
fn stranger_key() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "2048"])
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl genrsa failed");
    String::from_utf8(out.stdout).expect("PEM")
}

#[derive(Debug, serde::Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

#[tokio::test]
async fn the_app_jwt_verifies_against_the_app_public_key_and_carries_iss_iat_and_exp() {
    let world = World::new().await;
    let app = world.app();
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    app.tree(&repo_ref(), &world.commit).await.expect("a tree");
    let after = time::OffsetDateTime::now_utc().unix_timestamp();

    let jwts = world.fake.verified_jwts();
    assert_eq!(jwts.len(), 1);
    let header = jsonwebtoken::decode_header(&jwts[0]).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID.to_string()]);
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Claims>(&jwts[0], &key, &validation)
        .expect("the JWT verifies")
        .claims;
    assert_eq!(claims.iss, APP_ID.to_string());
    assert!(
        (before - 60..=after - 60).contains(&claims.iat),
        "{claims:?}"
    );
    assert_eq!(claims.exp - claims.iat, 600, "nine minutes ahead of now");
}

#[tokio::test]
async fn the_installation_token_is_exchanged_once_and_reused_across_calls() {
    let world = World::new().await;
    let app = world.app();
    let repo = repo_ref();
    let main = Branch::parse("main").unwrap();
    let first = [world.git_listing()[0].blob_sha.clone()];

    let (tree, head, readme) = tokio::join!(
        app.tree(&repo, &world.commit),
        app.branch_head(&repo, &main),
        app.blobs(&repo, &world.commit, &first),
    );
    let tree = tree.expect("a tree");
    assert_eq!(head.unwrap(), Some(world.commit.clone()));
    unwrap_all(readme);
    unwrap_all(app.blobs(&repo, &world.commit, &shas(&tree)).await);
    app.tree(&repo, &world.commit).await.expect("a tree");

    assert_eq!(world.fake.token_exchanges(), 1);
}

#[tokio::test]
async fn tree_and_blobs_of_a_repository_with_nested_directories_and_a_binary_file_come_back_exactly(
) {
    let world = World::new().await;
    let app = world.app();

    let tree = app.tree(&repo_ref(), &world.commit).await.expect("a tree");
    assert_eq!(tree, world.git_listing());
    let paths: Vec<&str> = tree.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        world.files.keys().map(String::as_str).collect::<Vec<_>>()
    );
    let mode = |path: &str| tree.iter().find(|e| e.path == path).unwrap().mode.clone();
    assert_eq!(mode("bin/tool"), "100755");
    assert_eq!(mode("links/readme"), "120000");

    let blobs = unwrap_all(app.blobs(&repo_ref(), &world.commit, &shas(&tree)).await);
    assert_contents(&world.files, &tree, &blobs);
    for entry in &tree {
        assert_eq!(
            world.fake.blob_fetches_of(&entry.blob_sha),
            1,
            "{}",
            entry.path
        );
    }
    assert_eq!(world.fake.blob_fetches(), tree.len());
}

#[tokio::test]
async fn one_missing_blob_fails_alone_and_the_others_keep_their_order() {
    let world = World::new().await;
    let app = world.app();
    let listing = world.git_listing();
    let missing = "0".repeat(39) + "1";
    let asked = vec![
        listing[1].blob_sha.clone(),
        missing.clone(),
        listing[0].blob_sha.clone(),
    ];

    let blobs = app.blobs(&repo_ref(), &world.commit, &asked).await;

    assert_eq!(blobs.len(), 3);
    assert_eq!(
        blobs[0].as_ref().unwrap().as_ref(),
        world.files[&listing[1].path]
    );
    assert!(
        matches!(&blobs[1], Err(SourceError::NotFound(m)) if m.contains(&missing)),
        "{:?}",
        blobs[1]
    );
    assert_eq!(
        blobs[2].as_ref().unwrap().as_ref(),
        world.files[&listing[0].path]
    );
}

#[tokio::test]
async fn a_branch_head_is_read_and_a_missing_branch_is_none() {
    let world = World::new().await;
    world.repo.git(&["branch", "feature/with-slash"]);
    let app = world.app();
    let branch = |name: &str| Branch::parse(name).unwrap();

    let head = app
        .branch_head(&repo_ref(), &branch("feature/with-slash"))
        .await;
    assert_eq!(head.unwrap(), Some(world.commit.clone()));
    let gone = app
        .branch_head(&repo_ref(), &branch("no-such-branch"))
        .await;
    assert_eq!(gone.unwrap(), None);
}

#[tokio::test]
async fn a_revoked_installation_token_is_exchanged_again_and_the_call_succeeds() {
    let world = World::new().await;
    let app = world.app();
    app.tree(&repo_ref(), &world.commit).await.expect("a tree");
    world.fake.revoke_tokens();

    let tree = app.tree(&repo_ref(), &world.commit).await.expect("a tree");

    assert_eq!(tree, world.git_listing());
    assert_eq!(world.fake.token_exchanges(), 2);
}

#[tokio::test]
async fn a_key_the_fake_does_not_know_is_refused_and_gives_auth() {
    let world = World::new().await;
    let app = GithubApp::new(GithubAppConfig {
        private_key: Some(SecretString::from(stranger_key())),
        ..world.config()
    })
    .expect("a well-formed key builds");

    let err = app.tree(&repo_ref(), &world.commit).await.unwrap_err();
    assert!(matches!(err, SourceError::Auth(_)), "{err:?}");
    assert!(!err.is_retryable());
    let blobs = app
        .blobs(&repo_ref(), &world.commit, &shas(&world.git_listing()))
        .await;
    assert!(blobs.iter().all(|b| matches!(b, Err(SourceError::Auth(_)))));

    assert_eq!(world.fake.token_exchanges(), 0);
    assert!(world.fake.verified_jwts().is_empty());
    assert_eq!(world.fake.blob_fetches(), 0);
}

#[tokio::test]
async fn an_app_id_the_fake_does_not_know_gives_auth_naming_the_setting() {
    let world = World::new().await;
    let app = GithubApp::new(GithubAppConfig {
        app_id: Some(APP_ID + 1),
        ..world.config()
    })
    .unwrap();

    let err = app
        .branch_head(&repo_ref(), &Branch::parse("main").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, SourceError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("HOOKLOG_GITHUB_APP_ID"), "{err}");
}

#[tokio::test]
async fn a_private_key_that_is_not_pem_is_invalid_and_not_echoed() {
    let err = GithubApp::new(GithubAppConfig {
        app_id: Some(APP_ID),
        private_key: Some(SecretString::from("hunter2-not-a-key")),
        ..GithubAppConfig::default()
    })
    .unwrap_err();

    assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn an_unconfigured_app_gives_the_clear_invalid_error() {
    let app = GithubApp::new(GithubAppConfig::default()).expect("builds without an App");
    let expected = SourceError::Invalid(
        "the GitHub App is not configured: set HOOKLOG_GITHUB_APP_ID and \
         HOOKLOG_GITHUB_APP_PRIVATE_KEY (or HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE)"
            .to_owned(),
    );
    let commit = CommitSha::parse(&"a".repeat(40)).unwrap();

    assert_eq!(app.tree(&repo_ref(), &commit).await, Err(expected.clone()));
    assert_eq!(
        app.branch_head(&repo_ref(), &Branch::parse("main").unwrap())
            .await,
        Err(expected.clone())
    );
    assert_eq!(
        app.blobs(&repo_ref(), &commit, &["b".repeat(40)]).await,
        vec![Err(expected)]
    );
}
