//! Bearer-token access to `/v1/admin`: a read-write token (`HOOKLOG_ADMIN_TOKEN`, named `admin`),
//! a read-only one (`HOOKLOG_ADMIN_READ_TOKEN`, named `read`) and any number of named ones
//! (`HOOKLOG_ADMIN_TOKENS_FILE`); the name is the actor of the holder's commands. Tokens are kept only as SHA-256 digests and compared in
//! constant time, digest against digest, so neither a token's content nor its length leaks
//! through timing. No token configured: the API is closed (401 on every route). A read token on
//! a route that changes something (anything but GET and HEAD): 403. Tokens are never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The name of the read-write token of `HOOKLOG_ADMIN_TOKEN`: its commands' actor is
/// `operator:admin`.
pub const WRITE_ACTOR: &str = "admin";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Who sent a request: the name of the token it carried, and what that token may do. The auth
/// middleware puts it in the request's extensions; commands take their actor from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub access: Access,
}

#[derive(Clone)]
struct Entry {
    name: String,
    access: Access,
    digest: [u8; 32],
}

/// The configured tokens, as digests, each with its holder's name.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, Access)> = self
            .entries
            .iter()
            .map(|entry| (entry.name.as_str(), entry.access))
            .collect();
        f.debug_struct("Tokens")
            .field("names", &names)
            .field("digests", &"[REDACTED]")
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// `write`: the read-write token (named `admin`); `read`: the read-only one (named `read`).
    /// Either may be absent.
    pub fn new(write: Option<&SecretString>, read: Option<&SecretString>) -> Self {
        let mut tokens = Self::default();
        if let Some(token) = write {
            tokens.add(WRITE_ACTOR, Access::Write, token);
        }
        if let Some(token) = read {
            tokens.add("read", Access::Read, token);
        }
        tokens
    }

    /// Adds the token `name` holds.
    pub fn add(&mut self, name: &str, access: Access, token: &SecretString) {
        self.entries.push(Entry {
            name: name.to_owned(),
            access,
            digest: digest(token.expose_secret().as_bytes()),
        });
    }

    /// Every token the settings name: `HOOKLOG_ADMIN_TOKEN` (`admin`),
    /// `HOOKLOG_ADMIN_READ_TOKEN` (`read`) and those of `HOOKLOG_ADMIN_TOKENS_FILE`.
    pub fn from_settings(
        settings: &hooklog_infra::config::Settings,
    ) -> Result<Self, hooklog_infra::config::ConfigError> {
        let mut tokens = Self::default();
        for named in settings.named_admin_tokens()? {
            let access = if named.write {
                Access::Write
            } else {
                Access::Read
            };
            tokens.add(&named.name, access, &named.token);
        }
        Ok(tokens)
    }

    /// Whether any token is configured (otherwise the admin API is closed).
    pub fn any(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Who holds `presented`, if it is one of the tokens. Every digest is compared, in constant
    /// time, whichever matches.
    pub fn check(&self, presented: &[u8]) -> Option<Operator> {
        let presented = digest(presented);
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            let matches = bool::from(entry.digest.ct_eq(&presented));
            if matches && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|entry| Operator {
            name: entry.name.clone(),
            access: entry.access,
        })
    }

    /// Who sends the request, or why it is refused.
    pub fn authorize(
        &self,
        method: &Method,
        authorization: Option<&[u8]>,
    ) -> Result<Operator, ApiError> {
        if !self.any() {
            return Err(ApiError::Closed);
        }
        let token = authorization
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        let operator = self.check(token).ok_or(ApiError::Unauthorized)?;
        let reads_only = matches!(*method, Method::GET | Method::HEAD);
        if operator.access == Access::Read && !reads_only {
            return Err(ApiError::ReadOnly);
        }
        Ok(operator)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The middleware in front of every `/v1/admin` route.
pub async fn require_token(
    State(tokens): State<Arc<Tokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match tokens.authorize(request.method(), authorization) {
        Ok(operator) => {
            request.extensions_mut().insert(operator);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(Some(&"write-secret".into()), Some(&"read-secret".into()))
    }

    #[test]
    fn each_token_gets_its_own_access_and_others_none() {
        let tokens = tokens();
        let access = |token: &[u8]| tokens.check(token).map(|o| (o.name, o.access));
        assert_eq!(
            access(b"write-secret"),
            Some(("admin".into(), Access::Write))
        );
        assert_eq!(access(b"read-secret"), Some(("read".into(), Access::Read)));
        assert_eq!(tokens.check(b"write-secre"), None);
        assert_eq!(tokens.check(b""), None);
    }

    #[test]
    fn a_read_token_cannot_write_and_no_token_closes_the_api() {
        let tokens = tokens();
        assert!(matches!(
            tokens.authorize(&Method::POST, Some(b"Bearer read-secret")),
            Err(ApiError::ReadOnly)
        ));
        assert_eq!(
            tokens
                .authorize(&Method::GET, Some(b"bearer read-secret"))
                .unwrap()
                .access,
            Access::Read
        );
        assert!(matches!(
            tokens.authorize(&Method::GET, Some(b"Basic read-secret")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            Tokens::default().authorize(&Method::GET, Some(b"Bearer x")),
            Err(ApiError::Closed)
        ));
    }

    #[test]
    fn debug_output_never_shows_a_token_or_its_digest() {
        let shown = format!("{:?}", tokens());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
