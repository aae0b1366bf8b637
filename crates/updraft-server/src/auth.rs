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
use updraft_core::{Access, AppCatalog, AppId, ChannelName, Denied, FailureKind, Grant, codes};

use crate::api_error::{ApiError, ExpoApiError};
use crate::api_keys;
use crate::state::AppState;

/// An authenticated caller: the name of its key (for the audit log; `admin` for the bootstrap admin key) and what
/// the key may do ([`Grant`]). Which role each route needs is `routes::access`; the checks of scope (app, channel)
/// are the methods below, called by the handler once it knows what the request touches.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    key_name: String,
    /// The stored key's public id (`None` for the bootstrap admin key): the console re-checks it is still active.
    key_id: Option<String>,
    grant: Grant,
}

/// The name the bootstrap admin key is recorded under in the audit log.
pub(crate) const BOOTSTRAP_KEY_NAME: &str = "admin";

impl Caller {
    /// A caller with this key name and grant.
    pub(crate) fn new(key_name: impl Into<String>, grant: Grant) -> Self {
        Self { key_name: key_name.into(), key_id: None, grant }
    }

    /// The public id of the stored key (`None` for the bootstrap admin key).
    pub(crate) fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The name of the key (never its secret).
    pub(crate) fn key_name(&self) -> &str {
        &self.key_name
    }

    /// What the key may do.
    pub(crate) fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Fails with 403 unless the key's role is enough for `access`.
    pub(crate) fn require(&self, access: Access) -> Result<(), ApiError> {
        self.grant.allows(access).map_err(forbidden)
    }

    /// Fails with 403 unless the caller may see `app_id`.
    pub(crate) fn require_app(&self, app_id: &AppId) -> Result<(), ApiError> {
        self.grant.may_see(app_id).map_err(forbidden)
    }

    /// Fails with 403 unless the caller may change channel `channel` of `app_id`.
    pub(crate) fn require_channel(&self, app_id: &AppId, channel: &ChannelName) -> Result<(), ApiError> {
        self.grant.may_change_channel(app_id, channel).map_err(forbidden)
    }

    /// Fails with 403 unless the caller may make a change to `app_id` that is not about one channel.
    pub(crate) fn require_app_change(&self, app_id: &AppId) -> Result<(), ApiError> {
        self.grant.may_change_app(app_id).map_err(forbidden)
    }

    /// Fails with 403 unless the caller is an admin scoped to no app (creating apps, managing keys).
    pub(crate) fn require_everything(&self) -> Result<(), ApiError> {
        self.require(Access::Installation)
    }
}

fn forbidden(denied: Denied) -> ApiError {
    ApiError::client(FailureKind::Forbidden, codes::FORBIDDEN, denied.0)
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
    let caller = caller_of_key(state, key).await?.ok_or_else(|| {
        ApiError::client(FailureKind::Unauthenticated, codes::INVALID_API_KEY, "the API key is not valid")
    })?;
    let access = crate::routes::access_of(request.path(), request.method().as_str()).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "route {} {} has no row in the access table",
            request.method(),
            request.path()
        ))
    })?;
    caller.require(access)?;
    Ok(caller)
}

/// The caller a presented key stands for: the bootstrap admin key, or an active stored key whose secret matches
/// (`None` for anything else). The console's sign-in uses this too.
pub(crate) async fn caller_of_key(state: &AppState, key: &str) -> Result<Option<Caller>, ApiError> {
    if let Some(admin) = &state.settings.admin_api_key
        && constant_time_eq::constant_time_eq(admin.expose().as_bytes(), key.as_bytes())
    {
        return Ok(Some(Caller::new(BOOTSTRAP_KEY_NAME, Grant::everything())));
    }
    let Some(id) = api_keys::key_id(key) else { return Ok(None) };
    let Some(record) = crate::ops::api_keys::find(state, id).await? else { return Ok(None) };
    if !api_keys::verify(key, &record) || !record.is_active() {
        return Ok(None);
    }
    Ok(Some(Caller { key_name: record.name.clone(), key_id: Some(record.id.clone()), grant: record.grant() }))
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
    pub(crate) caller: Caller,
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
            Ok(Self { caller, app_id, catalog })
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
