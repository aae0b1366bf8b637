//! An app's Expo code-signing keys over the API (admin key only): `POST /expo/{app_id}/keys` generates a key and
//! its certificate, or imports a private key; `GET /expo/{app_id}/keys` lists key ids, fingerprints and
//! certificates. Private keys stay in the metadata store: one is sent back only by the generate call that asks to
//! export it.
//!
//! A key id that exists is replaced only with `force`, because every binary shipped with its certificate rejects
//! updates signed by another key (expo-updates pins the certificate: android `codesigning/CertificateChain.kt`).
//! Rotation is done with a second key id, which new binaries ask for in `expo-expect-signature` while old ones
//! keep asking for theirs. After a change the keys are reloaded at once here and, through the change feed, on every
//! other instance.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::Value;
use updraft_core::{AppId, SigningKeyRecord, codes, expo_time};
use updraft_expo::signing::{KeyError, SigningKey, check_key_id, generate, normalise_private_key};

use crate::api_error::{ApiError, ExpoApiError};
use crate::auth::{Caller, ExpoCaller};
use crate::contract::expo_keys::{KeyView, StoreKeyRequest, StoredKey};
use crate::ops::expo_keys;
use crate::routes::call::{json_params, read_params};
use crate::state::AppState;

/// Certificates are valid from now for this many years unless asked otherwise.
const DEFAULT_VALIDITY_YEARS: u32 = 10;

/// Signing keys are the installation's admin's: an app-scoped key cannot replace what shipped binaries trust.
fn admin_only(caller: &Caller, _app_id: &AppId) -> Result<(), ApiError> {
    caller.require_everything()
}

fn app_of(path: &str) -> Result<AppId, ApiError> {
    AppId::parse(path).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string()))
}

fn key_error(error: KeyError) -> ApiError {
    match error {
        KeyError::BadKeyId(_) => ApiError::bad_request("invalid_key_id", error.to_string()),
        KeyError::NotAPrivateKey | KeyError::TooSmall(_) => {
            ApiError::bad_request("invalid_signing_key", error.to_string())
        }
        KeyError::Crypto(detail) => ApiError::Internal(anyhow::anyhow!("signing key: {detail}")),
    }
}

/// What is shown of a key: never its private half.
fn describe(key: &SigningKey, record: &SigningKeyRecord) -> KeyView {
    KeyView {
        key_id: record.key_id.clone(),
        fingerprint: key.fingerprint_hex(),
        public_key_pem: key.public_key_pem().to_owned(),
        certificate_pem: record.certificate_pem.clone(),
        created_at: expo_time(record.created_at),
    }
}

/// `POST /expo/{app_id}/keys {key_id?, private_key?, force?, validity_years?, export_private_key?}`.
pub(crate) async fn put_key(
    state: web::Data<AppState>,
    ExpoCaller(caller): ExpoCaller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let params = json_params(payload).await?;
    let app_id = app_of(&path.into_inner())?;
    admin_only(&caller, &app_id)?;
    state.catalog(&app_id)?;
    let asked: StoreKeyRequest = serde_json::from_value(Value::Object(params)).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_FIELD,
            format!(
                "{e}; expected {{\"key_id\", \"private_key\" (PEM, to import), \"force\", \"validity_years\", \"export_private_key\"}}"
            ),
        )
    })?;
    check_key_id(&asked.key_id).map_err(key_error)?;
    let generating = asked.private_key.is_none();
    if !generating && (asked.export_private_key || asked.validity_years.is_some()) {
        return Err(ApiError::bad_request(
            codes::INVALID_FIELD,
            "export_private_key and validity_years apply to generated keys; an imported key has neither",
        )
        .into());
    }
    let years = asked.validity_years.unwrap_or(DEFAULT_VALIDITY_YEARS);
    if !(1..=100).contains(&years) {
        return Err(ApiError::bad_request(codes::INVALID_FIELD, "validity_years must be 1 to 100").into());
    }
    let common_name = format!("Updraft {app_id}");
    let (private_key, key_id) = (asked.private_key.clone(), asked.key_id.clone());
    // Key generation and parsing are RSA work: off the runtime threads.
    let (record, key, generated) = tokio::task::spawn_blocking(move || -> Result<_, KeyError> {
        let (private_key_pem, generated) = match private_key {
            Some(pem) => (normalise_private_key(&pem)?, None),
            None => {
                let keys = generate(&common_name, years)?;
                (normalise_private_key(&keys.private_key_pem)?, Some(keys))
            }
        };
        let key = SigningKey::from_pem(&key_id, &private_key_pem)?;
        let certificate_pem = generated.as_ref().map(|keys| keys.certificate_pem.clone());
        let record = SigningKeyRecord { key_id, private_key_pem, certificate_pem, created_at: Utc::now() };
        Ok((record, key, generated))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("generating a signing key")))?
    .map_err(key_error)?;
    let replaced = expo_keys::store(&state, &caller, &app_id, &record, asked.force).await?;
    tracing::info!(
        app.id = %app_id,
        key.id = %record.key_id,
        key.fingerprint = %key.fingerprint_hex(),
        replaced,
        "stored signing key {} for {app_id}",
        record.key_id
    );
    let private_key_pem = generated.filter(|_| asked.export_private_key).map(|generated| generated.private_key_pem);
    Ok(HttpResponse::Ok().json(StoredKey {
        status: "ok".into(),
        replaced,
        key: describe(&key, &record),
        private_key_pem,
    }))
}

/// `GET /expo/{app_id}/keys`: every key of the app, by key id (fingerprints and certificates, no private key).
pub(crate) async fn list_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    ExpoCaller(caller): ExpoCaller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    read_params(&request, payload).await?;
    let app_id = app_of(&path.into_inner())?;
    admin_only(&caller, &app_id)?;
    let records = expo_keys::list(&state, &app_id).await?;
    let listed = tokio::task::spawn_blocking(move || {
        records
            .iter()
            .filter_map(|record| match SigningKey::from_pem(&record.key_id, &record.private_key_pem) {
                Ok(key) => Some(describe(&key, record)),
                Err(error) => {
                    tracing::error!(key.id = %record.key_id, "stored signing key is unusable: {error}");
                    None
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("listing signing keys")))?;
    Ok(HttpResponse::Ok().json(listed))
}
