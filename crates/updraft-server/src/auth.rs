//! Who is calling the management API: the key comes in `capgkey` or `authorization` (raw, or `Bearer <key>`), as
//! Capgo's CLI and API clients send it. The bootstrap admin key and stored keys are compared in constant time.
//!
//! Handlers take the caller as an extractor: [`Caller`] (refusals in the Capgo envelope), [`ExpoCaller`] and
//! [`AllowedApp`] (the caller, allowed on the `{app_id}` of the path, and that app's catalog; refusals in the Expo
//! management shape).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, web};
use updraft_core::{ApiKeyScope, AppCatalog, AppId, FailureKind, codes};

use crate::api_error::{ApiError, ExpoApiError};
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

type Extracted<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

fn state_of(request: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the application state is not registered")))
}

/// The authenticated caller of a request.
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Self, ApiError>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = state_of(&request)?;
            authenticate(&request, &state).await
        })
    }
}

/// The authenticated caller of an Expo management request.
pub(crate) struct ExpoCaller(pub(crate) Caller);

impl FromRequest for ExpoCaller {
    type Error = ExpoApiError;
    type Future = Extracted<Self, ExpoApiError>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = Caller::from_request(request, payload);
        Box::pin(async move { Ok(Self(caller.await?)) })
    }
}

/// An Expo management request by a caller allowed on the app of its path (`/expo/{app_id}/…`), which exists.
pub(crate) struct AllowedApp {
    pub(crate) app_id: AppId,
    pub(crate) catalog: Arc<AppCatalog>,
}

impl FromRequest for AllowedApp {
    type Error = ExpoApiError;
    type Future = Extracted<Self, ExpoApiError>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = Caller::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let caller = caller.await?;
            let state = state_of(&request)?;
            let raw = request.match_info().get("app_id").unwrap_or_default();
            let app_id = AppId::parse(raw).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string()))?;
            caller.require_app(&app_id)?;
            let catalog = state.catalog(&app_id)?;
            Ok(Self { app_id, catalog })
        })
    }
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
