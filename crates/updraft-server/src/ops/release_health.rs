//! Release health for operators: per release and channel, the devices offered it, running it and failed on it
//! (written behind from update checks and stats, `crate::release_health`), with the app's recorded halts.

use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::contract::release_health::{HaltEntry, ReleaseHealthAnswer, ReleaseHealthEntry};
use crate::ops::AppState;

/// The health of an app's releases (of one channel when given).
pub(crate) async fn report(
    state: &AppState,
    app_id: &AppId,
    channel: Option<&str>,
) -> Result<ReleaseHealthAnswer, ApiError> {
    let releases = state.store.release_health(app_id, channel).await?;
    let halts = state.store.rollout_halts(app_id, channel).await?;
    Ok(ReleaseHealthAnswer {
        app_id: app_id.as_str().to_owned(),
        channel: channel.map(str::to_owned),
        releases: releases.iter().map(ReleaseHealthEntry::from).collect(),
        halts: halts.iter().map(HaltEntry::from).collect(),
    })
}

/// The health decision, once, over every active rollout this instance knows: the candidate's figures since the
/// rollout's health window opened (`crate::ops::rollouts::figures`), the rule (`Rollout::check_health`, the 95 %
/// Wilson lower bound above the maximum with enough devices), and, when it says so, the one halt use case
/// (`crate::ops::rollouts::halt_rollout`), which halts only if the rollout is still active in the database. Returns
/// the rollouts this instance halted. Errors are logged; the next round tries again.
pub(crate) async fn decide(state: &AppState) -> Vec<updraft_core::StoredRollout> {
    use updraft_core::HaltCause;

    let mut halted = Vec::new();
    for app_id in state.index.app_ids() {
        let Some(catalog) = state.index.get(&app_id) else { continue };
        for stored in catalog.rollouts().filter(|stored| stored.rollout.is_active()) {
            let figures = match crate::ops::rollouts::figures(state, stored).await {
                Ok(figures) => figures,
                Err(error) => {
                    // Debug only: this repeats every second while the database is down, which the writer
                    // already reports.
                    tracing::debug!(app.id = %app_id, "reading a rollout's health failed, retrying next round: {error}");
                    continue;
                }
            };
            let now = chrono::Utc::now();
            let Some((_, reason)) = stored.rollout.check_health(figures.devices, figures.failures, now) else {
                continue;
            };
            let request = crate::ops::rollouts::HaltRequest {
                by: HaltCause::Automatic,
                reason: reason.to_string(),
                figures: Some(figures),
                rollout_id: Some(stored.rollout.id().clone()),
            };
            let channel = stored.rollout.channel();
            match crate::ops::rollouts::halt_rollout(state, &app_id, channel, request).await {
                Ok(Some(rollout)) => halted.push(rollout),
                // Another instance (or an operator) halted or completed it first.
                Ok(None) => {}
                Err(error) => tracing::debug!(app.id = %app_id, channel.name = %channel, "no halt: {error}"),
            }
        }
    }
    halted
}
