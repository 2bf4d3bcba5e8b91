//! Blob contents through the git blobs API, a bounded number at a time, in the order asked, each
//! one succeeding or failing on its own. Over the tarball threshold the commit's archive is read
//! first (`archive`), and only what it did not give is asked of the blobs API.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use hooklog_domain::ids::CommitSha;
use reqwest::StatusCode;
use serde::Deserialize;

use super::path::{object_sha, repo_path};
use super::GithubApp;
use crate::source::{RepoRef, SourceError};

/// `GET /repos/{owner}/{repo}/git/blobs/{sha}`, as GitHub answers it.
#[derive(Debug, Deserialize)]
struct BlobAnswer {
    content: String,
    encoding: String,
    size: Option<u64>,
}

impl GithubApp {
    pub(super) async fn fetch_blobs(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
        blob_shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>> {
        // One token before fanning out: with bad credentials that is one refused exchange, not
        // one per blob.
        let ready = match repo_path(repo) {
            Ok(base) => self.credential(repo.owner).await.map(|_| base),
            Err(err) => Err(err),
        };
        let base = match ready {
            Ok(base) => base,
            Err(err) => return blob_shas.iter().map(|_| Err(err.clone())).collect(),
        };
        let from_archive = if blob_shas.len() > self.tarball_threshold {
            self.fetch_from_archive(repo, &base, commit, blob_shas)
                .await
        } else {
            Default::default()
        };
        // Futures built up front (lazy until polled): a stream closure over borrowed SHAs trips
        // the `Send` check of the async trait.
        let fetches: Vec<_> = blob_shas
            .iter()
            .map(|sha| {
                let found = from_archive.get(sha).cloned();
                let base = &base;
                async move {
                    match found {
                        Some(bytes) => Ok(bytes),
                        None => self.fetch_blob(repo, base, sha).await,
                    }
                }
            })
            .collect();
        stream::iter(fetches)
            .buffered(self.concurrency)
            .collect()
            .await
    }

    async fn fetch_blob(
        &self,
        repo: &RepoRef,
        base: &str,
        sha: &str,
    ) -> Result<Bytes, SourceError> {
        let what = format!("blob {sha} of {}", repo.repository);
        let path = format!("{base}/git/blobs/{}", object_sha(sha)?);
        let answer = self.get(repo.owner, &path).await?;
        match answer.status {
            StatusCode::OK => decode(answer.json(&what)?, &what),
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => Err(SourceError::NotFound(
                format!("{what}: {}", answer.describe()),
            )),
            _ => Err(answer.error(&what)),
        }
    }
}

/// The bytes of a blob answer. GitHub wraps base64 at 60 characters with `\n`; the size it
/// states is checked against what was decoded.
fn decode(blob: BlobAnswer, what: &str) -> Result<Bytes, SourceError> {
    let bytes = match blob.encoding.as_str() {
        "base64" => {
            let compact: Vec<u8> = blob
                .content
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD.decode(compact).map_err(|err| {
                SourceError::Invalid(format!("{what}: GitHub's base64 does not decode: {err}"))
            })?
        }
        "utf-8" => blob.content.into_bytes(),
        other => {
            return Err(SourceError::Invalid(format!(
                "{what}: GitHub answered an unknown encoding {other:?}"
            )))
        }
    };
    match blob.size {
        Some(size) if size != bytes.len() as u64 => Err(SourceError::Invalid(format!(
            "{what}: GitHub says {size} bytes but sent {}",
            bytes.len()
        ))),
        _ => Ok(Bytes::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(content: &str, encoding: &str, size: Option<u64>) -> BlobAnswer {
        BlobAnswer {
            content: content.to_owned(),
            encoding: encoding.to_owned(),
            size,
        }
    }

    #[test]
    fn base64_wrapped_with_newlines_decodes_to_the_exact_bytes() {
        let data: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let encoded = STANDARD.encode(&data);
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let content = wrapped.join("\n") + "\n";
        let decoded = decode(blob(&content, "base64", Some(700)), "t").unwrap();
        assert_eq!(decoded.as_ref(), data.as_slice());
    }

    #[test]
    fn an_empty_blob_decodes_to_nothing() {
        assert!(decode(blob("", "base64", Some(0)), "t").unwrap().is_empty());
    }

    #[test]
    fn a_size_that_disagrees_with_the_content_is_invalid() {
        let err = decode(blob("aGVsbG8=\n", "base64", Some(6)), "t").unwrap_err();
        assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn broken_base64_and_unknown_encodings_are_invalid() {
        assert!(decode(blob("!!!!", "base64", None), "t").is_err());
        assert!(decode(blob("x", "rot13", None), "t").is_err());
        assert_eq!(
            decode(blob("hi", "utf-8", Some(2)), "t").unwrap().as_ref(),
            b"hi"
        );
    }
}
