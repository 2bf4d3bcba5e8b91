//! The plan of one sync: the diff of a commit's tree against the target's last synced snapshot
//! (pure). It says which blobs to fetch (created or updated files), which synced paths to
//! tombstone, how many paths need nothing, and which files are too large to sync.
//!
//! A rename is a delete of the old path plus a create of the new one: the snapshot is keyed by
//! path, not by blob.

use std::collections::{BTreeMap, BTreeSet};

use hooklog_domain::connector_target::FileFailure;

use crate::filters::PathMatcher;
use crate::source::TreeEntry;

/// A path's state as of the target's last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub blob_sha: String,
    /// A tombstone: the path was synced once and deleted since.
    pub deleted: bool,
}

/// Path -> last synced state.
pub type Snapshot = BTreeMap<String, SnapshotEntry>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The path is not live in the snapshot (never synced, or tombstoned).
    Create,
    /// The path is live in the snapshot with another blob.
    Update,
}

/// A blob to fetch and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub entry: TreeEntry,
    pub change: Change,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Created and updated files, in path order.
    pub fetch: Vec<Fetch>,
    /// Live snapshot paths to tombstone (gone from the tree, or filtered out now), in path order.
    pub delete: Vec<String>,
    /// Tree paths that need nothing: unchanged, or filtered out.
    pub skipped: u64,
    /// Files to create or update that are over the size limit; neither fetched nor counted as
    /// created or updated, and their previous snapshot entry (if any) is left as it was.
    pub too_large: Vec<FileFailure>,
}

