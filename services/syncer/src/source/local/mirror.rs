//! The bare mirrors `LocalGit` keeps of URL sources under its `cache_dir`: how a mirror is named,
//! cloning it on first use and fetching it again, one clone or fetch at a time per mirror.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use super::git::remote_error;
use super::{LocalGit, Location, SourceError};

impl LocalGit {
    fn lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(dir.to_path_buf()).or_default().clone()
    }

    /// Clones the mirror when it is not there yet; `true` when it was cloned just now.
    pub(super) async fn ensure_mirror(&self, loc: &Location) -> Result<bool, SourceError> {
        let Location::Mirror {
            url,
            dir,
            shown,
            auth,
        } = loc
        else {
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
        let out = self.run_as(*auth, None, args).await?;
        if !out.status.success() {
            return Err(remote_error(shown, "clone", &out.stderr));
        }
        tokio::fs::rename(&partial, dir).await.map_err(io)?;
        Ok(true)
    }

    pub(super) async fn fetch(&self, loc: &Location) -> Result<(), SourceError> {
        let Location::Mirror {
            dir, shown, auth, ..
        } = loc
        else {
            return Ok(());
        };
        let lock = self.lock(dir);
        let _guard = lock.lock().await;
        tracing::debug!(source = %shown, "fetching a git source");
        let refspec = "+refs/heads/*:refs/heads/*";
        let args = ["fetch", "--quiet", "--prune", "origin", refspec];
        let out = self.run_as(*auth, Some(dir), args).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(remote_error(shown, "fetch", &out.stderr))
        }
    }
}

/// `<readable part of the URL>-<FNV-1a of the whole URL>.git`: stable across runs and builds,
/// distinct per URL (credentials included), and free of credentials and path separators.
pub(super) fn mirror_name(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
