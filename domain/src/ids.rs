//! Typed identifiers of the domain. Aggregate ids are derived, never invented: an instance is
//! named after its GitHub installation and a target is the UUIDv5 of (installation, repository,
//! branch), so the worker can route a delivery to its aggregate without reading a projection.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a value was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "branch name {0:?} is not a valid git branch (empty, whitespace, `..`, or over 255 bytes)"
    )]
    Branch(String),
    #[error("repository {0:?} is not `OWNER/NAME`")]
    Repository(String),
    #[error("{0:?} is not a commit SHA (40 or 64 lowercase hex characters)")]
    Sha(String),
    #[error("{0:?} is not a target id (a UUID)")]
    TargetId(String),
    #[error("{0:?} is not an instance id (`github-installation-<number>`)")]
    InstanceId(String),
    #[error(
        "source {0:?} is not a git repository path or URL (empty, over 4096 bytes, a control \
         character, a leading `-`, or a scheme other than file, git, http, https and ssh)"
    )]
    Source(String),
    /// Never echoes the URL: it holds a secret.
    #[error(
        "a source URL must not carry a password or token (it would be stored in the event \
         record); give git its credentials through a credential helper or an SSH key"
    )]
    SourceCredentials,
}

/// A GitHub App installation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstallationId(pub u64);

/// A GitHub repository id: stable across renames and transfers, unlike its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepositoryId(pub u64);

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for RepositoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

const INSTANCE_PREFIX: &str = "github-installation-";

/// The aggregate id of a `ConnectorInstance`: `github-installation-<installation id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub InstallationId);

impl InstanceId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        value
            .strip_prefix(INSTANCE_PREFIX)
            .and_then(|n| n.parse().ok())
            .map(|n| Self(InstallationId(n)))
            .ok_or_else(|| IdError::InstanceId(value.to_owned()))
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{INSTANCE_PREFIX}{}", self.0)
    }
}

/// The namespace of target ids. Changing it would orphan every target: never do.
const TARGET_NAMESPACE: Uuid = Uuid::from_u128(0x6c3f_0b4e_9a51_4c1d_8e02_5f7a_1d3b_9c40);

/// The aggregate id of a `ConnectorTarget`: UUIDv5 of `<installation>/<repository id>/<branch>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetId(pub Uuid);

impl TargetId {
    pub fn for_branch(
        installation: InstallationId,
        repository: RepositoryId,
        branch: &Branch,
    ) -> Self {
        let name = format!("{installation}/{repository}/{}", branch.as_str());
        Self(Uuid::new_v5(&TARGET_NAMESPACE, name.as_bytes()))
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| IdError::TargetId(value.to_owned()))
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// One sync of one target: UUIDv5 of the target id and the target's request count, so replaying
/// the same history always names the same syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncId(pub Uuid);

impl SyncId {
    pub fn nth(target: TargetId, n: u64) -> Self {
        Self(Uuid::new_v5(&target.0, format!("sync/{n}").as_bytes()))
    }
}

impl fmt::Display for SyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A `string_newtype!` that (de)serializes as a string, checked by its `parse` on the way in.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        string_newtype!(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
            #[serde(try_from = "String", into = "String")]
            $name
        );

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }
    };
}

string_id!(
    /// A branch name, without `refs/heads/`.
    Branch
);
string_id!(
    /// A repository's full name, `OWNER/NAME`. It changes on rename or transfer; the
    /// repository id does not.
    RepositoryName
);
string_id!(
    /// A commit SHA: 40 lowercase hex characters (SHA-1) or 64 (SHA-256 repositories).
    CommitSha
);

string_id!(
    /// Where a target's files come from instead of the GitHub App: a local git repository path or
    /// a git URL (`file://`, `git://`, `http(s)://`, `ssh://`, or scp-like `user@host:path`).
    SourceLocation
);

/// URL schemes a source may use; anything else with `::` or `://` (git's `ext::`, `fd::`…) is
/// refused, since git would run it as a transport.
const SOURCE_SCHEMES: [&str; 5] = ["file", "git", "http", "https", "ssh"];

