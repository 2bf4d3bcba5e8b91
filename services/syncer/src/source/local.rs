//! `LocalGit`: a `RepoSource` that reads a git repository with the `git` command, for targets
//! whose `source` is a path or a URL (offline use, hosts other than GitHub).
//!
//! A path on this machine (a work tree or a bare repository) is read in place. A `file://` or
//! remote URL is mirrored once into `cache_dir` as a bare clone, fetched again when a commit is
//! missing and before each `branch_head`, one fetch at a time per repository.
//!
//! Every git runs with prompts off, only the file, git, http(s) and ssh transports allowed,
//! `LC_ALL=C` (so its messages can be classified), and without inherited `GIT_DIR`-style
//! variables. URLs are logged and reported with their credentials redacted.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use hooklog_domain::ids::{Branch, CommitSha};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::Command;

use super::{RepoRef, RepoSource, SourceError, TreeEntry};

/// The transports git may use, for clones and fetches (and anything a repository's config says).
const ALLOWED_PROTOCOLS: &str = "file:git:http:https:ssh";
/// Variables that would make git read another repository than the one we point it at.
const REPOSITORY_ENV: [&str; 7] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];
/// At most this many bytes of git's stderr go into an error.
const MAX_STDERR: usize = 1000;

/// Reads targets' git repositories with the `git` command.
#[derive(Debug)]
pub struct LocalGit {
    cache_dir: PathBuf,
    program: OsString,
    /// One clone or fetch at a time per mirror directory.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where a target's repository is read, and how to name it in errors and logs.
enum Location {
    InPlace {
        dir: PathBuf,
        shown: String,
    },
    Mirror {
        url: String,
        dir: PathBuf,
        shown: String,
    },
}

impl Location {
    fn dir(&self) -> &Path {
        match self {
            Self::InPlace { dir, .. } | Self::Mirror { dir, .. } => dir,
        }
    }

    fn shown(&self) -> &str {
        match self {
            Self::InPlace { shown, .. } | Self::Mirror { shown, .. } => shown,
        }
    }
}

impl LocalGit {
    /// `cache_dir` holds the bare mirrors of URL sources; it is created on first use.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            program: "git".into(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn locate(&self, repo: &RepoRef) -> Result<Location, SourceError> {
        let source = repo.source.as_ref().ok_or_else(|| {
            SourceError::Invalid(format!("{} has no git source to read", repo.repository))
        })?;
        let shown = redact(source.as_str());
        Ok(
            if source.is_remote() || source.as_str().starts_with("file://") {
                let dir = self.cache_dir.join(mirror_name(source.as_str()));
                Location::Mirror {
                    url: source.as_str().to_owned(),
                    dir,
                    shown,
                }
            } else {
                Location::InPlace {
                    dir: PathBuf::from(source.as_str()),
                    shown,
                }
            },
        )
    }

    /// git with the safety settings, in `dir` (and never in a repository above it) when given.
    fn command(&self, dir: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-c").arg("protocol.ext.allow=never");
        if let Some(dir) = dir {
            cmd.arg("-C").arg(dir);
            let parent = std::path::absolute(dir)
                .ok()
                .and_then(|dir| dir.parent().map(Path::to_path_buf));
            if let Some(parent) = parent {
                cmd.env("GIT_CEILING_DIRECTORIES", parent);
            }
        }
        for var in REPOSITORY_ENV {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run<I, S>(&self, dir: Option<&Path>, args: I) -> Result<Output, SourceError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(dir)
            .args(args)
            .output()
            .await
            .map_err(spawn_error)
    }

    fn lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(dir.to_path_buf()).or_default().clone()
    }

