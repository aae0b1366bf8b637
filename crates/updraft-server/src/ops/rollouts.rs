//! Rollouts: start one (a Capgo bundle, or an Expo publish group, offered to a percentage of a channel's devices),
//! raise it, halt it, resume it, complete it, and say where it is.
//!
//! The transitions are `updraft_core::Rollout`'s; the Expo releases a halt, a resume or a completion after a halt
//! mints are `updraft_core::ReleaseMint`'s. Here they meet the store: each change is one store transaction,
//! conditional on the state this instance saw (so two instances never both halt), then the release index is
//! refreshed. [`halt_rollout`] is the one halt: the `/rollout/halt` route and the health decider both call it.

use chrono::{SubsecRound, Utc};
use updraft_core::{
    AppCatalog, AppId, BundleVersion, ChannelName, ExpoRelease, FailureKind, Halt, HaltCause, HaltPolicy,
    HealthFigures, Platform, ReleaseMint, Rollout, RolloutChange, RolloutId, RolloutPercent, RolloutSpec, RolloutState,
    RolloutTarget, StableTarget, StoreError, StoredRollout, codes, referenced_releases,
};

use crate::api_error::ApiError;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// The code of a start refused because the channel has an active rollout.
pub(crate) const ROLLOUT_ACTIVE: &str = "rollout_active";
/// The code of a change asked of a channel without a rollout.
pub(crate) const ROLLOUT_NOT_FOUND: &str = "rollout_not_found";
/// The code of a change another instance or operator made first.
pub(crate) const ROLLOUT_CHANGED: &str = "rollout_changed";

/// What a rollout offers, as the operator names it.
pub(crate) enum Candidate {
    /// A Capgo bundle version of the app.
    CapgoVersion(BundleVersion),
    /// An Expo release id or publish group id (of the channel), only the releases of this runtime version when
    /// one is given.
    ExpoRelease { reference: String, runtime_version: Option<String> },
}

/// A checked start.
pub(crate) struct StartRollout {
    pub(crate) channel: ChannelName,
    pub(crate) candidate: Candidate,
    pub(crate) percent: RolloutPercent,
    pub(crate) policy: HaltPolicy,
    /// Who asks (the operator, as their API key shows).
    pub(crate) by: String,
}

/// A checked change of percentage or policy (`None` keeps it).
pub(crate) struct SetRollout {
    pub(crate) percent: Option<RolloutPercent>,
    pub(crate) max_failure_rate: Option<f64>,
    pub(crate) min_devices: Option<u64>,
    pub(crate) by: String,
}

/// A halt, by an operator or by the health rule.
pub(crate) struct HaltRequest {
    /// Who halts.
    pub(crate) by: HaltCause,
    /// Why (an operator's note, or the health rule's figures as text).
    pub(crate) reason: String,
    /// The figures the halt was decided on, when there are some.
    pub(crate) figures: Option<HealthFigures>,
    /// The rollout as the figures were judged against (the health rule's halt): halt only that rollout, and only
    /// if it has not changed since, since one that replaced it, a resume (a new health window) or a new policy makes
    /// those figures stale. `None` (an operator): whatever rollout is active on the channel.
    pub(crate) judged: Option<StoredRollout>,
}

fn change(action: &str, by: &str, reason: String) -> RolloutChange {
    RolloutChange { action: action.to_owned(), by: by.to_owned(), at: Utc::now(), reason }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn changed_meanwhile(channel: &ChannelName) -> ApiError {
    ApiError::client(
        FailureKind::Conflict,
        ROLLOUT_CHANGED,
        format!("the rollout on channel {channel} changed meanwhile (another operator or instance); check its status"),
    )
}

fn active_elsewhere(channel: &ChannelName) -> ApiError {
    ApiError::client(
        FailureKind::Conflict,
        ROLLOUT_ACTIVE,
        format!(
            "channel {channel} has an active rollout; complete it (updraft rollout complete) or halt it (updraft rollout halt) first"
        ),
    )
}

/// The channel's current rollout, or 404 `rollout_not_found`.
fn current<'a>(catalog: &'a AppCatalog, channel: &ChannelName) -> Result<&'a StoredRollout, ApiError> {
    catalog.rollout(channel.as_str()).ok_or_else(|| {
        ApiError::not_found(
            ROLLOUT_NOT_FOUND,
            format!("channel {channel} has no rollout; start one with updraft rollout start or POST /rollout"),
        )
    })
}

