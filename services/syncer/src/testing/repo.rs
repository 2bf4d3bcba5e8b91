//! Real git repositories built by the tests, with the `git` command: write files, commit, and
//! read back the commit SHA.

use std::path::{Path, PathBuf};
use std::process::Command;

use hooklog_domain::ids::CommitSha;

/// A git repository (with a work tree) in a temporary directory, removed on drop.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    /// An empty repository whose branch is `main`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Self { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.git(&["config", "user.name", "hooklog tests"]);
        repo.git(&["config", "user.email", "tests@hooklog.invalid"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` at `path` (directories created), without committing.
    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Self {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
        self
    }

    /// Removes `path` from the work tree, without committing.
    pub fn remove(&self, path: &str) -> &Self {
        self.git(&["rm", "--quiet", path]);
        self
    }

    /// Renames `from` to `to`, without committing.
    pub fn rename(&self, from: &str, to: &str) -> &Self {
        let full = self.dir.path().join(to);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
        self.git(&["mv", from, to]);
        self
    }

    /// Commits everything in the work tree and returns the new head.
    pub fn commit(&self, message: &str) -> CommitSha {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> CommitSha {
        CommitSha::parse(self.git(&["rev-parse", "HEAD"]).trim()).expect("a commit SHA")
    }

    /// Runs git in the repository and returns its standard output; panics when git fails.
    pub fn git(&self, args: &[&str]) -> String {
        git(self.dir.path(), args)
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs git in `dir` and returns its standard output; panics when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
