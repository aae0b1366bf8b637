//! Who is calling the management API: the key comes in `capgkey` or `authorization` (raw, or `Bearer <key>`), as
//! Capgo's CLI and API clients send it. The bootstrap admin key and stored keys are compared in constant time.

use actix_web::HttpRequest;
use updraft_core::{ApiKeyScope, AppId, FailureKind, codes};

use crate::api_error::ApiError;
use crate::api_keys;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// The bootstrap admin key, or an unscoped stored key.
    Everything,
    /// A key scoped to one app.
    App(AppId),
}

impl Caller {
    /// Fails with 403 unless the caller may touch `app_id`.
    pub(crate) fn require_app(&self, app_id: &AppId) -> Result<(), ApiError> {
        match self {
            Self::Everything => Ok(()),
            Self::App(scoped) if scoped == app_id => Ok(()),
            Self::App(_) => Err(ApiError::client(
                FailureKind::Forbidden,
                codes::FORBIDDEN,
                format!("this API key cannot access app {app_id}; use a key created for it or an unscoped key"),
            )),
        }
    }

    /// Fails with 403 unless the caller may create apps.
    pub(crate) fn require_everything(&self) -> Result<(), ApiError> {
        match self {
            Self::Everything => Ok(()),
            Self::App(_) => Err(ApiError::client(
                FailureKind::Forbidden,
                codes::FORBIDDEN,
                "this API key is scoped to one app; creating apps needs the admin key or an unscoped key",
            )),
        }
    }
}

fn presented_key(request: &HttpRequest) -> Option<&str> {
    let header =
        |name| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let raw = header("capgkey").or_else(|| header("authorization"))?;
    let key = raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer ")).unwrap_or(raw).trim();
    // A header of just "Bearer" (value trimmed by the HTTP layer) carries no key.
    (!key.is_empty() && !key.eq_ignore_ascii_case("bearer")).then_some(key)
}

/// Authenticates the request.
pub(crate) async fn authenticate(request: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let Some(key) = presented_key(request) else {
        return Err(ApiError::client(
            FailureKind::Unauthenticated,
            codes::MISSING_API_KEY,
            "no API key: send it in the `authorization` header (or `capgkey`)",
        ));
    };
    if let Some(admin) = &state.settings.admin_api_key
        && constant_time_eq::constant_time_eq(admin.expose().as_bytes(), key.as_bytes())
    {
        return Ok(Caller::Everything);
    }
    let invalid = || ApiError::client(FailureKind::Unauthenticated, codes::INVALID_API_KEY, "the API key is not valid");
    let id = api_keys::key_id(key).ok_or_else(invalid)?;
    let record = crate::ops::api_keys::find(state, id).await?.ok_or_else(invalid)?;
    if !api_keys::verify(key, &record) || !record.is_active() {
        return Err(invalid());
    }
    Ok(match record.scope {
        ApiKeyScope::All => Caller::Everything,
        ApiKeyScope::App(app_id) => Caller::App(app_id),
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn key_header_forms() {
        let raw = TestRequest::default().insert_header(("authorization", "abc")).to_http_request();
        assert_eq!(presented_key(&raw), Some("abc"));
        let bearer = TestRequest::default().insert_header(("authorization", "Bearer abc")).to_http_request();
        assert_eq!(presented_key(&bearer), Some("abc"));
        let capg = TestRequest::default()
            .insert_header(("capgkey", "k1"))
            .insert_header(("authorization", "k2"))
            .to_http_request();
        assert_eq!(presented_key(&capg), Some("k1"));
        let none = TestRequest::default().insert_header(("authorization", "Bearer ")).to_http_request();
        assert_eq!(presented_key(&none), None);
    }
}