/// The channel's current rollout, if any.
pub(crate) fn status(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
) -> Result<Option<StoredRollout>, ApiError> {
    Ok(state.catalog(app_id)?.rollout(channel.as_str()).cloned())
}

/// The candidate's health figures for the status: devices that ran it and, of those, devices that failed on it.
///
/// Counted from release health (`crate::release_health`) since [`Rollout::health_since`] (the start or the last
/// resume), on the rollout's channel, over the candidate's releases (a Capgo version; an Expo group's releases).
pub(crate) async fn figures(state: &AppState, stored: &StoredRollout) -> Result<HealthFigures, ApiError> {
    let rollout = &stored.rollout;
    let (app_id, channel, candidate) = (rollout.app_id(), rollout.channel().as_str(), rollout.candidate().label());
    Ok(state.store.rollout_figures(app_id, channel, candidate, rollout.health_since()).await?)
}

/// Starts a rollout. A Capgo channel that does not exist yet is created, serving builtin (as a publish creates it).
pub(crate) async fn start(state: &AppState, app_id: &AppId, start: StartRollout) -> Result<StoredRollout, ApiError> {
    let mut catalog = state.catalog(app_id)?;
    if catalog.rollout(start.channel.as_str()).is_some_and(|r| r.rollout.is_active()) {
        return Err(active_elsewhere(&start.channel));
    }
    let (candidate, stable, covers) = match &start.candidate {
        Candidate::CapgoVersion(version) => {
            if catalog.bundle_by_version(version.as_str()).is_none() {
                return Err(ApiError::bad_request(
                    codes::BUNDLE_VERSION_NOT_FOUND,
                    format!(
                        "bundle {version} does not exist for app {app_id}; upload it first with updraft publish capgo"
                    ),
                ));
            }
            if catalog.channel_by_name(start.channel.as_str()).is_none() {
                let update = catalog.channel_update_for_publish(start.channel.as_str());
                state.store.upsert_channel(app_id, &start.channel, &update, Some(None)).await?;
                state.refresh(app_id).await?;
                catalog = state.catalog(app_id)?;
            }
            let channel = catalog.channel_by_name(start.channel.as_str()).ok_or_else(|| {
                ApiError::not_found(codes::CHANNEL_NOT_FOUND, format!("channel {} does not exist", start.channel))
            })?;
            let stable = match channel.bundle_id.and_then(|id| catalog.bundle(id)) {
                Some(bundle) => StableTarget::CapgoBundle(bundle.version.clone()),
                None => StableTarget::Builtin,
            };
            (RolloutTarget::CapgoBundle(version.clone()), stable, vec![])
        }
        Candidate::ExpoRelease { reference, runtime_version } => {
            let (group, covers) = expo_candidate(&catalog, &start.channel, reference, runtime_version.as_deref())?;
            (RolloutTarget::ExpoGroup(group), StableTarget::ExpoPrevious, covers)
        }
    };
    let stored = new_rollout(app_id, &start, candidate, stable, covers)?;
    record_start(state, &stored, &[], &start.channel).await?;
    Ok(stored)
}

/// A fresh rollout (a new id, so a new set of devices) from a start.
fn new_rollout(
    app_id: &AppId,
    start: &StartRollout,
    candidate: RolloutTarget,
    stable: StableTarget,
    covers: Vec<(Platform, String)>,
) -> Result<StoredRollout, ApiError> {
    let id = RolloutId::parse(&new_id()).map_err(updraft_core::Failure::from)?;
    let spec = RolloutSpec {
        id,
        app_id: app_id.clone(),
        channel: start.channel.clone(),
        candidate,
        stable,
        percent: start.percent,
        policy: start.policy,
    };
    let rollout = Rollout::start(spec, Utc::now()).map_err(updraft_core::Failure::from)?;
    let reason = format!(
        "{} to {} of channel {} (stable: {})",
        rollout.candidate().label(),
        rollout.percent(),
        start.channel,
        rollout.stable().label()
    );
    Ok(StoredRollout { rollout, covers, last_change: change("start", &start.by, reason) })
}

