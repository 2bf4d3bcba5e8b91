//! API paths built from repository, branch and object names: each name is one percent-encoded
//! segment, so a branch with `/` or `#` stays one segment and no name can reach another endpoint.
//! A repository name is checked again by today's rules (a stored one may predate them): `.` and
//! `..` are unreserved, so they would pass the encoding and climb out of `/repos/{owner}`.

use hooklog_domain::ids::RepositoryName;

use crate::source::{RepoRef, SourceError};

/// `/repos/{owner}/{name}` for the repository of `repo`.
pub(super) fn repo_path(repo: &RepoRef) -> Result<String, SourceError> {
    repository_path(&repo.repository)
}

/// `/repos/{owner}/{name}` for `repository`, checked by today's rules first (for any caller
/// that puts a stored name into a GitHub API path).
pub fn repository_path(repository: &RepositoryName) -> Result<String, SourceError> {
    let checked = RepositoryName::parse(repository.as_str())
        .map_err(|err| SourceError::Invalid(err.to_string()))?;
    let (owner, name) = checked.as_str().split_once('/').ok_or_else(|| {
        SourceError::Invalid(format!("repository {repository} is not OWNER/NAME"))
    })?;
    Ok(format!("/repos/{}/{}", segment(owner), segment(name)))
}

/// `value` with everything but RFC 3986's unreserved characters percent-encoded: one path
/// segment of an API URL, whatever `/`, `#` or `?` it holds.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A git object SHA as GitHub names it: 40 or 64 lowercase hex characters. Checked before it goes
/// into a path.
pub(super) fn object_sha(sha: &str) -> Result<&str, SourceError> {
    let ok =
        matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(sha).ok_or_else(|| {
        SourceError::Invalid(format!(
            "{sha:?} is not a git object SHA (40 or 64 lowercase hex)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use hooklog_domain::ids::{InstallationId, RepositoryId};

    use super::*;

    #[test]
    fn a_branch_with_slashes_and_symbols_is_one_encoded_segment() {
        assert_eq!(segment("feature/x#1 ü"), "feature%2Fx%231%20%C3%BC");
        assert_eq!(segment("v1.2_rc-3~"), "v1.2_rc-3~");
    }

    #[test]
    fn a_stored_repository_named_dot_or_dot_dot_never_reaches_a_path() {
        for stored in ["octo/..", "../plugins", "octo/."] {
            let repo = RepoRef {
                owner: crate::source::TargetOwner::Installation(InstallationId(1)),
                repository_id: RepositoryId(1),
                repository: RepositoryName::from_stored(stored).unwrap(),
                source: None,
            };
            let err = repo_path(&repo).unwrap_err();
            assert!(matches!(err, SourceError::Invalid(_)), "{stored}: {err:?}");
        }
    }

    #[test]
    fn only_hex_shas_of_git_lengths_are_accepted() {
        let sha = "a".repeat(40);
        assert_eq!(object_sha(&sha).unwrap(), sha);
        assert!(object_sha(&"b".repeat(64)).is_ok());
        assert!(object_sha("../../user").is_err());
        assert!(object_sha(&"A".repeat(40)).is_err());
    }
}
