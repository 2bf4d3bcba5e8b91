//! Reading blobs for `LocalGit` with one `git cat-file --batch`: the queries are written and the
//! answers read at the same time, and each blob's result stands on its own.

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::git::{classify_local, clean, spawn_error};
use super::{LocalGit, Location, SourceError};

impl LocalGit {
    /// One `git cat-file --batch` for all of `shas`, written and read at the same time so no
    /// pipe buffer fills up; each result stands on its own.
    pub(super) async fn cat_file(
        &self,
        loc: &Location,
        shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>> {
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

/// A full object id: 40 or 64 lowercase hex digits (anything else could be a revision
/// expression, or break the `cat-file --batch` protocol).
fn is_object_id(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