    /// Clones the mirror when it is not there yet; `true` when it was cloned just now.
    async fn ensure_mirror(&self, loc: &Location) -> Result<bool, SourceError> {
        let Location::Mirror { url, dir, shown } = loc else {
            return Ok(false);
        };
        if tokio::fs::try_exists(dir).await.unwrap_or(false) {
            return Ok(false);
        }
        let lock = self.lock(dir);
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(dir).await.unwrap_or(false) {
            return Ok(false);
        }
        let io = |err: std::io::Error| {
            SourceError::Unavailable(format!("cannot prepare the mirror of {shown}: {err}"))
        };
        tokio::fs::create_dir_all(&self.cache_dir)
            .await
            .map_err(io)?;
        // Clone beside the mirror and rename, so an interrupted clone never looks like a mirror.
        let partial = dir.with_extension("partial");
        if tokio::fs::try_exists(&partial).await.unwrap_or(false) {
            tokio::fs::remove_dir_all(&partial).await.map_err(io)?;
        }
        tracing::info!(source = %shown, mirror = %dir.display(), "cloning a git source");
        let mut args: Vec<OsString> = ["clone", "--bare", "--quiet", "--"].map(Into::into).into();
        args.extend([OsString::from(url), partial.clone().into_os_string()]);
        let out = self.run(None, args).await?;
        if !out.status.success() {
            return Err(remote_error(shown, "clone", &out.stderr));
        }
        tokio::fs::rename(&partial, dir).await.map_err(io)?;
        Ok(true)
    }

    async fn fetch(&self, loc: &Location) -> Result<(), SourceError> {
        let Location::Mirror { dir, shown, .. } = loc else {
            return Ok(());
        };
        let lock = self.lock(dir);
        let _guard = lock.lock().await;
        tracing::debug!(source = %shown, "fetching a git source");
        let refspec = "+refs/heads/*:refs/heads/*";
        let args = ["fetch", "--quiet", "--prune", "origin", refspec];
        let out = self.run(Some(dir), args).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(remote_error(shown, "fetch", &out.stderr))
        }
    }

    /// `refspec` peeled to a commit: `None` when there is no such commit.
    async fn resolve(&self, loc: &Location, refspec: &str) -> Result<Option<String>, SourceError> {
        let args = ["rev-parse", "--verify", "--quiet", refspec];
        let out = self.run(Some(loc.dir()), args).await?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Some(1) if out.stderr.is_empty() => Ok(None),
            _ => Err(read_error(loc, "rev-parse", &out.stderr)),
        }
    }

    async fn has_commit(&self, loc: &Location, commit: &CommitSha) -> Result<bool, SourceError> {
        let found = self.resolve(loc, &format!("{commit}^{{commit}}")).await?;
        Ok(found.is_some())
    }
}

#[async_trait]
impl RepoSource for LocalGit {
    async fn tree(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        let loc = self.locate(repo)?;
        let cloned = self.ensure_mirror(&loc).await?;
        let mut found = self.has_commit(&loc, commit).await?;
        if !found && !cloned && matches!(loc, Location::Mirror { .. }) {
            self.fetch(&loc).await?;
            found = self.has_commit(&loc, commit).await?;
        }
        if !found {
            return Err(SourceError::NotFound(format!(
                "commit {commit} is not in {}",
                loc.shown()
            )));
        }
        let args = ["ls-tree", "-r", "-l", "-z", "--full-tree", commit.as_str()];
        let out = self.run(Some(loc.dir()), args).await?;
        if !out.status.success() {
            return Err(read_error(&loc, "ls-tree", &out.stderr));
        }
        parse_tree(&out.stdout, loc.shown())
    }

    async fn blobs(&self, repo: &RepoRef, blob_shas: &[String]) -> Vec<Result<Bytes, SourceError>> {
        if blob_shas.is_empty() {
            return Vec::new();
        }
        let loc = match self.locate(repo) {
            Ok(loc) => loc,
            Err(err) => return vec![Err(err); blob_shas.len()],
        };
        if let Err(err) = self.ensure_mirror(&loc).await {
            return vec![Err(err); blob_shas.len()];
        }
        self.cat_file(&loc, blob_shas).await
    }

