//! Many blobs in one request: the commit's tarball (`GET /repos/{owner}/{repo}/tarball/{sha}`,
//! which GitHub answers with a redirect to its download host), streamed through gzip and tar in a
//! blocking task, never held whole in memory. Each regular file and symlink (whose content is its
//! target) is hashed as git hashes a blob, and kept only when that blob id was asked for; the
//! pass stops as soon as every one is found.
//!
//! Matching by blob id makes the archive an optimization only. A file left out of it
//! (`export-ignore`), rewritten in it (`export-subst`, end-of-line conversion, LFS content) or
//! beyond an archive that broke off is simply not found, and the caller asks the blobs API for
//! it. For the same reason the archive's paths (all under one `owner-repo-shortsha/` directory)
//! are not read at all: no path is trusted, and none needs its first component stripped.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Read};

use bytes::Bytes;
use flate2::read::GzDecoder;
use futures::TryStreamExt as _;
use hooklog_domain::ids::CommitSha;
use reqwest::StatusCode;
use sha2::Digest;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::http::{chain, Body, Reply};
use super::path::object_sha;
use super::GithubApp;
use crate::source::{RepoRef, SourceError};

/// Entries larger than this are skipped rather than held in memory to be hashed; one that was
/// asked for comes from the blobs API (which serves up to 100 MB). A sync rarely wants over 1 MB.
const KEEP_AT_MOST: u64 = 16 * 1024 * 1024;

impl GithubApp {
    /// The blobs of `blob_shas` found in the archive of `commit`, by blob id. An archive that
    /// cannot be had or breaks off is logged (never its URL: the download host's carries a
    /// token), and whatever was verified before the break is still returned.
    pub(super) async fn fetch_from_archive(
        &self,
        repo: &RepoRef,
        base: &str,
        commit: &CommitSha,
        blob_shas: &[String],
    ) -> HashMap<String, Bytes> {
        let wanted: HashSet<String> = blob_shas.iter().cloned().collect();
        let asked = wanted.len();
        let (found, failure) = match self.open_archive(repo, base, commit).await {
            Ok(reader) => match tokio::task::spawn_blocking(move || scan(reader, &wanted)).await {
                Ok(Scan { found, failure }) => (found, failure.map(|err| err.to_string())),
                Err(err) => (
                    HashMap::new(),
                    Some(format!("the archive reader died: {err}")),
                ),
            },
            Err(err) => (HashMap::new(), Some(err.to_string())),
        };
        let found_count = found.len();
        match failure {
            Some(error) => tracing::warn!(
                %error,
                asked,
                found = found_count,
                "the commit's archive failed; the blobs it did not give come from the blobs API"
            ),
            None if found_count < asked => tracing::info!(
                asked,
                found = found_count,
                "some blobs are not in the commit's archive as stored (export-ignore, \
                 export-subst, end-of-line or LFS attributes); they come from the blobs API"
            ),
            None => tracing::debug!(asked, "every blob came from the commit's archive"),
        }
        found
    }

    /// The archive's `.tar.gz` bytes as a blocking reader over the response as it arrives. The
    /// request goes through the same helper as every other call: rate limits waited out, 5xx and
    /// network errors retried, a 401 answered with a new token.
    async fn open_archive(
        &self,
        repo: &RepoRef,
        base: &str,
        commit: &CommitSha,
    ) -> Result<impl Read + Send + 'static, SourceError> {
        let what = format!("the archive of commit {commit} of {}", repo.repository);
        let path = format!("{base}/tarball/{}", object_sha(commit.as_str())?);
        match self.call(repo.owner, &path, Body::Stream).await? {
            Reply::Open(response) if response.status() == StatusCode::OK => {
                let body = response
                    .bytes_stream()
                    .map_err(|err| io::Error::other(chain(&err.without_url())));
                Ok(SyncIoBridge::new(StreamReader::new(Box::pin(body))))
            }
            reply => Err(reply.into_answer().await?.error(&what)),
        }
    }
}

/// What one pass over an archive gave: the asked-for contents by blob id, and, when the pass
/// ended before the archive did, why.
#[derive(Debug)]
struct Scan {
    found: HashMap<String, Bytes>,
    failure: Option<io::Error>,
}

/// Reads a `.tar.gz` from `reader`, keeping each regular file or symlink whose blob id is in
/// `wanted`, until all are found or the archive ends.
fn scan(reader: impl Read, wanted: &HashSet<String>) -> Scan {
    let mut found = HashMap::new();
    let failure = scan_into(reader, wanted, &mut found).err();
    Scan { found, failure }
}

fn scan_into(
    reader: impl Read,
    wanted: &HashSet<String>,
    found: &mut HashMap<String, Bytes>,
) -> io::Result<()> {
    let formats = ObjectFormat::of(wanted);
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    for entry in archive.entries()? {
        if found.len() == wanted.len() {
            break;
        }
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let content = if kind.is_file() || kind.is_contiguous() {
            let size = entry.size();
            if size > KEEP_AT_MOST {
                continue;
            }
            let mut content = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut content)?;
            content
        } else if kind.is_symlink() {
            match entry.link_name_bytes() {
                Some(target) => target.into_owned(),
                None => continue,
            }
        } else {
            // Directories, pax headers (the global one names the commit), anything else.
            continue;
        };
        let id = formats
            .iter()
            .map(|format| format.blob_id(&content))
            .find(|id| wanted.contains(id) && !found.contains_key(id));
        if let Some(id) = id {
            found.insert(id, Bytes::from(content));
        }
    }
    Ok(())
}

