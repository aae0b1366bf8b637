//! `ApiError`: how management and upload failures become HTTP answers. 4xx carry the Capgo-compatible envelope
//! `{"status":"KO","error","message"}`; 503 adds `Retry-After`; 500 says only "see server log" with a request id,
//! and the cause goes to the log under that id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use updraft_capgo::error_codes;
use updraft_capgo::management::{ManagementError, error_body};
use updraft_core::StoreError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A 4xx the caller can fix.
    #[error("{} {}: {}", .0.status, .0.code, .0.message)]
    Client(ManagementError),
    /// The database or storage is unreachable right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend failure.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client(ManagementError::bad_request(code, message))
    }

    pub(crate) fn status(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self::Client(ManagementError { status, code, message: message.into() })
    }
}

impl From<ManagementError> for ApiError {
    fn from(error: ManagementError) -> Self {
        Self::Client(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::status(404, error_codes::NOT_FOUND, format!("{what} not found")),
            StoreError::Conflict(what) => {
                Self::status(409, error_codes::INVALID_REQUEST, format!("{what} already exists"))
            }
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Other(detail) => Self::Internal(anyhow::anyhow!(detail)),
        }
    }
}

impl From<updraft_oss::Error> for ApiError {
    fn from(error: updraft_oss::Error) -> Self {
        match error {
            // The bucket cannot be reached or refuses us: retryable, and the cause goes to the log.
            updraft_oss::Error::Backend { .. } => Self::Unavailable(format!("object storage: {error}")),
            other => Self::Internal(anyhow::Error::new(other).context("object storage")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Client(error) => StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Client(error) => {
                tracing::debug!(error.code = error.code, "{}", error.message);
                HttpResponse::build(self.status_code()).json(error.body())
            }
            Self::Unavailable(detail) => {
                tracing::warn!("answering 503: {detail}");
                HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "5")).json(error_body(
                    error_codes::SERVICE_UNAVAILABLE,
                    "the database or storage is unavailable right now; retry in a few seconds",
                ))
            }
            Self::Internal(error) => {
                let request_id = uuid::Uuid::new_v4().to_string();
                tracing::error!(request.id = %request_id, "internal error: {error:#}");
                HttpResponse::InternalServerError().json(serde_json::json!({
                    "status": "KO",
                    "error": error_codes::INTERNAL,
                    "message": "internal error, see server log",
                    "request_id": request_id,
                }))
            }
        }
    }
}
