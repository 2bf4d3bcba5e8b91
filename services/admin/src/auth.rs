//! Bearer-token access to `/v1/admin`: a read-write token (`HOOKLOG_ADMIN_TOKEN`) and a read-only
//! one (`HOOKLOG_ADMIN_READ_TOKEN`). Tokens are kept only as SHA-256 digests and compared in
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

/// The actor named in the metadata of commands sent with the read-write token.
pub const WRITE_ACTOR: &str = "admin";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    write: Option<[u8; 32]>,
    read: Option<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("write", &self.write.map(|_| "[REDACTED]"))
            .field("read", &self.read.map(|_| "[REDACTED]"))
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// `write`: the read-write token; `read`: the read-only one. Either may be absent.
    pub fn new(write: Option<&SecretString>, read: Option<&SecretString>) -> Self {
        Self {
            write: write.map(|t| digest(t.expose_secret().as_bytes())),
            read: read.map(|t| digest(t.expose_secret().as_bytes())),
        }
    }

    /// The tokens from `HOOKLOG_ADMIN_TOKEN` and `HOOKLOG_ADMIN_READ_TOKEN`.
    pub fn from_settings(settings: &hooklog_infra::config::Settings) -> Self {
        Self::new(
            settings.admin_token.as_ref(),
            settings.admin_read_token.as_ref(),
        )
    }

    /// Whether any token is configured (otherwise the admin API is closed).
    pub fn any(&self) -> bool {
        self.write.is_some() || self.read.is_some()
    }

    /// What `presented` may do, if it is one of the tokens. Both digests are always compared.
    pub fn check(&self, presented: &[u8]) -> Option<Access> {
        let presented = digest(presented);
        let matches = |configured: &Option<[u8; 32]>| {
            configured.map_or(subtle::Choice::from(0), |c| c.ct_eq(&presented))
        };
        let (write, read) = (matches(&self.write), matches(&self.read));
        if bool::from(write) {
            Some(Access::Write)
        } else if bool::from(read) {
            Some(Access::Read)
        } else {
            None
        }
    }

    /// Who sends the request: the token's access, or why it is refused.
    pub fn authorize(
        &self,
        method: &Method,
        authorization: Option<&[u8]>,
    ) -> Result<Access, ApiError> {
        if !self.any() {
            return Err(ApiError::Closed);
        }
        let token = authorization
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        let access = self.check(token).ok_or(ApiError::Unauthorized)?;
        let reads_only = matches!(*method, Method::GET | Method::HEAD);
        if access == Access::Read && !reads_only {
            return Err(ApiError::ReadOnly);
        }
        Ok(access)
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
        Ok(access) => {
            request.extensions_mut().insert(access);
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
        assert_eq!(tokens.check(b"write-secret"), Some(Access::Write));
        assert_eq!(tokens.check(b"read-secret"), Some(Access::Read));
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
                .unwrap(),
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