/// A repository's hash: SHA-1 (40-hex ids) or SHA-256 (64-hex ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectFormat {
    Sha1,
    Sha256,
}

impl ObjectFormat {
    /// The formats the asked-for ids are in (one, in any real repository).
    fn of(wanted: &HashSet<String>) -> Vec<Self> {
        [(Self::Sha1, 40), (Self::Sha256, 64)]
            .into_iter()
            .filter(|(_, len)| wanted.iter().any(|id| id.len() == *len))
            .map(|(format, _)| format)
            .collect()
    }

    /// The git blob id of `content`: the hash of `blob {len}\0` followed by the content.
    fn blob_id(self, content: &[u8]) -> String {
        match self {
            Self::Sha1 => blob_id::<sha1::Sha1>(content),
            Self::Sha256 => blob_id::<sha2::Sha256>(content),
        }
    }
}

fn blob_id<D: Digest>(content: &[u8]) -> String {
    let mut hasher = D::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    /// `git hash-object --stdin` of `content`, in a repository of `format`.
    fn git_hash_object(format: &str, content: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let init = Command::new("git")
            .args(["init", "--quiet", &format!("--object-format={format}")])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(init.success());
        let mut child = Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(["hash-object", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(content).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn contents() -> Vec<Vec<u8>> {
        vec![
            Vec::new(),
            b"hello\n".to_vec(),
            b"no newline at the end".to_vec(),
            (0..=255u8).cycle().take(70_000).collect(),
        ]
    }

    #[test]
    fn sha1_blob_ids_are_the_ones_git_hash_object_gives() {
        for content in contents() {
            assert_eq!(
                ObjectFormat::Sha1.blob_id(&content),
                git_hash_object("sha1", &content),
                "{} bytes",
                content.len()
            );
        }
    }

    #[test]
    fn sha256_blob_ids_are_the_ones_git_hash_object_gives() {
        for content in contents() {
            assert_eq!(
                ObjectFormat::Sha256.blob_id(&content),
                git_hash_object("sha256", &content),
                "{} bytes",
                content.len()
            );
        }
    }

    #[test]
    fn the_formats_asked_for_follow_the_id_lengths() {
        let ids = |ids: &[String]| ids.iter().cloned().collect::<HashSet<_>>();
        assert_eq!(
            ObjectFormat::of(&ids(&["a".repeat(40)])),
            [ObjectFormat::Sha1]
        );
        assert_eq!(
            ObjectFormat::of(&ids(&["a".repeat(64)])),
            [ObjectFormat::Sha256]
        );
    }

    /// A `.tar.gz` as GitHub shapes it: everything under one top directory, a symlink whose
    /// target is too long for the classic header.
    fn archive(files: &[(&str, &[u8])], link: (&str, &str)) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, format!("octo-repo-abc1234/{path}"), *content)
                .unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder
            .append_link(&mut header, format!("octo-repo-abc1234/{}", link.0), link.1)
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn sha1(content: &[u8]) -> String {
        ObjectFormat::Sha1.blob_id(content)
    }

    #[test]
    fn asked_for_files_and_symlink_targets_are_found_and_the_rest_left_out() {
        let target = format!("../{}/README.md", "deep/".repeat(30));
        let tgz = archive(
            &[
                ("a/x.md", b"x\n"),
                ("b/y.md", b"y\n"),
                ("c/z.bin", &[0, 1, 2]),
            ],
            ("links/readme", &target),
        );
        let wanted: HashSet<String> = [sha1(b"x\n"), sha1(&[0, 1, 2]), sha1(target.as_bytes())]
            .into_iter()
            .collect();

        let Scan { found, failure } = scan(tgz.as_slice(), &wanted);

        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(found.len(), 3);
        assert_eq!(found[&sha1(b"x\n")].as_ref(), b"x\n");
        assert_eq!(found[&sha1(&[0, 1, 2])].as_ref(), &[0, 1, 2]);
        assert_eq!(found[&sha1(target.as_bytes())].as_ref(), target.as_bytes());
        assert!(!found.contains_key(&sha1(b"y\n")));
    }

    #[test]
    fn a_truncated_archive_keeps_what_came_before_the_break_and_says_why() {
        let big: Vec<u8> = (0..200_000u32).flat_map(u32::to_le_bytes).collect();
        let tgz = archive(&[("first.md", b"first\n"), ("big.bin", &big)], ("l", "t"));
        let wanted: HashSet<String> = [sha1(b"first\n"), sha1(&big)].into_iter().collect();

        let Scan { found, failure } = scan(&tgz[..tgz.len() / 2], &wanted);

        assert!(failure.is_some());
        assert_eq!(found.len(), 1);
        assert_eq!(found[&sha1(b"first\n")].as_ref(), b"first\n");
    }

    #[test]
    fn bytes_that_are_not_gzip_find_nothing_and_fail() {
        let wanted: HashSet<String> = [sha1(b"x")].into_iter().collect();
        let Scan { found, failure } = scan(&b"<html>not an archive</html>"[..], &wanted);
        assert!(found.is_empty());
        assert!(failure.is_some());
    }
}
