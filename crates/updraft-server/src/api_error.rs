//! `ApiError`: why a management call, an upload or a use case failed, protocol-neutral. A 4xx is a
//! `updraft_core::Failure` (kind, neutral code, message); 503 and 500 carry their cause for the log only.
//!
//! How it looks on the wire is the protocol crates' business: `ApiError` answers in the Capgo-compatible envelope
//! (`updraft_capgo::failure`, the rendering of every non-Expo route), and [`ExpoApiError`] in the Expo management
//! shape (`updraft_expo::failure`). 503 adds `Retry-After`; a 500 says only "see server log" with a request id,
//! and the cause goes to the log under that id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use updraft_capgo::failure::CapgoFailure;
use updraft_core::{Failure, FailureKind, StoreError, codes};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A 4xx the caller can fix.
    #[error("{} {}: {}", .0.kind.status(), .0.code, .0.message)]
    Client(Failure),
    /// The database or storage is unreachable right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend failure.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// A 400 with this code.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client(Failure::invalid(code, message))
    }

    /// A 404 with this code.
    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client(Failure::not_found(code, message))
    }

    /// A 4xx of this kind.
    pub(crate) fn client(kind: FailureKind, code: &'static str, message: impl Into<String>) -> Self {
        Self::Client(Failure::new(kind, code, message))
    }

    /// What the caller is told: the failure itself for a 4xx, a fixed text for 503 and 500.
    pub(crate) fn failure(&self) -> Failure {
        match self {
            Self::Client(failure) => failure.clone(),
            Self::Unavailable(_) => Failure::new(
                FailureKind::Unavailable,
                codes::SERVICE_UNAVAILABLE,
                "the database or storage is unavailable right now; retry in a few seconds",
            ),
            Self::Internal(_) => Failure::new(FailureKind::Internal, codes::INTERNAL, "internal error, see server log"),
        }
    }

    /// Logs the failure once, where it becomes a response, and returns the request id of a 500.
    fn log(&self) -> Option<String> {
        match self {
            Self::Client(failure) => {
                tracing::debug!(error.code = failure.code, "{}", failure.message);
                None
            }
            Self::Unavailable(detail) => {
                tracing::warn!("answering 503: {detail}");
                None
            }
            Self::Internal(error) => {
                let request_id = uuid::Uuid::new_v4().to_string();
                tracing::error!(request.id = %request_id, "internal error: {error:#}");
                Some(request_id)
            }
        }
    }

    fn respond(&self, body: serde_json::Value) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(body)
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure.kind {
            FailureKind::Unavailable => Self::Unavailable(failure.message),
            FailureKind::Internal => Self::Internal(anyhow::Error::new(failure)),
            _ => Self::Client(failure),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::not_found(codes::NOT_FOUND, format!("{what} not found")),
            StoreError::Conflict(what) => {
                Self::client(FailureKind::Conflict, codes::INVALID_REQUEST, format!("{what} already exists"))
            }
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Other(detail) => Self::Internal(anyhow::anyhow!(detail)),
        }
    }
}

impl From<updraft_oss::Error> for ApiError {
    fn from(error: updraft_oss::Error) -> Self {
        if out_of_space(&error) {
            return out_of_space_error();
        }
        match error {
            // The bucket cannot be reached or refuses us: retryable, and the cause goes to the log.
            updraft_oss::Error::Backend { .. } => Self::Unavailable(format!("object storage: {error}")),
            other => Self::Internal(anyhow::Error::new(other).context("object storage")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        let status = match self {
            Self::Client(failure) => failure.kind.status(),
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// The Capgo-compatible envelope.
    fn error_response(&self) -> HttpResponse {
        let request_id = self.log();
        self.respond(self.failure().capgo_body(request_id.as_deref()))
    }
}

/// Whether an error, or one of its causes, is a full disk or an exhausted quota (`ENOSPC`, `EDQUOT`).
pub(crate) fn out_of_space(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded
                || matches!(io.raw_os_error(), Some(28 | 122)))
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The 507 of an upload that does not fit: the caller is told what happened; nothing of it was kept.
pub(crate) fn out_of_space_error() -> ApiError {
    tracing::warn!("refusing an upload: the disk or object store is out of space");
    ApiError::client(
        FailureKind::InsufficientStorage,
        codes::INSUFFICIENT_STORAGE,
        "the gateway's storage is out of space, so the upload was not kept; free space (or delete unused bundles \
         with `updraft storage gc`) and upload again",
    )
}

/// Capgo's wire code for a failure, for the Capgo device routes that answer in their own body shapes.
pub(crate) fn capgo_code(failure: &Failure) -> &'static str {
    failure.capgo_code()
}

/// An [`ApiError`] on the Expo management routes, answered in their own shape and with the neutral codes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct ExpoApiError(#[from] pub(crate) ApiError);

impl From<Failure> for ExpoApiError {
    fn from(failure: Failure) -> Self {
        Self(failure.into())
    }
}

impl ResponseError for ExpoApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = self.0.log();
        self.0.respond(updraft_expo::failure::failure_body(&self.0.failure(), request_id.as_deref()))
    }
}