/// Diffs `tree` against `snapshot`, keeping the tree paths `matcher` accepts and fetching no file
/// over `max_file_size` bytes.
pub fn plan(
    snapshot: &Snapshot,
    tree: &[TreeEntry],
    matcher: &PathMatcher,
    max_file_size: u64,
) -> Plan {
    let mut sorted: Vec<&TreeEntry> = tree.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let mut plan = Plan::default();
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    for entry in sorted {
        if !matcher.matches(&entry.path) {
            plan.skipped += 1;
            continue;
        }
        wanted.insert(&entry.path);
        let change = match snapshot.get(&entry.path) {
            Some(last) if !last.deleted && last.blob_sha == entry.blob_sha => {
                plan.skipped += 1;
                continue;
            }
            Some(last) if !last.deleted => Change::Update,
            _ => Change::Create,
        };
        if entry.size > max_file_size {
            plan.too_large.push(FileFailure {
                path: entry.path.clone(),
                reason: format!(
                    "too large: {} bytes, the limit is {max_file_size}",
                    entry.size
                ),
            });
            continue;
        }
        plan.fetch.push(Fetch {
            entry: entry.clone(),
            change,
        });
    }

    plan.delete = snapshot
        .iter()
        .filter(|(path, last)| !last.deleted && !wanted.contains(path.as_str()))
        .map(|(path, _)| path.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use hooklog_domain::connector_target::PathFilters;

    use super::*;

    const LIMIT: u64 = 1_048_576;

    fn entry(path: &str, sha: &str, size: u64) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            blob_sha: sha.repeat(40),
            size,
            mode: "100644".into(),
        }
    }

    fn snapshot(entries: &[(&str, &str, bool)]) -> Snapshot {
        entries
            .iter()
            .map(|(path, sha, deleted)| {
                (
                    path.to_string(),
                    SnapshotEntry {
                        blob_sha: sha.repeat(40),
                        deleted: *deleted,
                    },
                )
            })
            .collect()
    }

    fn only(include: &[&str]) -> PathMatcher {
        PathMatcher::new(&PathFilters {
            include: include.iter().map(|g| g.to_string()).collect(),
            exclude: vec![],
        })
        .expect("valid globs")
    }

    fn fetched(plan: &Plan) -> Vec<(&str, Change)> {
        plan.fetch
            .iter()
            .map(|f| (f.entry.path.as_str(), f.change))
            .collect()
    }

    #[test]
    fn a_first_sync_creates_every_file_in_path_order() {
        let tree = [entry("b.md", "b", 1), entry("a/x.md", "a", 2)];
        let plan = plan(&Snapshot::new(), &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(
            fetched(&plan),
            [("a/x.md", Change::Create), ("b.md", Change::Create)]
        );
        assert_eq!(plan.fetch[0].entry, tree[1]);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.skipped, 0);
        assert!(plan.too_large.is_empty());
    }

    #[test]
    fn an_unchanged_blob_is_skipped_and_a_changed_one_is_updated() {
        let last = snapshot(&[("same.md", "1", false), ("changed.md", "2", false)]);
        let tree = [entry("same.md", "1", 1), entry("changed.md", "3", 1)];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(fetched(&plan), [("changed.md", Change::Update)]);
        assert_eq!(plan.skipped, 1);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn a_path_gone_from_the_tree_is_deleted() {
        let last = snapshot(&[("kept.md", "1", false), ("gone.md", "2", false)]);
        let tree = [entry("kept.md", "1", 1)];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(plan.delete, ["gone.md"]);
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.skipped, 1);
    }

    #[test]
    fn a_tombstoned_path_back_in_the_tree_is_created_even_with_its_old_blob() {
        let last = snapshot(&[("back.md", "1", true)]);
        let tree = [entry("back.md", "1", 1)];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(fetched(&plan), [("back.md", Change::Create)]);
        assert_eq!(plan.skipped, 0);
    }

    #[test]
    fn a_tombstoned_path_still_gone_is_not_deleted_again() {
        let last = snapshot(&[("old.md", "1", true)]);
        let plan = plan(&last, &[], &PathMatcher::all(), LIMIT);
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_rename_is_a_delete_plus_a_create() {
        let last = snapshot(&[("old/name.md", "1", false)]);
        let tree = [entry("new/name.md", "1", 1)];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(fetched(&plan), [("new/name.md", Change::Create)]);
        assert_eq!(plan.delete, ["old/name.md"]);
    }

    #[test]
    fn a_filtered_out_tree_path_is_skipped_and_not_fetched() {
        let tree = [entry("skills/a.md", "1", 1), entry("README.md", "2", 1)];
        let plan = plan(&Snapshot::new(), &tree, &only(&["skills/**"]), LIMIT);
        assert_eq!(fetched(&plan), [("skills/a.md", Change::Create)]);
        assert_eq!(plan.skipped, 1);
    }

    #[test]
    fn a_live_path_now_filtered_out_is_deleted() {
        let last = snapshot(&[("skills/a.md", "1", false), ("README.md", "2", false)]);
        let tree = [entry("skills/a.md", "1", 1), entry("README.md", "2", 1)];
        let plan = plan(&last, &tree, &only(&["skills/**"]), LIMIT);
        assert_eq!(plan.delete, ["README.md"]);
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.skipped, 2, "one unchanged, one filtered out");
    }

    #[test]
    fn a_file_over_the_limit_is_too_large_and_not_fetched() {
        let last = snapshot(&[("big-update.bin", "1", false)]);
        let tree = [
            entry("big-new.bin", "2", 2_097_152),
            entry("big-update.bin", "3", LIMIT + 1),
            entry("exactly.bin", "4", LIMIT),
        ];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert_eq!(fetched(&plan), [("exactly.bin", Change::Create)]);
        assert_eq!(
            plan.too_large,
            [
                FileFailure {
                    path: "big-new.bin".into(),
                    reason: "too large: 2097152 bytes, the limit is 1048576".into(),
                },
                FileFailure {
                    path: "big-update.bin".into(),
                    reason: "too large: 1048577 bytes, the limit is 1048576".into(),
                },
            ]
        );
        assert!(plan.delete.is_empty(), "a too-large file is not deleted");
        assert_eq!(plan.skipped, 0);
    }

    #[test]
    fn an_unchanged_file_over_the_limit_is_skipped_not_failed() {
        let last = snapshot(&[("big.bin", "1", false)]);
        let tree = [entry("big.bin", "1", LIMIT * 2)];
        let plan = plan(&last, &tree, &PathMatcher::all(), LIMIT);
        assert!(plan.too_large.is_empty());
        assert_eq!(plan.skipped, 1);
    }

    #[test]
    fn a_mixed_diff_counts_every_rule_once() {
        let last = snapshot(&[
            ("a.md", "1", false),
            ("b.md", "2", false),
            ("c.md", "3", false),
            ("d.md", "4", true),
            ("e.txt", "5", false),
        ]);
        let tree = [
            entry("a.md", "1", 1),
            entry("b.md", "9", 1),
            entry("d.md", "4", 1),
            entry("e.txt", "5", 1),
            entry("f.md", "6", 1),
            entry("g.md", "7", LIMIT + 1),
        ];
        let plan = plan(&last, &tree, &only(&["*.md"]), LIMIT);
        assert_eq!(
            fetched(&plan),
            [
                ("b.md", Change::Update),
                ("d.md", Change::Create),
                ("f.md", Change::Create),
            ]
        );
        assert_eq!(plan.delete, ["c.md", "e.txt"]);
        assert_eq!(plan.skipped, 2, "a.md unchanged, e.txt filtered out");
        assert_eq!(plan.too_large.len(), 1);
        assert_eq!(plan.too_large[0].path, "g.md");
    }
}
