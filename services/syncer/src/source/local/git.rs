//! Running git for `LocalGit`: the safety settings every git runs with (no prompts, allowed
//! transports only, `LC_ALL=C`, no inherited repository variables), the classification of its
//! failures into `SourceError`s, and the redaction of credentials from what it prints.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hooklog_domain::ids::ConnectionId;
use secrecy::ExposeSecret;
use tokio::process::Command;

use super::{LocalGit, Location, SourceError};

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

impl LocalGit {
    /// git with the safety settings, in `dir` (and never in a repository above it) when given.
    pub(super) fn command(&self, dir: Option<&Path>) -> Command {
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
        // Configuration given through the environment is hooklog's alone (`run_as`).
        for var in ["GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS"] {
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

    pub(super) async fn run<I, S>(&self, dir: Option<&Path>, args: I) -> Result<Output, SourceError>
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
}

impl LocalGit {
    /// Runs git as `run` does, sending repository connection `auth`'s token (when given) as an
    /// `Authorization` header to the connections' origin only. The header is handed to git in
    /// its environment, so no argument, URL or config file holds it.
    pub(super) async fn run_as<I, S>(
        &self,
        auth: Option<ConnectionId>,
        dir: Option<&Path>,
        args: I,
    ) -> Result<Output, SourceError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let Some(connection) = auth else {
            return self.run(dir, args).await;
        };
        let connections = self.connections.as_ref();
        let token =
            crate::source::connection_token(connections.map(|c| &c.vault), connection).await?;
        // `locate` gave an `auth` only with `connections` set.
        let origin = connections.map_or("", |c| c.origin.as_str());
        // GitLab takes a token over git-over-HTTPS as the password of any user name.
        let basic = STANDARD.encode(format!("oauth2:{}", token.expose_secret()));
        self.command(dir)
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", format!("http.{origin}/.extraHeader"))
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .args(args)
            .output()
            .await
            .map_err(spawn_error)
    }
}

pub(super) fn spawn_error(err: std::io::Error) -> SourceError {
    if err.kind() == std::io::ErrorKind::NotFound {
        SourceError::Invalid(format!(
            "the git command is not installed (or not on PATH), and git sources need it: {err}"
        ))
    } else {
        SourceError::Unavailable(format!("cannot run git: {err}"))
    }
}

/// A failed read of a repository on this machine (or of a mirror).
pub(super) fn read_error(loc: &Location, what: &str, stderr: &[u8]) -> SourceError {
    let fallback = SourceError::Invalid(format!(
        "git {what} failed in {}: {}",
        loc.shown(),
        clean(stderr)
    ));
    classify_local(loc, stderr, fallback)
}

pub(super) fn classify_local(loc: &Location, stderr: &[u8], fallback: SourceError) -> SourceError {
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
pub(super) fn remote_error(shown: &str, what: &str, stderr: &[u8]) -> SourceError {
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
pub(super) fn clean(stderr: &[u8]) -> String {
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
pub(super) fn redact(text: &str) -> String {
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
        let mut git = LocalGit::new(std::env::temp_dir(), Default::default());
        git.program = "hooklog-no-such-git".into();
        let err = git.run(None, ["--version"]).await.unwrap_err();
        assert!(
            matches!(&err, SourceError::Invalid(m) if m.contains("git command is not installed")),
            "{err:?}"
        );
    }
}
