//! The git repository the tracked targets sync from: one bare repository, one branch per
//! target, each with a chain of commits made up front (one per push the load may send), so
//! every push names a real head the syncer can read.
//!
//! A branch's ref is moved to a push's head only once that push was answered 2xx: the syncer's
//! reconcile pass asks the source for branch heads (at every syncer start), and a branch that
//! ran ahead of the stored pushes would have reconcile request a head a push then requests
//! again, which is a second sync of it by design (the copy converges to the branch head) and
//! would hide a real double sync.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;

pub struct Source {
    path: PathBuf,
    /// `chains[t][k]`: the SHA of commit `k` of target `t`'s branch; `k = 0` is where the
    /// branch starts.
    chains: Vec<Vec<String>>,
}

pub fn branch(target: usize) -> String {
    format!("faults-{target}")
}

impl Source {
    /// A bare repository at `path` with `targets` branches of `commits` commits each.
    pub async fn create(path: &Path, targets: usize, commits: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        git(path, &["init", "--quiet", "--bare"], None).await?;
        let marks = path.join("faults.marks");
        let mut stream = Vec::with_capacity(targets * commits * 200);
        let mark = |t: usize, k: usize| t * commits + k + 1;
        for t in 0..targets {
            for k in 0..commits {
                let mut files = vec![
                    ("counter.txt".to_owned(), format!("{k}\n")),
                    (
                        format!("notes/note-{}.md", k % 8),
                        format!("note {k} of target {t}\n"),
                    ),
                ];
                if k == 0 {
                    files.push(("README.md".to_owned(), format!("# target {t}\n")));
                    files.push((
                        "skills/faults/SKILL.md".to_owned(),
                        "---\nname: faults\ndescription: kept in step under faults\n---\n"
                            .to_owned(),
                    ));
                }
                let message = format!("commit {k} of target {t}\n");
                stream.extend_from_slice(
                    format!(
                        "commit refs/chains/{}\nmark :{}\ncommitter Faults <faults@example.com> {} +0000\ndata {}\n{message}",
                        branch(t),
                        mark(t, k),
                        1_700_000_000 + k,
                        message.len()
                    )
                    .as_bytes(),
                );
                if k > 0 {
                    stream.extend_from_slice(format!("from :{}\n", mark(t, k - 1)).as_bytes());
                }
                for (name, content) in files {
                    stream.extend_from_slice(
                        format!(
                            "M 100644 inline {name}\ndata {}\n{content}\n",
                            content.len()
                        )
                        .as_bytes(),
                    );
                }
                stream.push(b'\n');
            }
            stream.extend_from_slice(
                format!("reset refs/heads/{}\nfrom :{}\n\n", branch(t), mark(t, 0)).as_bytes(),
            );
        }
        let marks_arg = format!("--export-marks={}", marks.display());
        git(path, &["fast-import", "--quiet", &marks_arg], Some(stream)).await?;
        let text = std::fs::read_to_string(&marks)?;
        let mut shas = vec![String::new(); targets * commits];
        for line in text.lines() {
            let (mark, sha) = line.split_once(' ').context("a marks line")?;
            let index: usize = mark.trim_start_matches(':').parse()?;
            shas[index - 1] = sha.to_owned();
        }
        let chains = shas.chunks(commits).map(<[String]>::to_vec).collect();
        Ok(Self {
            path: path.to_owned(),
            chains,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commit `k` of target `t`, if the chain is that long.
    pub fn commit(&self, target: usize, k: usize) -> Option<&str> {
        self.chains[target].get(k).map(String::as_str)
    }

    /// Where `sha` is in target `t`'s chain.
    pub fn position(&self, target: usize, sha: &str) -> Option<usize> {
        self.chains[target].iter().position(|c| c == sha)
    }

    /// Moves target `t`'s branch to `sha`.
    pub async fn advance(&self, target: usize, sha: &str) -> anyhow::Result<()> {
        let name = format!("refs/heads/{}", branch(target));
        git(&self.path, &["update-ref", &name, sha], None).await
    }
}

async fn git(dir: &Path, args: &[&str], input: Option<Vec<u8>>) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git")?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(&bytes).await?;
        drop(stdin);
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
