//! Ageing out the rows devices create without a key (`updraft_core::DeviceTable`: device reports, installs,
//! release health, stats events): a background task on every instance deletes, in batches of
//! [`crate::ops::device_ageing::BATCH`] rows, the rows not seen for the retention (`device_retention_days`, 90) and,
//! past an app's cap (`max_devices_per_app`, 5 000 000 devices), its least recently seen rows.
//!
//! Past the cap the oldest rows are evicted rather than new devices refused: a real device checks in at every app
//! launch, so the rows an id-inventing flood pushes out come back at the device's next check, and once the flood
//! stops its rows are the oldest and go first. Refusing new ids instead would keep every device that arrives after
//! a flood out of `GET /device` and release health until the flood's rows aged out (90 days). Between two rounds
//! (`device_ageing_interval_seconds`, 600) an app can exceed its cap by what arrives in that time.
//!
//! Nothing here is on the request path: checks and stats only queue their writes (`crate::write_behind`), and the
//! deletes take turns with the write-behind batches on the device writer's connection. Several instances may run
//! the task at once: each deletes through the same cut-off, and PostgreSQL skips rows another one holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use updraft_core::DeviceTable;

use crate::config::Settings;

/// The environment variables of the ageing settings.
pub(crate) const AGEING_ENV: [&str; 4] = [
    "UPDRAFT_DEVICE_RETENTION_DAYS",
    "UPDRAFT_DEVICE_RETENTION_SECONDS",
    "UPDRAFT_MAX_DEVICES_PER_APP",
    "UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS",
];

/// Applies the `AGEING_ENV` variables; `number` reads one as a whole number.
pub(crate) fn apply_env(
    settings: &mut Settings,
    number: &impl Fn(&str) -> anyhow::Result<Option<u64>>,
) -> anyhow::Result<()> {
    let [days, seconds, max_devices, interval] = AGEING_ENV;
    if let Some(value) = number(days)? {
        settings.device_retention_days = value;
    }
    if let Some(value) = number(seconds)? {
        settings.device_retention_seconds = Some(value);
    }
    if let Some(value) = number(max_devices)? {
        settings.max_devices_per_app = value;
    }
    if let Some(value) = number(interval)? {
        settings.device_ageing_interval_seconds = value;
    }
    Ok(())
}

/// Checks the ageing settings.
pub(crate) fn validate(settings: &Settings) -> anyhow::Result<()> {
    let [days, seconds, _, interval] = AGEING_ENV;
    if settings.device_retention_days > 36_500 {
        bail!("{days}: use 0 (keep every row) to 36500 days, got {}", settings.device_retention_days);
    }
    if let Some(value) = settings.device_retention_seconds
        && !(1..=36_500 * 86_400).contains(&value)
    {
        bail!("{seconds}: use 1 to 3153600000 seconds, got {value}");
    }
    if !(1..=86_400).contains(&settings.device_ageing_interval_seconds) {
        bail!("{interval}: use 1 to 86400 seconds, got {}", settings.device_ageing_interval_seconds);
    }
    Ok(())
}

/// What the ageing task applies, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AgeingPolicy {
    /// Rows not seen for this long are deleted; `None` keeps them.
    pub(crate) retention: Option<chrono::TimeDelta>,
    /// Devices an app keeps (0: no cap); each table's cap is `DeviceTable::cap` of it.
    pub(crate) max_devices: u64,
    /// Time between two rounds.
    pub(crate) interval: Duration,
}

impl AgeingPolicy {
    pub(crate) fn of(settings: &Settings) -> Self {
        let seconds = settings.device_retention_seconds.unwrap_or(settings.device_retention_days * 86_400);
        Self {
            retention: (seconds > 0).then(|| chrono::TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))),
            max_devices: settings.max_devices_per_app,
            interval: Duration::from_secs(settings.device_ageing_interval_seconds),
        }
    }
}

/// Why rows were deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Not seen for the retention.
    Retention,
    /// Past the app's cap, least recently seen first.
    Cap,
}

/// What the task deleted, for `/metrics`.
#[derive(Default)]
pub(crate) struct AgeingCounts {
    /// By table (in `DeviceTable::ALL` order) and reason (retention, cap).
    deleted: [[AtomicU64; 2]; DeviceTable::ALL.len()],
    rounds: AtomicU64,
    failed_rounds: AtomicU64,
}

