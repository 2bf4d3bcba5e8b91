//! `AllowedSources`: the prefixes of `HOOKLOG_SYNCER_ALLOWED_SOURCES`, and the one test of a
//! source against them that both the write side (on `track`) and the syncer (before it fetches)
//! run.
//!
//! A prefix and a source are both split into a `Place`: which machine (none for a path here; the
//! scheme, host and port of a URL; the host of an scp-like `host:path`), the login if one is
//! named, and the path's segments. A prefix covers a source when the machine is the same (host
//! names compared whole, without case), its login (if it names one) is the source's, and its
//! segments begin the source's. scp-like prefixes cover only scp-like sources and URLs only URLs
//! of their scheme, since `host:a` and `ssh://host/a` are different directories.

use serde::Deserialize;

use super::{Anatomy, SourceLocation};
use crate::ids::IdError;

/// The setting holding the prefixes, named in every refusal.
pub const ALLOWED_SOURCES_SETTING: &str = "HOOKLOG_SYNCER_ALLOWED_SOURCES";

/// The path and URL prefixes a target's `source` must be under. Empty (the default): every
/// source is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedSources {
    prefixes: Vec<Place>,
}

/// Why a prefix of the setting was refused. Never echoes one that carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrefixError(String);

/// Why a target may not read a source on this hooklog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceRefused {
    /// Not a source by today's rules (credentials, a `.` or `..` segment, a bad scheme…).
    #[error(transparent)]
    Invalid(#[from] IdError),
    #[error(
        "git sources are refused: {ALLOWED_SOURCES_SETTING} is not set (set it to the path and \
         URL prefixes targets may read from)"
    )]
    NoneAllowed,
    #[error(
        "source {0:?} is not under any prefix of {ALLOWED_SOURCES_SETTING} (a path must be \
         absolute, and a prefix covers whole path segments)"
    )]
    NotAllowed(String),
}

/// A prefix or a source, split for comparison (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    /// `None`: a path on this machine.
    remote: Option<Remote>,
    /// The path starts at `/` (always, for a URL; for an scp-like path, else it is relative to
    /// the login's home directory; for a prefix path, required).
    rooted: bool,
    /// The path's non-empty segments.
    segments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote {
    /// The URL's scheme; `None` for scp-like.
    scheme: Option<String>,
    /// The login; `None` in a prefix: any.
    user: Option<String>,
    /// `host[:port]`, lowercased.
    host: String,
}

impl Place {
    fn of(source: &SourceLocation) -> Self {
        let segments = |path: &str| {
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let remote = |scheme: Option<&str>, user: Option<&str>, host: &str| {
            Some(Remote {
                scheme: scheme.map(str::to_owned),
                user: user.map(str::to_owned),
                host: host.to_ascii_lowercase(),
            })
        };
        match Anatomy::of(source.as_str()) {
            Anatomy::Path(path) => Self {
                remote: None,
                rooted: path.starts_with('/'),
                segments: segments(path),
            },
            Anatomy::Url {
                scheme,
                userinfo,
                host,
                path,
            } => Self {
                remote: remote(Some(scheme), userinfo, host),
                rooted: true,
                segments: segments(path),
            },
            Anatomy::Scp {
                userinfo,
                host,
                path,
            } => Self {
                remote: remote(None, userinfo, host),
                rooted: path.starts_with('/'),
                segments: segments(path),
            },
        }
    }

    /// Whether this prefix covers `source`.
    fn covers(&self, source: &Place) -> bool {
        let machine = match (&self.remote, &source.remote) {
            (None, None) => true,
            (Some(prefix), Some(source)) => {
                prefix.scheme == source.scheme
                    && prefix.host == source.host
                    && (prefix.user.is_none() || prefix.user == source.user)
            }
            _ => false,
        };
        machine && self.rooted == source.rooted && source.segments.starts_with(&self.segments)
    }

    /// One entry of the setting (`n` from 1), as a prefix.
    fn prefix(n: usize, entry: &str) -> Result<Self, PrefixError> {
        let bad = |why: &str| PrefixError(format!("entry {n} ({entry:?}) {why}"));
        let location = SourceLocation::parse(entry).map_err(|err| match err {
            IdError::SourceCredentials => PrefixError(format!(
                "entry {n} carries credentials: a URL prefix may name an SSH login (`git@`), no \
                 password, other user name or query"
            )),
            IdError::SourceDotSegment(_) => bad("has a `.` or `..` segment"),
            _ => bad("is not an absolute path or a file, git, http, https or ssh URL"),
        })?;
        let place = Self::of(&location);
        match &place.remote {
            None if !place.rooted => Err(bad("is a relative path: a path prefix must be absolute")),
            Some(remote) if remote.host.is_empty() => Err(bad("names no host")),
            Some(remote) if remote.scheme.as_deref() == Some("file") => Err(bad(
                "names a host: a file URL prefix is file:///<absolute path>",
            )),
            _ => Ok(place),
        }
    }
}

impl AllowedSources {
    /// The setting's value: prefixes separated by commas, blanks around them ignored. Empty:
    /// none (every source refused).
    pub fn parse(setting: &str) -> Result<Self, PrefixError> {
        let prefixes = setting
            .split(',')
            .map(str::trim)
            .enumerate()
            .filter(|(_, entry)| !entry.is_empty())
            .map(|(i, entry)| Place::prefix(i + 1, entry))
            .collect::<Result<_, _>>()?;
        Ok(Self { prefixes })
    }

    /// Whether every source is refused.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// A source given by a caller, if today's rules and the setting let targets read it.
    pub fn admit(&self, value: &str) -> Result<SourceLocation, SourceRefused> {
        let source = SourceLocation::parse(value)?;
        self.check(&source)?;
        Ok(source)
    }

    /// Whether targets may read `source` now: today's rules again (it may have been stored under
    /// older ones), then the prefixes.
    pub fn check(&self, source: &SourceLocation) -> Result<(), SourceRefused> {
        let source = SourceLocation::parse(source.as_str())?;
        if self.prefixes.is_empty() {
            return Err(SourceRefused::NoneAllowed);
        }
        let place = Place::of(&source);
        match self.prefixes.iter().any(|prefix| prefix.covers(&place)) {
            true => Ok(()),
            false => Err(SourceRefused::NotAllowed(source.as_str().to_owned())),
        }
    }
}

impl TryFrom<String> for AllowedSources {
    type Error = PrefixError;

    fn try_from(setting: String) -> Result<Self, PrefixError> {
        Self::parse(&setting)
    }
}
