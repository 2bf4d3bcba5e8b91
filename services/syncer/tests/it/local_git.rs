//! `LocalGit` against real git repositories: read in place by path, and mirrored from a
//! `file://` URL into a temporary cache directory.

use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use hooklog_domain::ids::{
    Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, SourceLocation,
};
use hooklog_domain::source::AllowedSources;
use hooklog_syncer::source::local::LocalGit;
use hooklog_syncer::source::{RepoRef, RepoSource, SourceError, TreeEntry};
use hooklog_syncer::testing::TestRepo;

use crate::support::allowed_sources;

fn repo_ref(source: &str) -> RepoRef {
    RepoRef {
        owner: hooklog_syncer::source::TargetOwner::Installation(InstallationId(1)),
        repository_id: RepositoryId(1),
        repository: RepositoryName::parse("local/test").unwrap(),
        source: Some(SourceLocation::parse(source).unwrap()),
    }
}

fn by_path(repo: &TestRepo) -> RepoRef {
    repo_ref(repo.to_path_buf().to_str().unwrap())
}

fn by_url(repo: &TestRepo) -> RepoRef {
    repo_ref(&format!("file://{}", repo.path().display()))
}

fn branch(name: &str) -> Branch {
    Branch::parse(name).unwrap()
}

fn unknown_commit() -> CommitSha {
    CommitSha::parse(&"0123456789".repeat(4)).unwrap()
}

/// A git source with its own mirror cache, removed on drop.
struct Source {
    git: LocalGit,
    cache: tempfile::TempDir,
}

fn source() -> Source {
    let cache = tempfile::tempdir().unwrap();
    Source {
        git: LocalGit::new(cache.path().join("mirrors"), allowed_sources()),
        cache,
    }
}

/// Every file kind git stores: nested text, binary, executable, symlink, plus a submodule
/// (which is not a file and must not come back).
fn repo_with_every_kind_of_file() -> (TestRepo, CommitSha) {
    let repo = TestRepo::new();
    repo.write("README.md", "# hello\n")
        .write("plugins/p/skills/s/SKILL.md", "---\nname: s\n---\n")
        .write("bin/data.bin", (0..=255u8).rev().collect::<Vec<_>>())
        .write("run.sh", "#!/bin/sh\necho hi\n");
    let run = repo.path().join("run.sh");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("plugins/p/skills/s/SKILL.md", repo.path().join("link")).unwrap();
    let first = repo.commit("files");
    let gitlink = format!("160000,{first},vendor/sub");
    repo.git(&["update-index", "--add", "--cacheinfo", &gitlink]);
    let head = repo.commit("a submodule");
    (repo, head)
}

