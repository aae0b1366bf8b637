//! What the console shows that no API use case gathers in one place: an app's overview (catalog, stats, each
//! rollout with its health figures, the newest audit records) and a device lookup. Reads only: every console action
//! calls the same use cases as the API (`ops::rollouts`, `ops::channels`, `ops::devices`, `ops::expo_releases`).

use std::sync::Arc;

use updraft_core::{
    AppCatalog, AppId, AuditRecord, DeviceId, DeviceIdentity, DeviceReport, HealthFigures, RolloutCheck, Serve,
    StatsEvent, StatsSummary, StoredRollout, select_rollout,
};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::AppState;

/// Events the overview reads (the adoption chart is drawn from them).
const OVERVIEW_EVENTS: u64 = 2000;
/// Audit records the overview shows.
const OVERVIEW_AUDIT: u64 = 10;

/// An app, as the overview page shows it.
pub(crate) struct AppOverview {
    pub(crate) catalog: Arc<AppCatalog>,
    pub(crate) summary: StatsSummary,
    pub(crate) rollouts: Vec<(StoredRollout, HealthFigures)>,
    pub(crate) audit: Vec<AuditRecord>,
}

/// Gathers an app's overview.
pub(crate) async fn app_overview(state: &AppState, app_id: &AppId) -> Result<AppOverview, ApiError> {
    let catalog = state.catalog(app_id)?;
    let summary = state.store.stats_summary(app_id, OVERVIEW_EVENTS).await?;
    let mut rollouts = Vec::new();
    for stored in catalog.rollouts() {
        let figures = super::rollouts::figures(state, stored).await?;
        rollouts.push((stored.clone(), figures));
    }
    rollouts.sort_by(|a, b| a.0.rollout.channel().as_str().cmp(b.0.rollout.channel().as_str()));
    let audit = state.store.list_audit(Some(app_id), OVERVIEW_AUDIT).await?;
    Ok(AppOverview { catalog, summary, rollouts, audit })
}

/// What the rollout of one channel decides for one device.
pub(crate) struct RolloutOffer {
    pub(crate) channel: String,
    pub(crate) candidate: String,
    pub(crate) serve: Serve,
}

/// A device, by Capgo device id or Expo `EAS-Client-ID`.
pub(crate) struct DeviceLookup {
    /// What a Capgo device last reported (Expo clients report nothing).
    pub(crate) report: Option<DeviceReport>,
    /// Its override (channel, pin), as the audit log describes one.
    pub(crate) override_view: Option<serde_json::Value>,
    /// What each channel's rollout offers it, by its sticky bucket.
    pub(crate) offers: Vec<RolloutOffer>,
    /// Its recent events, newest first.
    pub(crate) events: Vec<StatsEvent>,
}

/// Looks a device up by the id it sends.
pub(crate) async fn device_lookup(state: &AppState, app_id: &AppId, raw_id: &str) -> Result<DeviceLookup, ApiError> {
    let catalog = state.catalog(app_id)?;
    let device_id = DeviceId::parse(&raw_id.to_ascii_lowercase()).ok();
    let report = match &device_id {
        Some(device_id) => state.store.get_device(app_id, device_id).await?,
        None => None,
    };
    let override_view = device_id.as_ref().and_then(|device_id| {
        catalog.override_for(device_id).map(|target| super::devices::override_view(device_id, target, &catalog))
    });
    let capgo_identity = device_id.as_ref().map(DeviceIdentity::from_device_id);
    let expo_identity = DeviceIdentity::from_eas_client_id(raw_id);
    let mut offers = Vec::new();
    for stored in catalog.rollouts() {
        let rollout = &stored.rollout;
        let identity = match rollout.candidate() {
            updraft_core::RolloutTarget::CapgoBundle(_) => capgo_identity.as_ref(),
            updraft_core::RolloutTarget::ExpoGroup(_) => expo_identity.as_ref(),
        };
        let runs_candidate = report.as_ref().is_some_and(|r| r.version_name == rollout.candidate().label());
        let check = RolloutCheck { identity, overridden: override_view.is_some(), runs_candidate };
        offers.push(RolloutOffer {
            channel: rollout.channel().as_str().to_owned(),
            candidate: rollout.candidate().label().to_owned(),
            serve: select_rollout(Some(rollout), &check),
        });
    }
    let events = match &device_id {
        Some(device_id) => state
            .store
            .stats_summary(app_id, OVERVIEW_EVENTS)
            .await?
            .recent
            .into_iter()
            .filter(|event| &event.device_id == device_id)
            .take(20)
            .collect(),
        None => Vec::new(),
    };
    Ok(DeviceLookup { report, override_view, offers, events })
}

/// The newest audit records of an app.
pub(crate) async fn audit_log(state: &AppState, app_id: &AppId, limit: u64) -> Result<Vec<AuditRecord>, ApiError> {
    state.catalog(app_id)?;
    Ok(state.store.list_audit(Some(app_id), limit).await?)
}

/// Whether a signed-in key still authenticates (a revoked key ends its sessions at their next request).
pub(crate) async fn still_valid(state: &AppState, caller: &Caller) -> Result<bool, ApiError> {
    match caller.key_id() {
        None => Ok(state.settings.admin_api_key.is_some()),
        Some(id) => Ok(state.store.find_api_key(id).await?.is_some_and(|record| record.is_active())),
    }
}