    async fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &Branch,
    ) -> Result<Option<CommitSha>, SourceError> {
        let loc = self.locate(repo)?;
        if !self.ensure_mirror(&loc).await? {
            self.fetch(&loc).await?;
        }
        let head = self
            .resolve(&loc, &format!("refs/heads/{branch}^{{commit}}"))
            .await?;
        head.map(|sha| {
            CommitSha::parse(&sha).map_err(|err| {
                SourceError::Invalid(format!("git rev-parse answered {err} for {branch}"))
            })
        })
        .transpose()
    }
}

impl LocalGit {
    /// One `git cat-file --batch` for all of `shas`, written and read at the same time so no
    /// pipe buffer fills up; each result stands on its own.
    async fn cat_file(&self, loc: &Location, shas: &[String]) -> Vec<Result<Bytes, SourceError>> {
        let mut results: Vec<Option<Result<Bytes, SourceError>>> = shas
            .iter()
            .map(|sha| {
                (!is_object_id(sha))
                    .then(|| Err(SourceError::Invalid(format!("{sha:?} is not a blob SHA"))))
            })
            .collect();
        let queries: Vec<usize> = (0..shas.len()).filter(|&i| results[i].is_none()).collect();
        if queries.is_empty() {
            return results.into_iter().flatten().collect();
        }
        let mut cmd = self.command(Some(loc.dir()));
        cmd.args(["cat-file", "--batch"]).stdin(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => return vec![Err(spawn_error(err)); shas.len()],
        };
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("stdin, stdout and stderr are piped")
        };

        let write = async {
            let mut stdin = BufWriter::new(stdin);
            for &i in &queries {
                stdin.write_all(shas[i].as_bytes()).await?;
                stdin.write_all(b"\n").await?;
            }
            stdin.shutdown().await
        };
        let read = async {
            let mut stdout = BufReader::new(stdout);
            for &i in &queries {
                results[i] = Some(read_object(&mut stdout, &shas[i], loc.shown()).await?);
            }
            Ok::<_, String>(())
        };
        let errors = async {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            buf
        };
        let (written, read, stderr) = tokio::join!(write, read, errors);
        let status = child.wait().await;

        if let Err(reason) = read {
            let written = written
                .err()
                .map(|e| format!(" (writing: {e})"))
                .unwrap_or_default();
            let status = status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let err = classify_local(
                loc,
                &stderr,
                SourceError::Unavailable(format!(
                    "git cat-file stopped in {}: {reason}{written}, {status}: {}",
                    loc.shown(),
                    clean(&stderr)
                )),
            );
            for slot in results.iter_mut().filter(|slot| slot.is_none()) {
                *slot = Some(Err(err.clone()));
            }
        }
        results.into_iter().flatten().collect()
    }
}

/// One answer of `git cat-file --batch`: `<sha> blob <size>\n<bytes>\n` or `<sha> missing\n`.
/// The outer error means the stream is unusable from here on.
async fn read_object(
    stdout: &mut BufReader<tokio::process::ChildStdout>,
    sha: &str,
    shown: &str,
) -> Result<Result<Bytes, SourceError>, String> {
    let mut header = String::new();
    let n = stdout
        .read_line(&mut header)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("it ended early".into());
    }
    let fields: Vec<&str> = header.trim_end().split(' ').collect();
    match fields[..] {
        [got, "missing"] if got == sha => Ok(Err(SourceError::NotFound(format!(
            "blob {sha} is not in {shown}"
        )))),
        [got, kind, size] if got == sha => {
            let size: usize = size.parse().map_err(|_| format!("bad header {header:?}"))?;
            let mut content = vec![0; size + 1];
            stdout
                .read_exact(&mut content)
                .await
                .map_err(|e| e.to_string())?;
            content.pop();
            Ok(match kind {
                "blob" => Ok(Bytes::from(content)),
                _ => Err(SourceError::Invalid(format!(
                    "{sha} is a {kind}, not a blob"
                ))),
            })
        }
        _ => Err(format!("unexpected answer {header:?} for {sha}")),
    }
}

