//! Release-health signals from update checks, recorded behind: what a Capgo check or an Expo manifest request says
//! about which release a device was offered, runs and failed on (`updraft_core::release_health`), and the Expo
//! device records (by `EAS-Client-ID`).
//!
//! On the request path this only packs signals ([`HealthSignals`], one buffer per check), which travel with the
//! device's report in its entry of the coalescing write-behind map (one offer per check; no database, no storage);
//! the writer task resolves the releases against the release index and writes one row per (app, release, device)
//! ([`rows`]). Capgo's stats events reach the same rows through the store, in the
//! stats transaction.

use chrono::{DateTime, Utc};
use updraft_core::{
    AppCatalog, AppId, Bundle, DeviceId, DeviceReportRef, ExpoRelease, HealthObservation, HealthProtocol, HealthSignal,
    HealthSignalRef, HealthSignals, KnownRelease, PackedReport, Platform, ReleaseDeviceRow, UpdateCheck,
    merge_observations, resolve_channel,
};
use updraft_expo::health_headers::HealthHeaders;

use crate::release_index::ReleaseIndex;
use crate::write_behind::WriteQueue;

/// A Capgo check's signals: the bundle it offered, and the bundle the device says it runs when the app has it (a
/// device on its builtin bundle names a native version, which is no release). Both count under the channel the
/// check resolved. The caller offers them with the device's report ([`WriteQueue::push`]).
pub(crate) fn capgo_check_signals(
    catalog: &AppCatalog,
    check: &UpdateCheck,
    offered: Option<&Bundle>,
    now: DateTime<Utc>,
) -> HealthSignals {
    let running = catalog
        .bundle_by_version(&check.version_name)
        .filter(|running| offered.is_none_or(|offered| offered.id != running.id));
    if offered.is_none() && running.is_none() {
        return HealthSignals::default();
    }
    let route = resolve_channel(catalog, &check.device_id, check.platform, check.default_channel.as_deref());
    let channel = route.map_or("", |route| route.channel().name.as_str());
    let signal = |signal, release| HealthSignalRef {
        signal,
        protocol: HealthProtocol::Capgo,
        release,
        channel,
        detail: "",
        at: now,
    };
    let offered = offered.map(|bundle| signal(HealthSignal::Offered, bundle.version.as_str()));
    let running = running.map(|bundle| signal(HealthSignal::Running, bundle.version.as_str()));
    match (offered, running) {
        (Some(offered), Some(running)) => HealthSignals::pack(&[offered, running]),
        (one, other) => HealthSignals::pack(one.or(other).as_slice()),
    }
}

/// What an Expo manifest request says, beyond what selection reads.
pub(crate) struct ExpoCheckSignals<'a> {
    /// The health headers.
    pub(crate) headers: HealthHeaders<'a>,
    /// Platform.
    pub(crate) platform: Platform,
    /// Runtime version.
    pub(crate) runtime_version: &'a str,
    /// The channel the request asked for (or the app's default).
    pub(crate) channel: &'a str,
    /// `Expo-Current-Update-ID`, lowercased.
    pub(crate) current_update_id: Option<&'a str>,
    /// `Expo-Embedded-Update-ID`, lowercased.
    pub(crate) embedded_update_id: Option<&'a str>,
}

/// An Expo manifest request from a device with an `EAS-Client-ID` (without one there is no one to count): its
/// device record, the release the answer offers, the update it runs (unless that is the embedded one), and the
/// updates it lists as failed, with the fatal error it sent along.
pub(crate) fn record_expo_check(
    writes: &WriteQueue,
    app_id: &AppId,
    request: &ExpoCheckSignals<'_>,
    offered: Option<&ExpoRelease>,
    now: DateTime<Utc>,
) {
    let Some(device_id) = request.headers.client_id.and_then(|id| DeviceId::parse(id).ok()) else { return };
    let running = request.current_update_id.filter(|id| Some(*id) != request.embedded_update_id);
    let device = PackedReport::new(&DeviceReportRef {
        app_id,
        device_id: &device_id,
        platform: request.platform,
        version_name: request.current_update_id.unwrap_or_default(),
        version_build: request.runtime_version,
        version_code: "",
        version_os: "",
        plugin_version: "",
        custom_id: "",
        is_prod: true,
        is_emulator: false,
        install_source: "expo",
        default_channel: request.channel,
        key_id: "",
        seen_at: now,
    });
    let signal = |signal, release, detail| HealthSignalRef {
        signal,
        protocol: HealthProtocol::Expo,
        release,
        channel: request.channel,
        detail,
        at: now,
    };
    let mut signals = Vec::new();
    if let Some(release) = offered {
        signals.push(signal(HealthSignal::Offered, release.id.as_str(), ""));
    }
    if let Some(id) = running {
        signals.push(signal(HealthSignal::Running, id, ""));
    }
    let fatal_error = request.headers.fatal_error.unwrap_or_default();
    for id in request.headers.failed_update_ids() {
        signals.push(signal(HealthSignal::Failed, id, fatal_error));
    }
    writes.push(device, HealthSignals::pack(&signals));
}

/// The release a signal names, as the index knows it now: a Capgo bundle of the app by version, or an Expo release
/// by id (counted under the channel it was published on, in its publish group). `None` for anything else: an
/// embedded Expo update, a bundle deleted since.
pub(crate) fn known_release(catalog: &AppCatalog, observation: &HealthObservation) -> Option<KnownRelease> {
    match observation.protocol {
        HealthProtocol::Capgo => catalog.bundle_by_version(&observation.release).map(|bundle| KnownRelease {
            release_id: bundle.version.as_str().to_owned(),
            group_id: bundle.version.as_str().to_owned(),
            channel: None,
        }),
        HealthProtocol::Expo => catalog.expo_release(&observation.release).map(|release| KnownRelease {
            release_id: release.id.clone(),
            group_id: release.group_id.clone(),
            channel: Some(release.channel.clone()),
        }),
    }
}

/// The rows a batch of signals becomes (in the writer task).
pub(crate) fn rows(
    index: &ReleaseIndex,
    observations: impl Iterator<Item = HealthObservation>,
) -> Vec<ReleaseDeviceRow> {
    let observations: Vec<HealthObservation> = observations.collect();
    // One index lookup per app of the batch.
    let mut catalogs: std::collections::HashMap<AppId, Option<std::sync::Arc<AppCatalog>>> = Default::default();
    for observation in &observations {
        if !catalogs.contains_key(&observation.app_id) {
            catalogs.insert(observation.app_id.clone(), index.get(&observation.app_id));
        }
    }
    merge_observations(observations, |observation| {
        known_release(catalogs.get(&observation.app_id)?.as_deref()?, observation)
    })
}

/// This process's id in halt records and logs: `<host>-<pid>-<random>`, made once.
pub(crate) fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "updraft".to_owned());
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &random[..8])
    })
}

/// How often each instance runs the health decision over its active rollouts.
pub(crate) const DECISION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs a round of the [`crate::ops::release_health::Decider`] every [`DECISION_INTERVAL`], for as long as the
/// gateway runs.
/// Every instance runs it; the conditional halt in the store lets exactly one of them halt a rollout.
pub(crate) fn spawn_decider(state: actix_web::web::Data<crate::state::AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DECISION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut decider = crate::ops::release_health::Decider::default();
        loop {
            tick.tick().await;
            decider.round(&state).await;
        }
    })
}
