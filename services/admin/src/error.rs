//! Every way an admin request can fail, mapped to its HTTP answer in one place. Bodies are
//! `{"error": {"code", "message"}}` with a stable snake_case code; internal details are logged
//! with context and never sent. Client mistakes are 4xx, never 500.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hooklog_projections::query::QueryError;
use hooklog_reconciler::redeliver::OperatorError;
use hooklog_write::{CommandError, ErrorClass, UseCaseError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No admin token is configured: the admin API is closed.
    #[error("the admin API is closed: no admin token is configured (HOOKLOG_ADMIN_TOKEN, HOOKLOG_ADMIN_READ_TOKEN, HOOKLOG_ADMIN_TOKENS_FILE)")]
    Closed,
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("this token is read-only; changing anything needs the read-write admin token")]
    ReadOnly,
    /// The request is malformed: an id, a query parameter, a cursor or a body.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The body is well-formed but a value in it is not acceptable.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    TooLarge { message: String },
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    #[error("{method} is not allowed on this route")]
    MethodNotAllowed { method: String },
    /// The aggregate refused the command, or the resource is not in a state that allows it.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The read model did not reach the position asked for (`min_position`) in time.
    #[error("the {projection} read model has not reached position {position} yet; retry shortly")]
    PositionNotReached { projection: String, position: u64 },
    /// A part of hooklog this route needs is not configured here (`code` names it; the message
    /// names the settings).
    #[error("{message}")]
    NotConfigured { code: &'static str, message: String },
    /// PostgreSQL or NATS could not be reached; the cause is logged.
    #[error("the store is unavailable right now; retry later")]
    Unavailable(String),
    /// Something that needs a person (stored events that cannot be read back); logged.
    #[error("internal error; see the service logs")]
    Internal(String),
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: what programs match on.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, what: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            what: what.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn unavailable(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Unavailable(format!("{context}: {err}"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Closed => (StatusCode::UNAUTHORIZED, "admin_api_closed"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::ReadOnly => (StatusCode::FORBIDDEN, "read_only_token"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PositionNotReached { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "position_not_reached")
            }
            Self::NotConfigured { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Unavailable(cause) => {
                tracing::warn!(error = %cause, "admin request: store unavailable")
            }
            Self::Internal(cause) => tracing::error!(error = %cause, "admin request failed"),
            _ => {}
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Closed | Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::PositionNotReached { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::BadCursor(message) => Self::bad_request("bad_cursor", message),
            QueryError::BadFilter(message) => Self::bad_request("bad_filter", message),
            QueryError::Database(err) => Self::unavailable("read model query", err),
        }
    }
}

impl ApiError {
    /// The admin API's one mapping of the write side's classification: a refusal is the
    /// client's conflict (409, with the domain's reason), bad input 422, no such aggregate 404,
    /// conflicts and outages 503 (retry), stored events that cannot be read 500.
    fn classified(class: ErrorClass, code: &'static str, message: String) -> Self {
        match class {
            ErrorClass::Refused => Self::conflict(code, message),
            ErrorClass::Invalid => Self::invalid(code, message),
            ErrorClass::NotFound => {
                let what = message.strip_suffix(" not found").unwrap_or(&message);
                Self::not_found(code, what)
            }
            ErrorClass::Conflict | ErrorClass::Retryable => Self::Unavailable(message),
            ErrorClass::Corrupt => Self::Internal(message),
            ErrorClass::Unconfigured => Self::NotConfigured { code, message },
        }
    }
}

impl<E: std::error::Error> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        Self::classified(err.class(), "command_rejected", err.to_string())
    }
}

impl From<UseCaseError> for ApiError {
    fn from(err: UseCaseError) -> Self {
        Self::classified(err.class, err.code, err.message)
    }
}

/// An operator's redelivery not sent: never recorded missing (404), nothing GitHub can do (409),
/// the store failed (503, retry).
impl From<OperatorError> for ApiError {
    fn from(err: OperatorError) -> Self {
        match err {
            OperatorError::NotFound(guid) => Self::not_found(
                "github_delivery_not_found",
                format!("GitHub delivery {guid:?}"),
            ),
            OperatorError::Refused(message) => Self::conflict("redelivery_refused", message),
            OperatorError::Failed(err) => Self::unavailable("asking GitHub for a redelivery", err),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match (&rejection, rejection.status()) {
            (JsonRejection::MissingJsonContentType(_), _) => Self::UnsupportedMediaType {
                message: "expected a JSON body with `Content-Type: application/json`".to_owned(),
            },
            (_, StatusCode::PAYLOAD_TOO_LARGE) => Self::TooLarge { message },
            _ => Self::bad_request("bad_body", message),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("bad_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("bad_path", rejection.body_text())
    }
}
