//! The console's actions. Each one checks the CSRF token, the key's role (`publish`) and its scope for the channel it
//! changes, then calls the same use case as the API route that does the same thing, which records the audit entry.

use std::collections::HashMap;

use updraft_core::{
    Access, AppId, BundleVersion, ChannelName, ChannelTarget, ChannelUpdate, DeviceId, FailureKind, HaltCause,
    HaltPolicy, Platform, RolloutPercent, codes,
};

use crate::api_error::ApiError;
use crate::console_sessions::Session;
use crate::ops::expo_releases::{Rollback, RollbackTarget};
use crate::ops::rollouts::{Candidate, HaltRequest, SetRollout, StartRollout};
use crate::ops::{channels, devices, expo_releases, rollouts};
use crate::state::AppState;

type Form = HashMap<String, String>;

/// Whether the form carries the session's CSRF token.
pub(super) fn csrf_matches(session: &Session, form: &Form) -> bool {
    form.get("csrf").is_some_and(|token| constant_time_eq::constant_time_eq(token.as_bytes(), session.csrf.as_bytes()))
}

/// The refusal of a request without the session's CSRF token.
pub(super) fn forged() -> ApiError {
    ApiError::client(
        FailureKind::Forbidden,
        codes::FORBIDDEN,
        "this form is not from your console session (missing or wrong CSRF token); reload the page and try again",
    )
}

/// The section an action's result shows in.
pub(super) fn anchor(action: &str) -> &'static str {
    match action {
        "channel-rollback" | "promote" => "capgo-channels",
        "expo-rollback" | "expo-promote" => "expo-channels",
        _ => "rollouts",
    }
}

/// The confirmation shown after an action (`?done=`), from a fixed list: nothing from the URL is echoed.
pub(super) fn flash(query: &HashMap<String, String>) -> String {
    let text = match query.get("done").map(String::as_str) {
        Some("rollout-start") => "Rollout started.",
        Some("rollout-set") => "Rollout percentage changed.",
        Some("rollout-halt") => "Rollout halted.",
        Some("rollout-resume") => "Rollout resumed.",
        Some("rollout-complete") => "Rollout completed.",
        Some("channel-rollback") => "Channel moved.",
        Some("promote") | Some("expo-promote") => "Promoted.",
        Some("expo-rollback") => "Channel rolled back.",
        Some("device-pin") => "Device pinned.",
        _ => return String::new(),
    };
    format!(r#"<div class="flash ok" id="flash">{text} It is in the audit log.</div>"#)
}

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, ApiError> {
    field(form, name).ok_or_else(|| ApiError::bad_request(codes::MISSING_FIELD, format!("field `{name}` is required")))
}

fn channel(form: &Form, name: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(required(form, name)?)
        .map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, format!("field `{name}`: {e}")))
}

fn percent(form: &Form) -> Result<RolloutPercent, ApiError> {
    let raw = required(form, "percent")?;
    let number: f64 = raw.parse().map_err(|_| {
        ApiError::bad_request(codes::INVALID_FIELD, format!("percent must be a number from 0 to 100, got {raw:?}"))
    })?;
    Ok(RolloutPercent::from_percent(number).map_err(updraft_core::Failure::from)?)
}

fn target(raw: &str) -> Result<ChannelTarget, ApiError> {
    if raw == "builtin" {
        return Ok(ChannelTarget::Builtin);
    }
    BundleVersion::parse(raw)
        .map(ChannelTarget::Bundle)
        .map_err(|e| ApiError::bad_request(codes::INVALID_VERSION, e.to_string()))
}

