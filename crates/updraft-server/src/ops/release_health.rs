//! Release health for operators: per release and channel, the devices offered it, running it and failed on it
//! (written behind from update checks and stats, `crate::release_health`), with the app's recorded halts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use updraft_core::{AppCatalog, AppId};

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

/// The health decision over the active rollouts this instance knows, a round at a time.
///
/// A rollout's figures change only when release-health rows of its app are written, and the rule's verdict also when
/// the rollout itself changes; so a round looks again only at apps whose rows this instance's writer wrote since it
/// last looked ([`crate::write_behind::WriteQueue::take_health_written`]) or whose catalog was reloaded, and at every
/// app in the first round. With several instances, the one whose writer wrote a failure looks again, and counts what
/// every instance wrote.
///
/// Reading a rollout's figures counts its devices in the database, a cost that grows with the fleet; so an app is
/// looked at again no sooner than [`DECISION_SPACING`] times as long as its last look took after it (and never more
/// often than every round): the decision costs at most about a tenth of one core however large the fleet, and a
/// halt comes later for a very large fleet (a look of 100 ms, at about a million rows, spaces them by a second).
#[derive(Default)]
pub(crate) struct Decider {
    /// The catalog each app was last looked at with (a reloaded catalog is another `Arc`), and when it may be
    /// looked at again.
    decided: HashMap<AppId, (Arc<AppCatalog>, Instant)>,
    /// Apps whose release-health rows were written since they were last looked at.
    written: HashSet<AppId>,
}

/// A look at an app's rollouts is followed by at least this many times its duration without one.
pub(crate) const DECISION_SPACING: u32 = 9;

impl Decider {
    /// One round: for each app due (see above), every active rollout's figures since its health window opened
    /// (`crate::ops::rollouts::figures`), the rule (`Rollout::check_health`, the 95 % Wilson lower bound above the
    /// maximum with enough devices), and, when it says so, the one halt use case (`crate::ops::rollouts::halt_rollout`),
    /// which halts only if the rollout is still active in the database. Returns the rollouts this instance halted.
    /// Errors are logged, and the app is looked at again next round.
    pub(crate) async fn round(&mut self, state: &AppState) -> Vec<updraft_core::StoredRollout> {
        self.written.extend(state.writes.take_health_written());
        let mut halted = Vec::new();
        let app_ids = state.index.app_ids();
        let known: HashSet<&AppId> = app_ids.iter().collect();
        self.decided.retain(|app_id, _| known.contains(app_id));
        self.written.retain(|app_id| known.contains(app_id));
        for app_id in app_ids.iter().cloned() {
            let Some(catalog) = state.index.get(&app_id) else { continue };
            let started = Instant::now();
            let due = match self.decided.get(&app_id) {
                None => true,
                Some((_, not_before)) if started < *not_before => false,
                Some((last, _)) => !Arc::ptr_eq(last, &catalog) || self.written.contains(&app_id),
            };
            if !due {
                continue;
            }
            self.written.remove(&app_id);
            match decide(state, &app_id, &catalog, &mut halted).await {
                Ok(()) => {
                    let not_before = Instant::now() + started.elapsed() * DECISION_SPACING;
                    self.decided.insert(app_id, (catalog, not_before));
                }
                Err(()) => {
                    self.decided.remove(&app_id);
                }
            }
        }
        halted
    }
}

/// The decision over one app's active rollouts; `Err` when a rollout's figures could not be read.
async fn decide(
    state: &AppState,
    app_id: &AppId,
    catalog: &AppCatalog,
    halted: &mut Vec<updraft_core::StoredRollout>,
) -> Result<(), ()> {
    use updraft_core::HaltCause;

    let mut result = Ok(());
    for stored in catalog.rollouts().filter(|stored| stored.rollout.is_active()) {
        let figures = match crate::ops::rollouts::figures(state, stored).await {
            Ok(figures) => figures,
            Err(error) => {
                // Debug only: this repeats every second while the database is down, which the writer already
                // reports.
                tracing::debug!(app.id = %app_id, "reading a rollout's health failed, retrying next round: {error}");
                result = Err(());
                continue;
            }
        };
        let verdict = stored.rollout.check_health(figures.devices, figures.failures, chrono::Utc::now());
        state.metrics.count_health_check();
        tracing::debug!(
            app.id = %app_id, channel.name = %stored.rollout.channel(), rollout.id = stored.rollout.id().as_str(),
            "rollout health of {} on {app_id} channel {}: {} of {} devices failed, {}",
            stored.rollout.candidate().label(), stored.rollout.channel(), figures.failures, figures.devices,
            if verdict.is_some() { "halting" } else { "no halt" }
        );
        let Some((_, reason)) = verdict else { continue };
        let request = crate::ops::rollouts::HaltRequest {
            by: HaltCause::Automatic,
            reason: reason.to_string(),
            figures: Some(figures),
            judged: Some(stored.clone()),
        };
        let channel = stored.rollout.channel();
        match crate::ops::rollouts::halt_rollout(state, app_id, channel, request).await {
            Ok(Some(rollout)) => halted.push(rollout),
            // Another instance (or an operator) halted or completed it first.
            Ok(None) => {}
            Err(error) => tracing::debug!(app.id = %app_id, channel.name = %channel, "no halt: {error}"),
        }
    }
    result
}