/// The tree as git itself prints it, for comparison.
fn git_tree(repo: &TestRepo, commit: &CommitSha) -> Vec<TreeEntry> {
    let out = repo.git(&["ls-tree", "-r", "-l", "--full-tree", commit.as_str()]);
    let mut entries: Vec<TreeEntry> = out
        .lines()
        .filter_map(|line| {
            let (meta, path) = line.split_once('\t').unwrap();
            let [mode, kind, sha, size] = meta.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("bad line {line:?}");
            };
            (kind == "blob").then(|| TreeEntry {
                path: path.into(),
                blob_sha: sha.into(),
                size: size.parse().unwrap(),
                mode: mode.into(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

fn shas(tree: &[TreeEntry]) -> Vec<String> {
    tree.iter().map(|e| e.blob_sha.clone()).collect()
}

#[tokio::test]
async fn tree_and_blobs_come_back_exactly_as_git_has_them() {
    let (repo, head) = repo_with_every_kind_of_file();
    let src = source();

    let tree = src.git.tree(&by_path(&repo), &head).await.unwrap();

    assert_eq!(tree, git_tree(&repo, &head));
    let files: Vec<_> = tree
        .iter()
        .map(|e| (e.path.as_str(), e.mode.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("README.md", "100644"),
            ("bin/data.bin", "100644"),
            ("link", "120000"),
            ("plugins/p/skills/s/SKILL.md", "100644"),
            ("run.sh", "100755"),
        ],
        "the submodule is not a file"
    );

    let blobs = src.git.blobs(&by_path(&repo), &head, &shas(&tree)).await;
    let blobs: Vec<Bytes> = blobs.into_iter().map(Result::unwrap).collect();
    for (entry, blob) in tree.iter().zip(&blobs) {
        assert_eq!(blob.len() as u64, entry.size, "{}", entry.path);
        let expected = if entry.mode == "120000" {
            b"plugins/p/skills/s/SKILL.md".to_vec()
        } else {
            std::fs::read(repo.path().join(&entry.path)).unwrap()
        };
        assert_eq!(blob.as_ref(), expected.as_slice(), "{}", entry.path);
    }
}

#[tokio::test]
async fn reading_by_path_and_by_file_url_agree() {
    let (repo, head) = repo_with_every_kind_of_file();
    let src = source();

    let in_place = src.git.tree(&by_path(&repo), &head).await.unwrap();
    let mirrored = src.git.tree(&by_url(&repo), &head).await.unwrap();
    assert_eq!(in_place, mirrored);

    let from_path = src
        .git
        .blobs(&by_path(&repo), &head, &shas(&in_place))
        .await;
    let from_url = src.git.blobs(&by_url(&repo), &head, &shas(&in_place)).await;
    assert_eq!(from_path, from_url);

    let mirrors: Vec<_> = std::fs::read_dir(src.cache.path().join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    assert!(mirrors[0].ends_with(".git"), "{mirrors:?}");
}

#[tokio::test]
async fn a_commit_made_after_the_mirror_was_cloned_is_found_after_a_fetch() {
    let repo = TestRepo::new();
    let first = repo.write("a.md", "one\n").commit("one");
    let src = source();
    assert_eq!(src.git.tree(&by_url(&repo), &first).await.unwrap().len(), 1);

    let second = repo.write("b.md", "two\n").commit("two");
    let tree = src.git.tree(&by_url(&repo), &second).await.unwrap();

    let paths: Vec<_> = tree.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a.md", "b.md"]);
    let blobs = src.git.blobs(&by_url(&repo), &second, &shas(&tree)).await;
    assert_eq!(blobs[1].as_ref().unwrap().as_ref(), b"two\n");
}

#[tokio::test]
async fn a_rename_and_a_removal_show_in_the_next_tree_with_the_same_blobs() {
    let repo = TestRepo::new();
    let first = repo
        .write("old/a.md", "a\n")
        .write("b.md", "b\n")
        .commit("one");
    let src = source();
    let before = src.git.tree(&by_url(&repo), &first).await.unwrap();

    let second = repo
        .rename("old/a.md", "new/a.md")
        .remove("b.md")
        .commit("two");
    let after = src.git.tree(&by_url(&repo), &second).await.unwrap();

    assert_eq!(after.len(), 1);
    assert_eq!(after[0].path, "new/a.md");
    assert_eq!(
        after[0].blob_sha, before[1].blob_sha,
        "a rename keeps the blob"
    );
}

#[tokio::test]
async fn concurrent_first_reads_of_a_url_share_one_mirror() {
    let repo = TestRepo::new();
    let head = repo.write("a.md", "one\n").commit("one");
    let src = source();
    let target = by_url(&repo);
    let main = branch("main");

    let (a, b, c) = tokio::join!(
        src.git.tree(&target, &head),
        src.git.tree(&target, &head),
        src.git.branch_head(&target, &main),
    );

    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(c.unwrap(), Some(head));
}

#[tokio::test]
async fn branch_head_follows_new_commits_and_is_none_for_an_unknown_branch() {
    let repo = TestRepo::new();
    let first = repo.write("a.md", "one\n").commit("one");
    let src = source();

    for target in [by_path(&repo), by_url(&repo)] {
        let head = src.git.branch_head(&target, &branch("main")).await;
        assert_eq!(head.unwrap(), Some(first.clone()));
    }

    let second = repo.write("a.md", "two\n").commit("two");
    repo.git(&["branch", "feature/x"]);
    for target in [by_path(&repo), by_url(&repo)] {
        let main = src.git.branch_head(&target, &branch("main")).await;
        assert_eq!(main.unwrap(), Some(second.clone()));
        let feature = src.git.branch_head(&target, &branch("feature/x")).await;
        assert_eq!(feature.unwrap(), Some(second.clone()));
        let unknown = src.git.branch_head(&target, &branch("nope")).await;
        assert_eq!(unknown.unwrap(), None);
    }

    repo.git(&["branch", "--delete", "feature/x"]);
    let pruned = src
        .git
        .branch_head(&by_url(&repo), &branch("feature/x"))
        .await;
    assert_eq!(pruned.unwrap(), None, "the mirror prunes deleted branches");
}

#[tokio::test]
async fn an_unknown_commit_is_not_found() {
    let repo = TestRepo::new();
    repo.write("a.md", "one\n").commit("one");
    let src = source();

    for target in [by_path(&repo), by_url(&repo)] {
        let err = src.git.tree(&target, &unknown_commit()).await.unwrap_err();
        let SourceError::NotFound(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.starts_with("commit 0123456789"), "{message}");
    }
}

#[tokio::test]
async fn a_blob_that_is_not_there_fails_on_its_own() {
    let repo = TestRepo::new();
    let head = repo.write("a.md", "one\n").commit("one");
    let src = source();
    let tree = src.git.tree(&by_path(&repo), &head).await.unwrap();
    let asked = ["f".repeat(40), tree[0].blob_sha.clone(), "HEAD:a.md".into()];

    let blobs = src.git.blobs(&by_path(&repo), &head, &asked).await;

    assert!(
        matches!(blobs[0], Err(SourceError::NotFound(_))),
        "{blobs:?}"
    );
    assert_eq!(blobs[1].as_ref().unwrap().as_ref(), b"one\n");
    assert!(
        matches!(blobs[2], Err(SourceError::Invalid(_))),
        "{blobs:?}"
    );
}

#[tokio::test]
async fn a_path_that_is_not_a_repository_is_not_found() {
    let plain = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = repo.write("sub/a.md", "one\n").commit("one");
    let src = source();
    let missing = plain.path().join("missing");
    let inside = repo.path().join("sub");
    let targets = [
        repo_ref(plain.path().to_str().unwrap()),
        repo_ref(missing.to_str().unwrap()),
        repo_ref(inside.to_str().unwrap()),
        repo_ref(&format!("file://{}", plain.path().display())),
    ];

    for target in &targets {
        let tree = src.git.tree(target, &head).await;
        assert!(matches!(tree, Err(SourceError::NotFound(_))), "{tree:?}");
        let main = src.git.branch_head(target, &branch("main")).await;
        assert!(matches!(main, Err(SourceError::NotFound(_))), "{main:?}");
        let blobs = src.git.blobs(target, &head, &["a".repeat(40)]).await;
        assert!(
            matches!(blobs[..], [Err(SourceError::NotFound(_))]),
            "{blobs:?}"
        );
    }
}

#[tokio::test]
async fn two_thousand_blobs_come_back_in_order_through_one_batch() {
    let repo = TestRepo::new();
    let content = |i: usize| format!("file {i}\n").repeat(i % 97 + 1);
    for i in 0..2_000 {
        repo.write(&format!("d{}/f{i}.txt", i % 10), content(i));
    }
    let head = repo.commit("many");
    let src = source();
    let tree = src.git.tree(&by_path(&repo), &head).await.unwrap();
    assert_eq!(tree.len(), 2_000);

    let blobs = src.git.blobs(&by_path(&repo), &head, &shas(&tree)).await;

    assert_eq!(blobs.len(), 2_000);
    for (entry, blob) in tree.iter().zip(&blobs) {
        let i: usize = entry
            .path
            .split("/f")
            .nth(1)
            .unwrap()
            .trim_end_matches(".txt")
            .parse()
            .unwrap();
        assert_eq!(
            blob.as_ref().unwrap().as_ref(),
            content(i).as_bytes(),
            "{}",
            entry.path
        );
    }
}

#[tokio::test]
async fn a_source_the_setting_does_not_cover_is_never_read_and_the_refusal_names_it() {
    let repo = TestRepo::new();
    let head = repo.write("a.md", "one\n").commit("one");
    let cache = tempfile::tempdir().unwrap();
    let mirrors = cache.path().join("mirrors");
    let elsewhere = AllowedSources::parse("/srv/git, https://git.example.com/").unwrap();
    for allowed in [AllowedSources::default(), elsewhere] {
        let git = LocalGit::new(mirrors.clone(), allowed);
        for target in [by_path(&repo), by_url(&repo)] {
            let tree = git.tree(&target, &head).await;
            let main = git.branch_head(&target, &branch("main")).await;
            let blobs = git.blobs(&target, &head, &["a".repeat(40)]).await;
            for err in [
                tree.unwrap_err(),
                main.unwrap_err(),
                blobs[0].clone().unwrap_err(),
            ] {
                let SourceError::Invalid(message) = &err else {
                    panic!("{err:?}");
                };
                assert!(
                    message.contains("HOOKLOG_SYNCER_ALLOWED_SOURCES"),
                    "{message}"
                );
                assert!(!err.is_retryable());
            }
        }
    }
    assert!(!mirrors.exists(), "nothing was cloned");
}