/// Runs one action for the signed-in key.
pub(super) async fn run(
    state: &AppState,
    session: &Session,
    app_id: &AppId,
    action: &str,
    form: &Form,
) -> Result<(), ApiError> {
    if !csrf_matches(session, form) {
        return Err(forged());
    }
    let caller = &session.caller;
    caller.require(Access::Publish)?;
    let by = caller.key_name().to_owned();
    match action {
        "rollout-start" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            let reference = required(form, "candidate")?;
            let catalog = state.catalog(app_id)?;
            let candidate = match catalog.bundle_by_version(reference) {
                Some(bundle) => Candidate::CapgoVersion(bundle.version.clone()),
                None => Candidate::ExpoRelease { reference: reference.to_ascii_lowercase(), runtime_version: None },
            };
            let start = StartRollout { channel, candidate, percent: percent(form)?, policy: HaltPolicy::default(), by };
            rollouts::start(state, app_id, start).await?;
        }
        "rollout-set" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            let set = SetRollout { percent: Some(percent(form)?), max_failure_rate: None, min_devices: None, by };
            rollouts::set(state, app_id, &channel, set).await?;
        }
        "rollout-halt" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            let reason = field(form, "reason").unwrap_or("halted from the console").to_owned();
            let request = HaltRequest { by: HaltCause::Operator(by), reason, figures: None, judged: None };
            if rollouts::halt_rollout(state, app_id, &channel, request).await?.is_none() {
                return Err(ApiError::client(
                    FailureKind::Conflict,
                    updraft_core::rollout_codes::ROLLOUT_ALREADY_HALTED,
                    format!("the rollout on channel {channel} was halted or completed meanwhile"),
                ));
            }
        }
        "rollout-resume" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            rollouts::resume(state, app_id, &channel, &by).await?;
        }
        "rollout-complete" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            rollouts::complete(state, app_id, &channel, &by).await?;
        }
        "channel-rollback" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            let update = ChannelUpdate { target: Some(target(required(form, "version")?)?), ..Default::default() };
            channels::set(state, caller, app_id, &channel, &update).await?;
        }
        "promote" => {
            let from = channel(form, "from_channel")?;
            let to = channel(form, "to_channel")?;
            caller.require_channel(app_id, &to)?;
            let catalog = state.catalog(app_id)?;
            let serves = catalog
                .channel_by_name(from.as_str())
                .and_then(|c| c.bundle_id)
                .and_then(|id| catalog.bundle(id))
                .map(|bundle| bundle.version.clone())
                .ok_or_else(|| {
                    ApiError::bad_request(codes::INVALID_FIELD, format!("channel {from} serves no bundle to promote"))
                })?;
            let update = ChannelUpdate { target: Some(ChannelTarget::Bundle(serves)), ..Default::default() };
            channels::set(state, caller, app_id, &to, &update).await?;
        }
        "expo-rollback" => {
            let channel = channel(form, "channel")?;
            caller.require_channel(app_id, &channel)?;
            let runtime_version = field(form, "runtime_version").map(str::to_owned);
            let target = match field(form, "to") {
                Some(reference) => {
                    RollbackTarget::Release { reference: reference.to_ascii_lowercase(), runtime_version }
                }
                None => RollbackTarget::Embedded {
                    runtime_version: runtime_version.ok_or_else(|| {
                        ApiError::bad_request(codes::MISSING_FIELD, "rolling back to embedded needs runtime_version")
                    })?,
                },
            };
            let rollback = Rollback { channel, target, platforms: vec![Platform::Ios, Platform::Android] };
            expo_releases::rollback(state, caller, app_id, rollback).await?;
        }
        "expo-promote" => {
            let release = required(form, "release")?.to_ascii_lowercase();
            let to = match field(form, "to_channel") {
                Some(_) => channel(form, "to_channel")?,
                None => channel(form, "new_channel")?,
            };
            caller.require_channel(app_id, &to)?;
            expo_releases::promote(state, caller, app_id, &release, &to).await?;
        }
        "device-pin" => {
            let device_id = DeviceId::parse(&required(form, "device_id")?.to_ascii_lowercase())
                .map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, e.to_string()))?;
            let channel = field(form, "channel")
                .map(|raw| {
                    ChannelName::parse(raw).map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, e.to_string()))
                })
                .transpose()?;
            let version = field(form, "version").map(target).transpose()?;
            // As `POST /device`: a channel-scoped key may put a device on its channel only.
            match (&channel, &version) {
                (Some(channel), None) => caller.require_channel(app_id, channel)?,
                (None, None) => {
                    return Err(ApiError::bad_request(codes::MISSING_FIELD, "give a channel or a version to pin"));
                }
                _ => caller.require_app_change(app_id)?,
            }
            devices::link(state, caller, app_id, &device_id, channel.as_ref(), version.as_ref()).await?;
        }
        other => {
            return Err(ApiError::not_found(codes::NOT_FOUND, format!("the console has no action {other:?}")));
        }
    }
    Ok(())
}
