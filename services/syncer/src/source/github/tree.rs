//! A commit's tree through the git trees API: one recursive listing, or, when GitHub truncates it
//! (over 100,000 entries or 7 MB), a walk of the tree level by level with non-recursive listings.

use futures::stream::{self, StreamExt, TryStreamExt};
use hooklog_domain::ids::CommitSha;
use reqwest::StatusCode;
use serde::Deserialize;

use super::path::{object_sha, repo_path};
use super::GithubApp;
use crate::source::{RepoRef, SourceError, TreeEntry};

/// `GET /repos/{owner}/{repo}/git/trees/{sha}`, as GitHub answers it.
#[derive(Debug, Deserialize)]
struct TreeAnswer {
    tree: Vec<Item>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct Item {
    path: String,
    mode: String,
    /// `blob`, `tree`, or `commit` (a submodule).
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    size: Option<u64>,
}

/// What a listing holds, split into files kept and subtrees still to read.
#[derive(Debug, Default, PartialEq)]
struct Level {
    files: Vec<TreeEntry>,
    subtrees: Vec<(String, String)>,
}

impl GithubApp {
    pub(super) async fn fetch_tree(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        let base = repo_path(repo)?;
        let what = format!("commit {commit} of {}", repo.repository);
        let listing = self.list(repo, &base, commit.as_str(), true, &what).await?;
        let mut files = if listing.truncated {
            tracing::info!("GitHub truncated the recursive tree; walking it level by level");
            self.walk(repo, &base, commit.as_str(), &what).await?
        } else {
            split("", listing.tree, &what)?.files
        };
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Every file under the tree `root`, one listing per directory, `concurrency` at a time.
    async fn walk(
        &self,
        repo: &RepoRef,
        base: &str,
        root: &str,
        what: &str,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        let mut files = Vec::new();
        let mut frontier = vec![(String::new(), root.to_owned())];
        while !frontier.is_empty() {
            let levels: Vec<Level> = stream::iter(frontier)
                .map(|(prefix, sha)| async move {
                    let listing = self.list(repo, base, &sha, false, what).await?;
                    if listing.truncated {
                        return Err(SourceError::Invalid(format!(
                            "{what}: GitHub truncated even the listing of directory {prefix:?}"
                        )));
                    }
                    split(&prefix, listing.tree, what)
                })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            frontier = Vec::new();
            for level in levels {
                files.extend(level.files);
                frontier.extend(level.subtrees);
            }
        }
        Ok(files)
    }

    /// One listing of the tree (or commit) `sha`.
    async fn list(
        &self,
        repo: &RepoRef,
        base: &str,
        sha: &str,
        recursive: bool,
        what: &str,
    ) -> Result<TreeAnswer, SourceError> {
        let query = if recursive { "?recursive=1" } else { "" };
        let path = format!("{base}/git/trees/{}{query}", object_sha(sha)?);
        let answer = self.get(repo.owner, &path).await?;
        match answer.status {
            StatusCode::OK => answer.json(what),
            // 409: the repository is empty; 422: GitHub could not resolve the SHA.
            StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => Err(
                SourceError::NotFound(format!("{what}: {}", answer.describe())),
            ),
            _ => Err(answer.error(what)),
        }
    }
}

/// Sorts a listing's items, paths under `prefix`: blobs become entries, trees are to be walked,
/// submodules are left out.
fn split(prefix: &str, items: Vec<Item>, what: &str) -> Result<Level, SourceError> {
    let mut level = Level::default();
    for item in items {
        let path = match prefix {
            "" => item.path,
            _ => format!("{prefix}/{}", item.path),
        };
        match item.kind.as_str() {
            "blob" => {
                let size = item.size.ok_or_else(|| {
                    SourceError::Invalid(format!("{what}: GitHub gave no size for {path:?}"))
                })?;
                level.files.push(TreeEntry {
                    path,
                    blob_sha: item.sha,
                    size,
                    mode: item.mode,
                });
            }
            "tree" => level.subtrees.push((path, item.sha)),
            _ => {}
        }
    }
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str, kind: &str, size: Option<u64>) -> Item {
        Item {
            path: path.to_owned(),
            mode: match kind {
                "tree" => "040000",
                "commit" => "160000",
                _ => "100644",
            }
            .to_owned(),
            kind: kind.to_owned(),
            sha: "a".repeat(40),
            size,
        }
    }

    #[test]
    fn blobs_are_kept_under_their_prefix_trees_are_walked_and_submodules_left_out() {
        let items = vec![
            item("README.md", "blob", Some(5)),
            item("docs", "tree", None),
            item("vendor", "commit", None),
        ];
        let level = split("plugins/x", items, "test").unwrap();
        assert_eq!(
            level.files,
            vec![TreeEntry {
                path: "plugins/x/README.md".to_owned(),
                blob_sha: "a".repeat(40),
                size: 5,
                mode: "100644".to_owned(),
            }]
        );
        assert_eq!(
            level.subtrees,
            vec![("plugins/x/docs".to_owned(), "a".repeat(40))]
        );
    }

    #[test]
    fn a_blob_without_a_size_is_invalid() {
        let err = split("", vec![item("a", "blob", None)], "test").unwrap_err();
        assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn github_tree_answers_parse_with_truncated_defaulting_to_false() {
        let answer: TreeAnswer = serde_json::from_str(
            r#"{"sha":"x","url":"u","tree":[{"path":"a","mode":"100644","type":"blob",
                "sha":"s","size":1,"url":"u"}]}"#,
        )
        .unwrap();
        assert!(!answer.truncated);
        assert_eq!(answer.tree.len(), 1);
    }
}