/// Parses `git ls-tree -r -l -z`: `<mode> <type> <sha> <size>\t<path>\0`, keeping blobs
/// (submodules are `commit` entries), in path order.
fn parse_tree(out: &[u8], shown: &str) -> Result<Vec<TreeEntry>, SourceError> {
    let mut entries = Vec::new();
    for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || SourceError::Invalid(format!("git ls-tree printed a bad line for {shown}"));
        let tab = record.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
        let meta = std::str::from_utf8(&record[..tab]).map_err(|_| bad())?;
        let [mode, kind, sha, size] = meta.split_whitespace().collect::<Vec<_>>()[..] else {
            return Err(bad());
        };
        if kind != "blob" {
            continue;
        }
        let Ok(path) = std::str::from_utf8(&record[tab + 1..]) else {
            let path = String::from_utf8_lossy(&record[tab + 1..]);
            tracing::warn!(source = %shown, %path, "skipping a file whose path is not UTF-8");
            continue;
        };
        entries.push(TreeEntry {
            path: path.to_owned(),
            blob_sha: sha.to_owned(),
            size: size.parse().map_err(|_| bad())?,
            mode: mode.to_owned(),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

fn spawn_error(err: std::io::Error) -> SourceError {
    if err.kind() == std::io::ErrorKind::NotFound {
        SourceError::Invalid(format!(
            "the git command is not installed (or not on PATH), and git sources need it: {err}"
        ))
    } else {
        SourceError::Unavailable(format!("cannot run git: {err}"))
    }
}

/// A failed read of a repository on this machine (or of a mirror).
fn read_error(loc: &Location, what: &str, stderr: &[u8]) -> SourceError {
    let fallback = SourceError::Invalid(format!(
        "git {what} failed in {}: {}",
        loc.shown(),
        clean(stderr)
    ));
    classify_local(loc, stderr, fallback)
}

fn classify_local(loc: &Location, stderr: &[u8], fallback: SourceError) -> SourceError {
    let text = String::from_utf8_lossy(stderr);
    if text.contains("not a git repository") || text.contains("cannot change to") {
        SourceError::NotFound(format!(
            "{} is not a git repository: {}",
            loc.shown(),
            clean(stderr)
        ))
    } else {
        fallback
    }
}

/// A failed clone or fetch: missing repositories and refused credentials are told apart from
/// network trouble, which may pass.
fn remote_error(shown: &str, what: &str, stderr: &[u8]) -> SourceError {
    let message = format!("git {what} of {shown} failed: {}", clean(stderr));
    let lower = String::from_utf8_lossy(stderr).to_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if any(&[
        "does not appear to be a git repository",
        "repository not found",
        "returned error: 404",
    ]) {
        SourceError::NotFound(message)
    } else if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied",
        "returned error: 401",
        "returned error: 403",
    ]) {
        SourceError::Auth(message)
    } else {
        SourceError::Unavailable(message)
    }
}

/// git's stderr for an error: trimmed, bounded, credentials redacted.
fn clean(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let mut end = text.len().min(MAX_STDERR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let ellipsis = if end < text.len() { "…" } else { "" };
    format!("{}{ellipsis}", redact(&text[..end]))
}

/// Replaces the `user:pass@` of every `scheme://user:pass@host` in `text` with `***@`.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                rest = &tail[user_end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `<readable part of the URL>-<FNV-1a of the whole URL>.git`: stable across runs and builds,
/// distinct per URL (credentials included), and free of credentials and path separators.
fn mirror_name(url: &str) -> String {
    let hash = url.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let readable = url.split_once("://").map_or(url, |(_, rest)| {
        let authority = rest.find('/').unwrap_or(rest.len());
        rest[..authority]
            .rfind('@')
            .map_or(rest, |at| &rest[at + 1..])
    });
    let readable = readable.trim_end_matches('/').trim_end_matches(".git");
    let readable: String = readable
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    let start = readable.len().saturating_sub(60);
    let readable = readable[start..].trim_start_matches(['.', '_']);
    format!("{readable}-{hash:016x}.git")
}

/// A full object id: 40 or 64 lowercase hex digits (anything else could be a revision
/// expression, or break the `cat-file --batch` protocol).
fn is_object_id(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_from_urls_and_messages() {
        assert_eq!(
            redact("https://user:pa@ss@host.example/o/r.git"),
            "https://***@host.example/o/r.git"
        );
        assert_eq!(redact("https://host/o/r"), "https://host/o/r");
        assert_eq!(redact("git@host:o/r.git"), "git@host:o/r.git");
        assert_eq!(
            redact("fatal: unable to access 'https://tok@h/x/': nope; see http://a@b"),
            "fatal: unable to access 'https://***@h/x/': nope; see http://***@b"
        );
    }

    #[test]
    fn mirror_names_are_stable_distinct_and_free_of_credentials() {
        let name = mirror_name("https://user:secret@git.example.com/org/repo.git");
        assert!(name.starts_with("git.example.com_org_repo-"), "{name}");
        assert!(name.ends_with(".git") && !name.contains("secret"), "{name}");
        assert_eq!(
            name,
            mirror_name("https://user:secret@git.example.com/org/repo.git")
        );
        assert_ne!(name, mirror_name("https://git.example.com/org/repo.git"));
        assert!(!mirror_name("file:///../../etc").contains('/'));
        assert!(!mirror_name("file:///..").starts_with('.'));
    }

    #[test]
    fn ls_tree_output_keeps_blobs_in_path_order() {
        let sha = "a".repeat(40);
        let out = format!(
            "100644 blob {sha}      12\tz.md\0160000 commit {sha}       -\tsub\0\
             120000 blob {sha}       4\ta/link\0100755 blob {sha} 1234567\ta b/run.sh\0"
        );
        let entries = parse_tree(out.as_bytes(), "repo").unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode.as_str(), e.size))
            .collect();
        assert_eq!(
            got,
            [
                ("a b/run.sh", "100755", 1_234_567),
                ("a/link", "120000", 4),
                ("z.md", "100644", 12)
            ]
        );
    }

    #[test]
    fn clone_failures_are_classified() {
        let err = remote_error(
            "u",
            "clone",
            b"fatal: '/x' does not appear to be a git repository",
        );
        assert!(matches!(err, SourceError::NotFound(_)), "{err:?}");
        let err = remote_error(
            "u",
            "clone",
            b"fatal: Authentication failed for 'https://h/'",
        );
        assert!(matches!(err, SourceError::Auth(_)), "{err:?}");
        let err = remote_error(
            "u",
            "fetch",
            b"fatal: unable to access: Could not resolve host",
        );
        assert!(err.is_retryable(), "{err:?}");
    }

    #[test]
    fn long_stderr_is_trimmed_and_bounded() {
        let long = format!("  {}  ", "é".repeat(MAX_STDERR));
        let cleaned = clean(long.as_bytes());
        assert!(cleaned.len() <= MAX_STDERR + "…".len() && cleaned.ends_with('…'));
        assert_eq!(clean(b"  fatal: x\n"), "fatal: x");
    }

    #[tokio::test]
    async fn a_missing_git_command_is_reported_as_not_installed() {
        let mut git = LocalGit::new(std::env::temp_dir());
        git.program = "hooklog-no-such-git".into();
        let err = git.run(None, ["--version"]).await.unwrap_err();
        assert!(
            matches!(&err, SourceError::Invalid(m) if m.contains("git command is not installed")),
            "{err:?}"
        );
    }
}
