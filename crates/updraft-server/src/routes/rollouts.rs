//! `/rollout`: a channel's rollout. `GET` says where it is; `POST` starts one (with `version` for Capgo or
//! `release` for Expo) or changes its percentage or policy; `/rollout/halt`, `/rollout/resume` and
//! `/rollout/complete` move it. Every answer is the rollout's status (`crate::contract::rollouts::RolloutStatus`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use updraft_capgo::management::{app_id_field, channel_field};
use updraft_core::{AppId, BundleVersion, ChannelName, Failure, HaltCause, HaltPolicy, RolloutPercent, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::contract::rollouts::{RolloutAction, RolloutRequest, RolloutStatus};
use crate::ops::rollouts::{self, Candidate, HaltRequest, SetRollout, StartRollout};
use crate::routes::call::{json_params, read_params};
use crate::state::AppState;

/// How a change names the operator who made it: the name of their API key (never its secret).
pub(crate) fn operator(caller: &Caller) -> String {
    caller.key_name().to_owned()
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_FIELD, message)
}

/// The body read as `T`, with a message naming what is wrong.
async fn body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(json_params(payload).await?)).map_err(|e| bad(e.to_string()))
}

fn checked(app_id: &str, channel: &str, caller: &Caller) -> Result<(AppId, ChannelName), ApiError> {
    let app_id = AppId::parse(app_id).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string()))?;
    let channel = ChannelName::parse(channel).map_err(|e| bad(format!("channel: {e}")))?;
    caller.require_channel(&app_id, &channel)?;
    Ok((app_id, channel))
}

fn percent(number: f64) -> Result<RolloutPercent, ApiError> {
    Ok(RolloutPercent::from_percent(number).map_err(Failure::from)?)
}

async fn answer(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    stored: Option<&updraft_core::StoredRollout>,
) -> Result<HttpResponse, ApiError> {
    let figures = match stored {
        Some(stored) => rollouts::figures(state, stored).await?,
        None => Default::default(),
    };
    Ok(HttpResponse::Ok().json(RolloutStatus::of(app_id, channel, stored, figures)))
}

/// `GET /rollout?app_id=...&channel=...`.
pub(crate) async fn status(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = read_params(&request, payload).await?;
    let app_id = app_id_field(&params)?;
    caller.require_app(&app_id)?;
    let channel = channel_field(&params, "channel")?;
    let stored = rollouts::status(&state, &app_id, &channel)?;
    answer(&state, &app_id, &channel, stored.as_ref()).await
}

/// `POST /rollout`: start (`version` or `release`, and `percent`) or set (`percent`, `max_failure_rate`,
/// `min_devices`).
pub(crate) async fn start_or_set(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let asked: RolloutRequest = body(payload).await?;
    let (app_id, channel) = checked(&asked.app_id, &asked.channel, &caller)?;
    let by = operator(&caller);
    let candidate = match (&asked.version, &asked.release) {
        (Some(_), Some(_)) => {
            return Err(bad("give either version (a Capgo bundle) or release (an Expo release or group), not both"));
        }
        (Some(version), None) => Some(Candidate::CapgoVersion(
            BundleVersion::parse(version).map_err(|e| ApiError::bad_request(codes::INVALID_VERSION, e.to_string()))?,
        )),
        (None, Some(reference)) => Some(Candidate::ExpoRelease {
            reference: reference.trim().to_ascii_lowercase(),
            runtime_version: asked.runtime_version.clone(),
        }),
        (None, None) => None,
    };
    let stored = match candidate {
        Some(candidate) => {
            let percent = percent(asked.percent.ok_or_else(|| {
                ApiError::bad_request(codes::MISSING_FIELD, "percent is required to start a rollout (0 to 100)")
            })?)?;
            let defaults = HaltPolicy::default();
            let policy = HaltPolicy::new(
                asked.max_failure_rate.unwrap_or(defaults.max_failure_rate()),
                asked.min_devices.unwrap_or(defaults.min_devices()),
            )
            .map_err(Failure::from)?;
            let start = StartRollout { channel: channel.clone(), candidate, percent, policy, by };
            rollouts::start(&state, &app_id, start).await?
        }
        None => {
            if asked.runtime_version.is_some() {
                return Err(bad("runtime_version only goes with release, when starting an Expo rollout"));
            }
            let set = SetRollout {
                percent: asked.percent.map(percent).transpose()?,
                max_failure_rate: asked.max_failure_rate,
                min_devices: asked.min_devices,
                by,
            };
            rollouts::set(&state, &app_id, &channel, set).await?
        }
    };
    answer(&state, &app_id, &channel, Some(&stored)).await
}

/// The body of a halt, resume or complete, with its app and channel checked against the caller's scope.
async fn action(caller: &Caller, payload: web::Payload) -> Result<(RolloutAction, AppId, ChannelName), ApiError> {
    let asked: RolloutAction = body(payload).await?;
    let (app_id, channel) = checked(&asked.app_id, &asked.channel, caller)?;
    Ok((asked, app_id, channel))
}

/// `POST /rollout/halt {app_id, channel, reason?}`.
pub(crate) async fn halt(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (asked, app_id, channel) = action(&caller, payload).await?;
    let request = HaltRequest {
        by: HaltCause::Operator(operator(&caller)),
        reason: asked.reason.unwrap_or_else(|| "halted by an operator".to_owned()),
        figures: None,
        judged: None,
    };
    match rollouts::halt_rollout(&state, &app_id, &channel, request).await? {
        Some(stored) => answer(&state, &app_id, &channel, Some(&stored)).await,
        None => Err(ApiError::client(
            updraft_core::FailureKind::Conflict,
            updraft_core::rollout_codes::ROLLOUT_ALREADY_HALTED,
            format!("the rollout on channel {channel} was halted or completed meanwhile; check its status"),
        )),
    }
}

/// `POST /rollout/resume {app_id, channel}`.
pub(crate) async fn resume(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, app_id, channel) = action(&caller, payload).await?;
    let stored = rollouts::resume(&state, &app_id, &channel, &operator(&caller)).await?;
    answer(&state, &app_id, &channel, Some(&stored)).await
}

/// `POST /rollout/complete {app_id, channel}`.
pub(crate) async fn complete(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, app_id, channel) = action(&caller, payload).await?;
    let stored = rollouts::complete(&state, &app_id, &channel, &operator(&caller)).await?;
    answer(&state, &app_id, &channel, Some(&stored)).await
}
