//! The `GithubApp` source over its tarball threshold: one archive download instead of a blobs-API
//! call per blob, contents byte for byte and in order, the installation token kept from the
//! download host, the request helper's rate-limit and token handling applied to the tarball, and
//! the blobs API for whatever the archive does not give.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use hooklog_domain::ids::CommitSha;
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use hooklog_syncer::source::{RepoSource, SourceError, TreeEntry};
use hooklog_syncer::testing::{FakeGithub, Fault, TestRepo};

use crate::github::{assert_contents, repo_ref, shas, unwrap_all};

/// A first sync's worth of files: 300, in nested directories, with a binary file, an executable,
/// an empty file, two files with the same content (one blob asked for twice), a symlink and a
/// symlink whose target is too long for a classic tar header.
struct Big {
    repo: TestRepo,
    commit: CommitSha,
    /// Path to the bytes git stores for it.
    files: BTreeMap<String, Vec<u8>>,
    fake: FakeGithub,
}

impl Big {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// The repository, with `more` written before the commit.
    async fn with(more: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Self {
        let mut files = BTreeMap::new();
        for i in 0..292 {
            let path = format!("plugins/p{}/skills/s{}/n{i}/SKILL.md", i % 7, i % 13);
            files.insert(
                path,
                format!("---\nname: s{i}\n---\n{}\n", "x".repeat(i)).into(),
            );
        }
        let binary: Vec<u8> = (0..=255u8).rev().cycle().take(5000).collect();
        files.insert("plugins/p0/assets/logo.png".into(), binary);
        files.insert("bin/tool".into(), b"#!/bin/sh\necho tool\n".to_vec());
        files.insert("empty.txt".into(), Vec::new());
        files.insert("copy/a.md".into(), b"same\n".to_vec());
        files.insert("copy/b.md".into(), b"same\n".to_vec());
        files.insert("README.md".into(), b"# plugins\n".to_vec());
        more(&mut files);
        let repo = TestRepo::new();
        for (path, content) in &files {
            repo.write(path, content);
        }
        let tool = repo.path().join("bin/tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir_all(repo.path().join("links")).expect("mkdir");
        let far = format!("../{}missing.md", "a-rather-long-directory-name/".repeat(6));
        for (name, target) in [("readme", "../README.md"), ("far", far.as_str())] {
            std::os::unix::fs::symlink(target, repo.path().join("links").join(name))
                .expect("symlink");
            files.insert(format!("links/{name}"), target.as_bytes().to_vec());
        }
        let commit = repo.commit("plugins");
        let fake = FakeGithub::start_for(&repo).await;
        Self {
            repo,
            commit,
            files,
            fake,
        }
    }

    fn app(&self) -> GithubApp {
        self.fake.app()
    }

    async fn tree(&self) -> Vec<TreeEntry> {
        self.app()
            .tree(&repo_ref(), &self.commit)
            .await
            .expect("a tree")
    }

    /// Each entry's content is the file's, byte for byte.
    fn assert_contents(&self, tree: &[TreeEntry], blobs: &[bytes::Bytes]) {
        assert_contents(&self.files, tree, blobs);
    }
}

#[tokio::test]
async fn over_the_threshold_one_tarball_download_gives_every_blob_byte_for_byte_in_order() {
    let big = Big::new().await;
    let tree = big.tree().await;
    assert_eq!(tree.len(), 300);
    let mode = |path: &str| tree.iter().find(|e| e.path == path).unwrap().mode.clone();
    assert_eq!(mode("bin/tool"), "100755");
    assert_eq!(mode("links/far"), "120000");

    let blobs = unwrap_all(
        big.app()
            .blobs(&repo_ref(), &big.commit, &shas(&tree))
            .await,
    );

    big.assert_contents(&tree, &blobs);
    assert_eq!(big.fake.tarball_fetches(), 1);
    assert_eq!(big.fake.archive_downloads(), 1);
    assert_eq!(big.fake.blob_fetches(), 0);
    assert_eq!(
        big.fake.archive_downloads_with_credentials(),
        0,
        "the installation token never reaches the download host"
    );
}

#[tokio::test]
async fn at_the_threshold_the_blobs_api_is_used_and_one_more_blob_takes_the_archive() {
    assert_eq!(GithubAppConfig::default().tarball_threshold, 100);
    let big = Big::new().await;
    let app = big.app();
    let tree = big.tree().await;
    let hundred = &tree[..100];

    let blobs = unwrap_all(app.blobs(&repo_ref(), &big.commit, &shas(hundred)).await);

    big.assert_contents(hundred, &blobs);
    assert_eq!(big.fake.tarball_fetches(), 0);
    assert_eq!(big.fake.blob_fetches(), 100);

    let more = &tree[..101];
    let blobs = unwrap_all(app.blobs(&repo_ref(), &big.commit, &shas(more)).await);

    big.assert_contents(more, &blobs);
    assert_eq!(big.fake.tarball_fetches(), 1);
    assert_eq!(big.fake.blob_fetches(), 100, "none more");
}

#[tokio::test]
async fn an_archive_that_keeps_failing_falls_back_to_the_blobs_api_and_returns_everything() {
    let big = Big::new().await;
    let app = GithubApp::new(GithubAppConfig {
        retries: 1,
        ..big.fake.app_config()
    })
    .unwrap();
    let tree = big.tree().await;
    big.fake.fail_next("/tarball/", Fault::BadGateway, 2);

    let blobs = unwrap_all(app.blobs(&repo_ref(), &big.commit, &shas(&tree)).await);

    big.assert_contents(&tree, &blobs);
    assert_eq!(big.fake.tarball_fetches(), 0, "every try met the 502");
    assert_eq!(big.fake.archive_downloads(), 0);
    assert_eq!(big.fake.blob_fetches(), tree.len());
}

#[tokio::test]
async fn blobs_the_archive_leaves_out_or_rewrites_come_from_the_blobs_api() {
    let big = Big::with(|files| {
        let attributes =
            "private/** export-ignore\nversion.txt export-subst\n*.crlf text eol=crlf\n";
        files.insert(".gitattributes".into(), attributes.into());
        files.insert("private/secret.md".into(), b"not exported\n".to_vec());
        files.insert("version.txt".into(), b"$Format:%H$\n".to_vec());
        files.insert("lines.crlf".into(), b"one\ntwo\n".to_vec());
    })
    .await;
    let tree = big.tree().await;
    let missing = "0".repeat(39) + "1";
    let mut asked = shas(&tree);
    asked.push(missing.clone());

    let mut blobs = big.app().blobs(&repo_ref(), &big.commit, &asked).await;

    let last = blobs.pop().expect("one per SHA asked");
    assert!(
        matches!(&last, Err(SourceError::NotFound(m)) if m.contains(&missing)),
        "{last:?}"
    );
    big.assert_contents(&tree, &unwrap_all(blobs));
    assert_eq!(big.fake.tarball_fetches(), 1);
    let sha_of = |path: &str| big.repo.git(&["rev-parse", &format!("HEAD:{path}")]);
    for path in ["private/secret.md", "version.txt", "lines.crlf"] {
        assert_eq!(big.fake.blob_fetches_of(sha_of(path).trim()), 1, "{path}");
    }
    assert_eq!(big.fake.blob_fetches_of(&missing), 1);
    assert_eq!(big.fake.blob_fetches(), 4, "only those");
}

#[tokio::test]
async fn a_revoked_token_is_exchanged_again_for_the_tarball_and_the_archive_is_used() {
    let big = Big::new().await;
    let app = big.app();
    let tree = app.tree(&repo_ref(), &big.commit).await.expect("a tree");
    big.fake.revoke_tokens();

    let blobs = unwrap_all(app.blobs(&repo_ref(), &big.commit, &shas(&tree)).await);

    big.assert_contents(&tree, &blobs);
    assert_eq!(big.fake.token_exchanges(), 2);
    assert_eq!(big.fake.tarball_fetches(), 1);
    assert_eq!(big.fake.blob_fetches(), 0);
}

#[tokio::test]
async fn a_429_on_the_tarball_is_waited_out_and_the_archive_is_used() {
    let big = Big::new().await;
    let app = big.app();
    let tree = big.tree().await;
    big.fake.fail_next(
        "/tarball/",
        Fault::TooMany429 {
            retry_after_secs: 1,
        },
        1,
    );

    let started = Instant::now();
    let blobs = unwrap_all(app.blobs(&repo_ref(), &big.commit, &shas(&tree)).await);

    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    big.assert_contents(&tree, &blobs);
    assert_eq!(big.fake.tarball_fetches(), 1);
    assert_eq!(big.fake.blob_fetches(), 0);
}
