//! Where a target's files come from instead of the GitHub App (`SourceLocation`), and which of
//! those places this hooklog lets targets read (`AllowedSources`, the setting
//! `HOOKLOG_SYNCER_ALLOWED_SOURCES`).
//!
//! A source is handed to `git`, which reads any repository the syncer's user can reach, so the
//! setting is what stands between an admin token and the machine's files. A source is checked
//! twice, by the same code:
//! - when it is given (`AllowedSources::admit`, in the write side's `track`, for the admin API and
//!   the CLI alike): a path or a git URL of an allowed scheme; no credentials, which would be
//!   stored in the event record (a password; a user name on anything but `ssh`, as a token is
//!   often passed as one; an http(s) query); no `.` or `..` segment, written or percent-encoded,
//!   so a path cannot climb out of a prefix it starts with; and under one of the allowed
//!   prefixes, matched on whole path segments (`/srv/git` covers `/srv/git/a`, not
//!   `/srv/gitevil`) and, for URLs, on the exact scheme and host (`https://git.example.com` does
//!   not cover `https://git.example.com.evil.org/…`);
//! - before anything is fetched (`AllowedSources::check`, in the syncer's git source): the event
//!   log holds what earlier rules and earlier settings allowed, so a stored source is checked
//!   again against today's rules and today's setting, and a refused one fails its sync.
//!
//! Values read back from hooklog's own records (`Deserialize`, `from_stored`) are decoded by the
//! rules every earlier hooklog stored, not today's: an event that no longer passes must still
//! decode, or one old record would stop the projections and make its target unreadable. Decoding
//! grants nothing; the check before fetching refuses.
//!
//! The check is on names: a symlink under an allowed path prefix is followed, so whoever can write
//! under a prefix decides what it holds.

mod allowed;
#[cfg(test)]
mod tests;

pub use allowed::{AllowedSources, PrefixError, SourceRefused, ALLOWED_SOURCES_SETTING};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::IdError;

string_newtype!(
    /// Where a target's files come from instead of the GitHub App: a local git repository path or
    /// a git URL (`file://`, `git://`, `http(s)://`, `ssh://`, or scp-like `user@host:path`).
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
    SourceLocation
);

/// URL schemes a source may use; anything else with `::` or `://` (git's `ext::`, `fd::`…) is
/// refused, since git would run it as a transport.
const SOURCE_SCHEMES: [&str; 5] = ["file", "git", "http", "https", "ssh"];

impl SourceLocation {
    /// A source as a caller gives it, by today's rules (see the module doc). An error never
    /// echoes a value that carries credentials.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if carries_credentials(value) {
            return Err(IdError::SourceCredentials);
        }
        let location = Self::from_stored(value)?;
        if has_dot_segment(value) {
            return Err(IdError::SourceDotSegment(value.to_owned()));
        }
        Ok(location)
    }

    /// A source read back from hooklog's own records (events, read models), by the rules every
    /// earlier hooklog stored: what keeps git safe to run (no option, no transport but the
    /// allowed schemes, no control character) and no password. `AllowedSources::check` applies
    /// the rest before anything is fetched.
    pub fn from_stored(value: &str) -> Result<Self, IdError> {
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

    /// `scheme://host[:port]` (the host lowercased) of an `http(s)` URL without a user name:
    /// where a credential for it may be sent. `None` for anything else.
    pub fn http_origin(&self) -> Option<String> {
        match Anatomy::of(&self.0) {
            Anatomy::Url {
                scheme: scheme @ ("http" | "https"),
                userinfo: None,
                host,
                ..
            } if !host.is_empty() => Some(format!("{scheme}://{}", host.to_ascii_lowercase())),
            _ => None,
        }
    }

    /// A URL git fetches from, rather than a path on this machine.
    pub fn is_remote(&self) -> bool {
        !matches!(
            Anatomy::of(&self.0),
            Anatomy::Path(_) | Anatomy::Url { scheme: "file", .. }
        )
    }
}

impl Serialize for SourceLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::from_stored(&value).map_err(serde::de::Error::custom)
    }
}

/// A source split the way git reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anatomy<'a> {
    /// A path on this machine: as written, or the path of a `file:///…` URL.
    Path(&'a str),
    /// `scheme://[userinfo@]host[:port][/path…]`, with `path` all that follows the host (a
    /// `file://` URL naming a host is one of these, not a path here).
    Url {
        scheme: &'a str,
        userinfo: Option<&'a str>,
        host: &'a str,
        path: &'a str,
    },
    /// scp-like `[user@]host:path`: a `:` before the first `/`, as git tells them apart.
    Scp {
        userinfo: Option<&'a str>,
        host: &'a str,
        path: &'a str,
    },
}

impl<'a> Anatomy<'a> {
    fn of(value: &'a str) -> Self {
        let split_user = |authority: &'a str| match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if let Some((scheme, rest)) = value.split_once("://") {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            if scheme == "file" && authority.is_empty() {
                return Self::Path(path);
            }
            let (userinfo, host) = split_user(authority);
            return Self::Url {
                scheme,
                userinfo,
                host,
                path,
            };
        }
        let head = value.split('/').next().unwrap_or_default();
        match head.split_once(':') {
            Some((login, _)) => {
                let (userinfo, host) = split_user(login);
                Self::Scp {
                    userinfo,
                    host,
                    path: &value[login.len() + 1..],
                }
            }
            None => Self::Path(value),
        }
    }
}

/// Whether `value` carries what may be a secret: a password, a user name on a URL of another
/// scheme than `ssh` (`https://ghp_…@github.com/…`), a percent-encoded user name, an http(s)
/// query, or an scp-like `user:password@host:path`.
fn carries_credentials(value: &str) -> bool {
    if value.contains("://") {
        let Anatomy::Url {
            scheme,
            userinfo,
            path,
            ..
        } = Anatomy::of(value)
        else {
            return false;
        };
        let user = userinfo.is_some_and(|user| scheme != "ssh" || user.contains([':', '%']));
        let query = matches!(scheme, "http" | "https") && path.contains('?');
        return user || query;
    }
    let head = value.split('/').next().unwrap_or_default();
    head.rsplit_once('@')
        .is_some_and(|(login, _)| login.contains(':'))
}

/// Whether the path of `value` has a `.` or `..` segment. In a URL, percent-encoded dots count
/// as dots, and an encoded `/` or `\` (which git or a server may decode into a separator) or a
/// `\` refuses it too.
fn has_dot_segment(value: &str) -> bool {
    let dots = |segment: &str| segment == "." || segment == "..";
    match Anatomy::of(value) {
        Anatomy::Path(path) if !value.contains("://") => path.split('/').any(dots),
        Anatomy::Scp { path, .. } => path.split('/').any(dots),
        // A URL, `file:///` ones included: its host is no segment, but an odd one is no loss.
        _ => {
            let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
            let rest = rest.to_ascii_lowercase();
            rest.contains("%2f")
                || rest.contains("%5c")
                || rest.contains('\\')
                || rest.replace("%2e", ".").split(['/', '?', '#']).any(dots)
        }
    }
}