impl AgeingCounts {
    pub(crate) fn add(&self, table: DeviceTable, reason: Reason, n: u64) {
        let row = DeviceTable::ALL.iter().position(|t| *t == table).unwrap_or(0);
        self.deleted[row][usize::from(reason == Reason::Cap)].fetch_add(n, Ordering::Relaxed);
    }

    /// Rows deleted from `table` for `reason` so far.
    pub(crate) fn deleted(&self, table: DeviceTable, reason: Reason) -> u64 {
        let row = DeviceTable::ALL.iter().position(|t| *t == table).unwrap_or(0);
        self.deleted[row][usize::from(reason == Reason::Cap)].load(Ordering::Relaxed)
    }

    /// Appends the counters in Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(
            "# HELP updraft_device_rows_deleted_total Rows devices created that this instance deleted, by table and \
             reason: retention (not seen for UPDRAFT_DEVICE_RETENTION_DAYS) or cap (past UPDRAFT_MAX_DEVICES_PER_APP, \
             least recently seen first).\n# TYPE updraft_device_rows_deleted_total counter\n",
        );
        for table in DeviceTable::ALL {
            for (reason, label) in [(Reason::Retention, "retention"), (Reason::Cap, "cap")] {
                let _ = writeln!(
                    out,
                    "updraft_device_rows_deleted_total{{table=\"{}\",reason=\"{label}\"}} {}",
                    table.name(),
                    self.deleted(table, reason)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP updraft_device_ageing_rounds_total Rounds of the device-row ageing task, by outcome.\n\
             # TYPE updraft_device_ageing_rounds_total counter\n\
             updraft_device_ageing_rounds_total{{outcome=\"done\"}} {}\n\
             updraft_device_ageing_rounds_total{{outcome=\"failed\"}} {}",
            self.rounds.load(Ordering::Relaxed),
            self.failed_rounds.load(Ordering::Relaxed)
        );
    }
}

/// Starts the task: a round every `interval`, the first one `interval` after start-up. A failed round (the
/// database unavailable) is logged and the next one tries again.
pub(crate) fn spawn(state: actix_web::web::Data<crate::state::AppState>) -> tokio::task::JoinHandle<()> {
    let policy = AgeingPolicy::of(&state.settings);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + policy.interval, policy.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            match crate::ops::device_ageing::age_out(&state, &policy, chrono::Utc::now()).await {
                Ok(deleted) => {
                    state.device_ageing.rounds.fetch_add(1, Ordering::Relaxed);
                    if deleted > 0 {
                        let elapsed_ms = started.elapsed().as_millis() as u64;
                        tracing::info!(deleted, elapsed_ms, "aged out rows devices created");
                    }
                }
                Err(error) => {
                    state.device_ageing.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("ageing device rows failed, retrying next round: {error}");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_follows_the_settings() {
        let mut settings = Settings::default();
        let policy = AgeingPolicy::of(&settings);
        assert_eq!(policy.retention, Some(chrono::TimeDelta::days(90)));
        assert_eq!((policy.max_devices, policy.interval), (5_000_000, Duration::from_secs(600)));
        let vars = [("UPDRAFT_DEVICE_RETENTION_SECONDS", 3), ("UPDRAFT_MAX_DEVICES_PER_APP", 10)];
        apply_env(&mut settings, &|name| Ok(vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))).unwrap();
        assert_eq!(AgeingPolicy::of(&settings).retention, Some(chrono::TimeDelta::seconds(3)));
        assert_eq!(AgeingPolicy::of(&settings).max_devices, 10);
        settings.device_retention_seconds = None;
        settings.device_retention_days = 0;
        assert_eq!(AgeingPolicy::of(&settings).retention, None, "0 days keeps every row");
        settings.device_ageing_interval_seconds = 0;
        assert!(validate(&settings).unwrap_err().to_string().contains("UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS"));
    }

    #[test]
    fn counts_render_per_table_and_reason() {
        let counts = AgeingCounts::default();
        counts.add(DeviceTable::StatsEvents, Reason::Cap, 7);
        counts.add(DeviceTable::Devices, Reason::Retention, 2);
        let mut out = String::new();
        counts.render(&mut out);
        assert!(out.contains("updraft_device_rows_deleted_total{table=\"stats_events\",reason=\"cap\"} 7\n"), "{out}");
        assert!(out.contains("updraft_device_rows_deleted_total{table=\"devices\",reason=\"retention\"} 2\n"));
        assert!(out.contains("updraft_device_rows_deleted_total{table=\"devices\",reason=\"cap\"} 0\n"));
        assert!(out.contains("updraft_device_ageing_rounds_total{outcome=\"done\"} 0\n"));
    }
}