impl SourceLocation {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if let Some((_, rest)) = value.split_once("://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            {
                return Err(IdError::SourceCredentials);
            }
        }
        let scheme_ok = match (value.split_once("://"), value.contains("::")) {
            (_, true) => false,
            (Some((scheme, _)), false) => SOURCE_SCHEMES.contains(&scheme),
            (None, false) => true,
        };
        let ok = scheme_ok
            && !value.trim().is_empty()
            && value.len() <= 4096
            && !value.starts_with('-')
            && !value.chars().any(char::is_control);
        ok.then(|| Self(value.to_owned()))
            .ok_or_else(|| IdError::Source(value.to_owned()))
    }

    /// A URL git fetches from, rather than a path on this machine.
    pub fn is_remote(&self) -> bool {
        match self.0.split_once("://") {
            Some((scheme, _)) => scheme != "file",
            // scp-like `user@host:path`; a path never has a `:` before its first `/`.
            None => self
                .0
                .split('/')
                .next()
                .is_some_and(|head| head.contains(':')),
        }
    }
}

impl Branch {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok = !value.is_empty()
            && value.len() <= 255
            && !value.starts_with("refs/")
            && !value.contains("..")
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| Self(value.to_owned()))
            .ok_or_else(|| IdError::Branch(value.to_owned()))
    }
}

impl RepositoryName {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok = value.split_once('/').is_some_and(|(owner, name)| {
            !owner.is_empty()
                && !name.is_empty()
                && !name.contains('/')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        ok.then(|| Self(value.to_owned()))
            .ok_or_else(|| IdError::Repository(value.to_owned()))
    }
}

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok = matches!(value.len(), 40 | 64)
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(value.to_owned()))
            .ok_or_else(|| IdError::Sha(value.to_owned()))
    }

    /// GitHub's all-zero SHA: the `before` of a new branch, the `after` of a deleted one.
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ids_are_deterministic_and_distinct_per_branch() {
        let main = Branch::parse("main").unwrap();
        let dev = Branch::parse("dev").unwrap();
        let a = TargetId::for_branch(InstallationId(1), RepositoryId(2), &main);
        assert_eq!(
            a,
            TargetId::for_branch(InstallationId(1), RepositoryId(2), &main)
        );
        assert_ne!(
            a,
            TargetId::for_branch(InstallationId(1), RepositoryId(2), &dev)
        );
        assert_ne!(
            a,
            TargetId::for_branch(InstallationId(1), RepositoryId(3), &main)
        );
        assert_eq!(TargetId::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn instance_ids_round_trip_and_reject_other_shapes() {
        let id = InstanceId(InstallationId(42));
        assert_eq!(id.to_string(), "github-installation-42");
        assert_eq!(InstanceId::parse("github-installation-42").unwrap(), id);
        assert!(InstanceId::parse("github-installation-").is_err());
        assert!(InstanceId::parse("installation-42").is_err());
    }

    #[test]
    fn malformed_names_and_shas_are_refused() {
        for bad in ["", "refs/heads/main", "a b", "a..b"] {
            assert!(Branch::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["octo", "/repo", "octo/", "a/b/c", "a b/c"] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CommitSha::parse(&"A".repeat(40)).is_err());
        assert!(CommitSha::parse(&"a".repeat(39)).is_err());
        assert!(CommitSha::parse(&"0".repeat(40)).unwrap().is_zero());
        assert!(CommitSha::parse(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn sources_are_paths_or_git_urls_and_never_options_or_transports() {
        for good in [
            "/srv/repos/plugins",
            "./plugins",
            "https://git.example.com/a/b.git",
            "ssh://git@host/a/b",
            "git@host:a/b.git",
            "file:///srv/a",
        ] {
            assert!(SourceLocation::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            " ",
            "--upload-pack=touch /tmp/x",
            "ext::sh -c touch% /tmp/x",
            "fd::17",
            "gopher://host/a",
            "/a\nb",
        ] {
            assert!(SourceLocation::parse(bad).is_err(), "{bad:?}");
        }
        let secret = SourceLocation::parse("https://bot:ghp_hunter2@git.example.com/a.git");
        assert_eq!(secret, Err(IdError::SourceCredentials));
        assert!(!secret.unwrap_err().to_string().contains("hunter2"));
        assert!(SourceLocation::parse("ssh://git@host/a/b").is_ok());
        assert!(!SourceLocation::parse("/srv/a").unwrap().is_remote());
        assert!(!SourceLocation::parse("file:///srv/a").unwrap().is_remote());
        assert!(SourceLocation::parse("https://h/a").unwrap().is_remote());
        assert!(SourceLocation::parse("git@host:a/b").unwrap().is_remote());
    }
}
