//! Typed identifiers of the domain. Aggregate ids are derived, never invented: an instance is
//! named after its GitHub installation and a target is the UUIDv5 of (installation, repository,
//! branch), or of (repository connection, branch), so the worker can route a delivery to its
//! aggregate without reading a projection. A repository connection's id alone is random.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::repository_connection::ConnectionId;
pub use crate::source::SourceLocation;

/// Why a value was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "branch name {0:?} is not a valid git branch (empty, whitespace, `..`, or over 255 bytes)"
    )]
    Branch(String),
    #[error("repository {0:?} is not `OWNER/NAME` (neither of them `.` or `..`)")]
    Repository(String),
    #[error("{0:?} is not a commit SHA (40 or 64 lowercase hex characters)")]
    Sha(String),
    #[error("{0:?} is not a target id (a UUID)")]
    TargetId(String),
    #[error("{0:?} is not an instance id (`github-installation-<number>`)")]
    InstanceId(String),
    #[error("{0:?} is not a repository connection id (a UUID)")]
    ConnectionId(String),
    #[error("provider {0:?} is neither `github` nor `gitlab`")]
    Provider(String),
    #[error(
        "repository {value:?} is not a {provider} repository (GitHub: `OWNER/NAME`; GitLab: a \
         project path `group/name` or a numeric project id; no empty, `.` or `..` segment, no \
         whitespace, `?`, `#`, `%` or `\\`)"
    )]
    ProviderRepository {
        provider: &'static str,
        value: String,
    },
    #[error(
        "source {0:?} is not a git repository path or URL (empty, over 4096 bytes, a control \
         character, a leading `-`, or a scheme other than file, git, http, https and ssh)"
    )]
    Source(String),
    /// Never echoes the URL: it holds a secret.
    #[error(
        "a source URL must not carry credentials: a password, a user name (but an SSH login such \
         as `git@`) or an http(s) query, any of which may be a token (it would be stored in the \
         event record); give git its credentials through a credential helper or an SSH key"
    )]
    SourceCredentials,
    #[error(
        "source {0:?} has a `.` or `..` path segment, or an encoded `.`, `/` or `\\`; name the \
         repository by its plain path or URL"
    )]
    SourceDotSegment(String),
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

/// The aggregate id of a `ConnectorTarget`: UUIDv5 of `<installation>/<repository id>/<branch>`
/// (a target of the App) or `connection/<connection id>/<branch>` (of a repository connection).
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

    /// The target of a repository connection's branch: UUIDv5 of `connection/<connection
    /// id>/<branch>`, which no `<installation>/…` name can be (an installation is a number).
    pub fn for_connection(connection: ConnectionId, branch: &Branch) -> Self {
        let name = format!("connection/{connection}/{}", branch.as_str());
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

/// A `string_newtype!` that (de)serializes as a string, checked on the way in by its `parse`, or
/// by the function named after it (`from_stored`, for a type whose rules grew stricter than what
/// earlier hooklogs stored: old events must still decode).
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        string_id!($(#[$meta])* $name, parse);
    };
    ($(#[$meta:meta])* $name:ident, $decode:ident) => {
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
                Self::$decode(&value)
            }
        }
    };
}

string_id!(
    /// A branch name, without `refs/heads/`.
    Branch
);
string_id!(
    /// A repository's full name: GitHub's `OWNER/NAME`, or a GitLab project's path
    /// `group/subgroup/name` (a GitLab connection's target). It changes on rename or transfer;
    /// the repository id does not.
    RepositoryName,
    from_stored
);
string_id!(
    /// A commit SHA: 40 lowercase hex characters (SHA-1) or 64 (SHA-256 repositories).
    CommitSha
);

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
    /// A name as a caller or GitHub gives it. `.` and `..` are no names (GitHub has none such),
    /// and in an API path they would climb out of the repository.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let named = value.split_once('/').is_some_and(|(owner, name)| {
            !name.contains('/') && ![owner, name].iter().any(|s| [".", ".."].contains(s))
        });
        Self::from_stored(value)
            .ok()
            .filter(|_| named)
            .ok_or_else(|| IdError::Repository(value.to_owned()))
    }

    /// A GitLab project's path, `group/subgroup/name`: two segments or more, none of them
    /// empty, `.` or `..`.
    pub fn parse_project_path(value: &str) -> Result<Self, IdError> {
        let segments: Vec<&str> = value.split('/').collect();
        let ok = segments.len() >= 2
            && segments
                .iter()
                .all(|s| !s.is_empty() && *s != "." && *s != "..");
        Self::from_stored(value)
            .ok()
            .filter(|_| ok)
            .ok_or_else(|| IdError::Repository(value.to_owned()))
    }

    /// A name read back from hooklog's own records, by the rules every hooklog stored (so an
    /// old event still decodes): an owner and a name, the name possibly of several segments (a
    /// GitLab project in subgroups). The syncer checks it with `parse` again before it puts it
    /// into a GitHub API path.
    pub fn from_stored(value: &str) -> Result<Self, IdError> {
        let ok = value.split_once('/').is_some_and(|(owner, name)| {
            !owner.is_empty()
                && !name.is_empty()
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
        for dots in ["./docs", "../docs", "octo/.", "octo/.."] {
            assert!(RepositoryName::parse(dots).is_err(), "{dots:?}");
            // Stored by an earlier hooklog, it still decodes; the syncer refuses it.
            assert!(RepositoryName::from_stored(dots).is_ok(), "{dots:?}");
        }
        assert!(RepositoryName::parse("octo/.github").is_ok());
        // A GitLab project's path has subgroups; GitHub's names never do.
        assert!(RepositoryName::parse_project_path("group/sub/handbook").is_ok());
        assert!(RepositoryName::parse("group/sub/handbook").is_err());
        for bad in [
            "handbook",
            "group//handbook",
            "group/../handbook",
            "group/sub/",
            "a b/c",
        ] {
            assert!(RepositoryName::parse_project_path(bad).is_err(), "{bad:?}");
        }
        assert!(RepositoryName::parse("octo/...").is_ok());
        assert!(CommitSha::parse(&"A".repeat(40)).is_err());
        assert!(CommitSha::parse(&"a".repeat(39)).is_err());
        assert!(CommitSha::parse(&"0".repeat(40)).unwrap().is_zero());
        assert!(CommitSha::parse(&"ab".repeat(32)).is_ok());
    }
}