async fn record_start(
    state: &AppState,
    stored: &StoredRollout,
    releases: &[ExpoRelease],
    channel: &ChannelName,
) -> Result<(), ApiError> {
    let app_id = stored.rollout.app_id();
    let before = state.catalog(app_id)?.rollout(channel.as_str()).cloned();
    match state.store.start_rollout(stored, releases).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(active_elsewhere(channel)),
        // The store checks the rollout's bundles again in its transaction: one may have been deleted meanwhile.
        Err(StoreError::NotFound(what)) => {
            return Err(ApiError::bad_request(
                codes::BUNDLE_VERSION_NOT_FOUND,
                format!("{what} was deleted meanwhile; upload it again with updraft publish capgo"),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(app_id).await?;
    tracing::info!(
        app.id = %app_id, channel.name = %channel, rollout.id = stored.rollout.id().as_str(),
        "rollout started: {}", stored.last_change.reason
    );
    audited(state, before.as_ref(), stored).await?;
    state.webhooks.send(crate::webhooks::rollout_changed(stored));
    Ok(())
}

/// The publish group a reference names on the channel, and the (platform, runtime version) pairs it covers.
fn expo_candidate(
    catalog: &AppCatalog,
    channel: &ChannelName,
    reference: &str,
    runtime_version: Option<&str>,
) -> Result<(String, Vec<(Platform, String)>), ApiError> {
    let on_channel = |r: &&ExpoRelease| r.channel == channel.as_str();
    let group = referenced_releases(catalog, reference)
        .into_iter()
        .find(on_channel)
        .map(|release| release.group_id.clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "release_not_found",
                format!(
                    "no release or publish group {reference} on channel {channel}; pass the group id updraft publish expo printed, or a release id of it"
                ),
            )
        })?;
    let mut covers: Vec<(Platform, String)> = catalog
        .expo_releases()
        .iter()
        .filter(|r| r.group_id == group && on_channel(r))
        .filter(|r| runtime_version.is_none_or(|v| r.runtime_version == v))
        .map(|r| (r.platform, r.runtime_version.clone()))
        .collect();
    covers = sorted_covers(covers);
    if covers.is_empty() {
        return Err(ApiError::not_found(
            "release_not_found",
            format!(
                "publish group {group} has no release for runtime version {runtime_version:?} on channel {channel}"
            ),
        ));
    }
    Ok((group, covers))
}

/// Covered pairs in one order (platform, then runtime version), each once.
fn sorted_covers(mut covers: Vec<(Platform, String)>) -> Vec<(Platform, String)> {
    covers.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    covers.dedup();
    covers
}

/// The rollout an Expo publish starts with (`publish expo --rollout P`): its releases and the rollout are recorded
/// in one transaction, so the candidate is never served to everyone, not even for a moment.
pub(crate) async fn start_with_publish(
    state: &AppState,
    app_id: &AppId,
    start: StartRollout,
    releases: &[ExpoRelease],
) -> Result<StoredRollout, ApiError> {
    let catalog = state.catalog(app_id)?;
    if catalog.rollout(start.channel.as_str()).is_some_and(|r| r.rollout.is_active()) {
        return Err(active_elsewhere(&start.channel));
    }
    let group = releases.first().map(|r| r.group_id.clone()).unwrap_or_default();
    let covers = sorted_covers(releases.iter().map(|r| (r.platform, r.runtime_version.clone())).collect());
    let stored = new_rollout(app_id, &start, RolloutTarget::ExpoGroup(group), StableTarget::ExpoPrevious, covers)?;
    record_start(state, &stored, releases, &start.channel).await?;
    Ok(stored)
}

/// Raises the percentage of an active rollout, or changes when it halts itself.
pub(crate) async fn set(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    set: SetRollout,
) -> Result<StoredRollout, ApiError> {
    let catalog = state.catalog(app_id)?;
    let stored = current(&catalog, channel)?;
    let mut rollout = stored.rollout.clone();
    let mut described = Vec::new();
    if let Some(percent) = set.percent {
        rollout = rollout.set_percent(percent).map_err(updraft_core::Failure::from)?;
        described.push(format!("percentage {}", percent));
    }
    if set.max_failure_rate.is_some() || set.min_devices.is_some() {
        let policy = HaltPolicy::new(
            set.max_failure_rate.unwrap_or(rollout.policy().max_failure_rate()),
            set.min_devices.unwrap_or(rollout.policy().min_devices()),
        )
        .map_err(updraft_core::Failure::from)?;
        rollout = rollout.set_policy(policy).map_err(updraft_core::Failure::from)?;
        described.push(format!("max failure rate {}, min devices {}", policy.max_failure_rate(), policy.min_devices()));
    }
    if described.is_empty() {
        return Err(ApiError::bad_request(
            codes::MISSING_FIELD,
            "nothing to change: pass a percentage (--percent), --max-failure-rate or --min-devices",
        ));
    }
    let mut next =
        StoredRollout { rollout, last_change: change("set", &set.by, described.join("; ")), ..stored.clone() };
    update(state, &mut next, stored, &[], None).await?;
    Ok(next)
}

/// Writes `next`, made from `seen` (the rollout as the catalog had it), unless the rollout changed since.
async fn update(
    state: &AppState,
    next: &mut StoredRollout,
    seen: &StoredRollout,
    releases: &[ExpoRelease],
    channel_bundle_id: Option<i64>,
) -> Result<(), ApiError> {
    // The time of the last change is what the store tells versions apart by (to the millisecond, as stored): a
    // change is at least a millisecond after the one it replaces, even when both fall in one millisecond or this
    // instance's clock is behind the one that made the last.
    let at = next.last_change.at.trunc_subsecs(3);
    next.last_change.at = at.max(seen.last_change.at.trunc_subsecs(3) + chrono::Duration::milliseconds(1));
    let next = &*next;
    let app_id = next.rollout.app_id();
    let before = state.catalog(app_id)?.rollout(next.rollout.channel().as_str()).cloned();
    let written = match state.store.update_rollout(next, seen, releases, channel_bundle_id).await {
        Ok(written) => written,
        // Completing points the channel at the candidate, which the store found deleted meanwhile.
        Err(StoreError::NotFound(what)) => {
            return Err(ApiError::client(
                FailureKind::Conflict,
                codes::BUNDLE_VERSION_NOT_FOUND,
                format!("{what} was deleted; halt the rollout instead"),
            ));
        }
        Err(other) => return Err(other.into()),
    };
    if !written {
        state.refresh(app_id).await?;
        return Err(changed_meanwhile(next.rollout.channel()));
    }
    state.refresh(app_id).await?;
    tracing::info!(
        app.id = %app_id, channel.name = %next.rollout.channel(), rollout.id = next.rollout.id().as_str(),
        "rollout {}: {}", next.last_change.action, next.last_change.reason
    );
    audited(state, before.as_ref(), next).await?;
    state.webhooks.send(crate::webhooks::rollout_changed(next));
    Ok(())
}

/// Halts a channel's active rollout: the candidate is no longer offered, and devices running it are moved back to
/// stable on their next check (for Expo, by releases minted in the halt's transaction that republish the stable
/// one, newer than the candidate). The one halt use case: the `/rollout/halt` route and the health decider call it.
///
/// Returns the halted rollout, or `None` when the store found it no longer active (another instance or operator
/// halted or completed it first: nothing was written), or when `request.judged` is a rollout the channel
/// no longer has.
///
/// # Errors
/// 404 `rollout_not_found`, 409 `rollout_already_halted` or `rollout_completed` (from this instance's view).
pub(crate) async fn halt_rollout(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    request: HaltRequest,
) -> Result<Option<StoredRollout>, ApiError> {
    let catalog = state.catalog(app_id)?;
    let stored = current(&catalog, channel)?;
    if request
        .judged
        .as_ref()
        .is_some_and(|judged| judged.rollout.id() != stored.rollout.id() || judged.last_change != stored.last_change)
    {
        return Ok(None);
    }
    let halt = Halt { reason: request.reason, at: Utc::now(), by: request.by, figures: request.figures };
    let rollout = stored.rollout.halt(halt.clone()).map_err(updraft_core::Failure::from)?;
    let releases =
        match stored.rollout.candidate() {
            RolloutTarget::ExpoGroup(group) => ReleaseMint::new(&catalog, channel.as_str(), new_id(), Utc::now())
                .halt_of(&catalog, group, &stored.covers, new_id),
            RolloutTarget::CapgoBundle(_) => vec![],
        };
    let halted = state
        .store
        .halt_rollout(app_id, channel, stored.rollout.id(), &halt, &releases, request.judged.as_ref())
        .await?;
    state.refresh(app_id).await?;
    if !halted {
        return Ok(None);
    }
    let figures =
        halt.figures.map(|f| format!(" ({} of {} devices failed)", f.failures, f.devices)).unwrap_or_default();
    tracing::warn!(
        app.id = %app_id, channel.name = %channel, rollout.id = stored.rollout.id().as_str(),
        halt.by = halt.by.label(), n_releases = releases.len(),
        "rollout of {} on channel {channel} halted by {}: {}{figures}",
        stored.rollout.candidate().label(), halt.by.label(), halt.reason
    );
    let last_change = change("halt", halt.by.label(), halt.reason.clone());
    let halted = StoredRollout { rollout, last_change, ..stored.clone() };
    // The halt is committed and served; now the halt metric and history, then the audit record.
    record_halt(state, &halted, &halt).await;
    audited(state, Some(stored), &halted).await?;
    Ok(Some(halted))
}

/// What only the instance that halted does: keep the halt in the halt history (who, when, why, the figures),
/// count it in `/metrics` and announce it (webhook `rollout.halted`). The halt itself is already committed, so a
/// failure to record it is logged, not returned.
async fn record_halt(state: &AppState, halted: &StoredRollout, halt: &Halt) {
    let rollout = &halted.rollout;
    let figures = halt.figures.unwrap_or_default();
    let policy = rollout.policy();
    let record = updraft_core::HaltRecord {
        app_id: rollout.app_id().clone(),
        channel: rollout.channel().as_str().to_owned(),
        rollout_id: rollout.id().as_str().to_owned(),
        candidate: rollout.candidate().label().to_owned(),
        halted_at: halt.at,
        halted_by: halt.by.label().to_owned(),
        instance: crate::release_health::instance_id().to_owned(),
        reason: halt.reason.clone(),
        figures,
        failure_rate: figures.failure_rate(),
        lower_bound: figures.lower_bound(),
        max_failure_rate: policy.max_failure_rate(),
        min_devices: policy.min_devices(),
    };
    state.metrics.count_halt(matches!(halt.by, HaltCause::Automatic));
    if let Err(error) = state.store.insert_rollout_halt(&record).await {
        tracing::error!(app.id = %record.app_id, channel.name = %record.channel, "recording the halt failed: {error}");
    }
    state.webhooks.send(crate::webhooks::rollout_halted(halted, &record));
}

/// Offers a halted rollout's candidate again, at the same percentage to the same devices. For Expo the candidate is
/// republished as a new group, newer than the release the halt minted, so the devices moved back accept it.
pub(crate) async fn resume(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    by: &str,
) -> Result<StoredRollout, ApiError> {
    let catalog = state.catalog(app_id)?;
    let stored = current(&catalog, channel)?;
    let mut rollout = stored.rollout.resume(Utc::now()).map_err(updraft_core::Failure::from)?;
    let releases = republished_candidate(&catalog, stored);
    if let Some(group) = releases.first().map(|r| r.group_id.clone()) {
        rollout = rollout.with_candidate(RolloutTarget::ExpoGroup(group)).map_err(updraft_core::Failure::from)?;
    }
    let reason = format!("{} offered again to {}", rollout.candidate().label(), rollout.percent());
    let mut next = StoredRollout { rollout, last_change: change("resume", by, reason), ..stored.clone() };
    update(state, &mut next, stored, &releases, None).await?;
    Ok(next)
}

/// An Expo candidate served again after a halt (none for Capgo, or while active).
fn republished_candidate(catalog: &AppCatalog, stored: &StoredRollout) -> Vec<ExpoRelease> {
    match (stored.rollout.candidate(), stored.rollout.state()) {
        (RolloutTarget::ExpoGroup(group), RolloutState::Halted(_)) => ReleaseMint::new(
            catalog,
            stored.rollout.channel().as_str(),
            new_id(),
            Utc::now(),
        )
        .republish_group(catalog, group, &stored.covers, new_id),
        _ => vec![],
    }
}

/// Makes the candidate the channel's release for everyone: a Capgo channel is pointed at the candidate bundle in
/// the same transaction; an Expo candidate halted before is republished newer than the halt's release.
pub(crate) async fn complete(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    by: &str,
) -> Result<StoredRollout, ApiError> {
    let catalog = state.catalog(app_id)?;
    let stored = current(&catalog, channel)?;
    let rollout = stored.rollout.complete(Utc::now()).map_err(updraft_core::Failure::from)?;
    let bundle_id = match stored.rollout.candidate() {
        RolloutTarget::CapgoBundle(version) => Some(
            catalog
                .bundle_by_version(version.as_str())
                .ok_or_else(|| {
                    ApiError::client(
                        FailureKind::Conflict,
                        codes::BUNDLE_VERSION_NOT_FOUND,
                        format!("the candidate bundle {version} was deleted; halt the rollout instead"),
                    )
                })?
                .id,
        ),
        RolloutTarget::ExpoGroup(_) => None,
    };
    let releases = republished_candidate(&catalog, stored);
    let reason = format!("{} is channel {channel}'s release for everyone", rollout.candidate().label());
    let mut next = StoredRollout { rollout, last_change: change("complete", by, reason), ..stored.clone() };
    update(state, &mut next, stored, &releases, bundle_id).await?;
    Ok(next)
}

// The audit log: every rollout change is recorded under the key (or `automatic`, the health rule) that made it.

/// Appends the audit record of a rollout change: the status before and after, by `after.last_change.by`.
async fn audited(state: &AppState, before: Option<&StoredRollout>, after: &StoredRollout) -> Result<(), ApiError> {
    let view = |stored: &StoredRollout| {
        let status = crate::contract::rollouts::RolloutStatus::of(
            stored.rollout.app_id(),
            stored.rollout.channel(),
            Some(stored),
            HealthFigures::default(),
        );
        serde_json::to_value(status).unwrap_or_default()
    };
    let action = match after.last_change.action.as_str() {
        "start" => "rollout.start",
        "set" => "rollout.set",
        "halt" => "rollout.halt",
        "resume" => "rollout.resume",
        "complete" => "rollout.complete",
        _ => "rollout.change",
    };
    let change = Change {
        app_id: Some(after.rollout.app_id()),
        channel: Some(after.rollout.channel().as_str()),
        action,
        before: before.map(view),
        after: Some(view(after)),
    };
    audit::append(state, &after.last_change.by, change).await
}

/// Applies Capgo's rollout fields of `POST /channel` (a channel written just before) with Updraft's rollouts:
/// `promoteToStable` completes; `rollback`, `rolloutPaused: true`, `rolloutEnabled: false` or a `null`
/// `rolloutVersion` halt; a `rolloutVersion` starts a rollout of it (at the given percentage, else 0) unless it
/// is already the active candidate; `rolloutPaused: false` resumes; a percentage alone raises. Returns the
/// rollout afterwards.
pub(crate) async fn apply_capgo_fields(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    fields: &updraft_capgo::management::ChannelRollout,
    by: &str,
) -> Result<Option<StoredRollout>, ApiError> {
    let percent =
        fields.percent_bps.map(RolloutPercent::from_basis_points).transpose().map_err(updraft_core::Failure::from)?;
    let current = || state.catalog(app_id).map(|catalog| catalog.rollout(channel.as_str()).cloned());
    if fields.promote_to_stable {
        return complete(state, app_id, channel, by).await.map(Some);
    }
    let stops =
        fields.rollback || fields.version == Some(None) || fields.enabled == Some(false) || fields.paused == Some(true);
    if stops {
        if !current()?.is_some_and(|stored| stored.rollout.is_active()) {
            return current();
        }
        let reason = fields.pause_reason.clone().unwrap_or_else(|| "paused through POST /channel".to_owned());
        let request = HaltRequest { by: HaltCause::Operator(by.to_owned()), reason, figures: None, judged: None };
        halt_rollout(state, app_id, channel, request).await?;
        return current();
    }
    if let Some(Some(version)) = &fields.version {
        let version = BundleVersion::parse(version)
            .map_err(|e| ApiError::bad_request(codes::INVALID_VERSION, format!("rolloutVersion: {e}")))?;
        let same = current()?.is_some_and(|stored| {
            stored.rollout.is_active() && stored.rollout.candidate() == &RolloutTarget::CapgoBundle(version.clone())
        });
        if !same {
            let start = StartRollout {
                channel: channel.clone(),
                candidate: Candidate::CapgoVersion(version),
                percent: percent.unwrap_or(RolloutPercent::ZERO),
                policy: HaltPolicy::default(),
                by: by.to_owned(),
            };
            return self::start(state, app_id, start).await.map(Some);
        }
    }
    if fields.paused == Some(false) && current()?.is_some_and(|s| matches!(s.rollout.state(), RolloutState::Halted(_)))
    {
        resume(state, app_id, channel, by).await?;
    }
    if let Some(percent) = percent
        && current()?.is_some_and(|stored| stored.rollout.is_active() && stored.rollout.percent() != percent)
    {
        let change =
            SetRollout { percent: Some(percent), max_failure_rate: None, min_devices: None, by: by.to_owned() };
        set(state, app_id, channel, change).await?;
    }
    current()
}
