//! Device reports and stats events are written behind, never on the request path.
//!
//! Device reports coalesce in memory by (app, device) ([`crate::coalesce`]): the newest report of a device replaces
//! the older one until it is written, so memory is bounded by distinct devices, not by request rate, and nothing is
//! shed at any request rate below the map's capacity (`device_queue_capacity` devices; past it, reports of further
//! devices are shed and counted, never silently). A check's release-health signals travel in the same entry as its
//! device report ([`CheckReport`]): one offer per check, and a replaced entry keeps the signals the newer check does
//! not repeat. One task takes every pending entry every [`FLUSH_INTERVAL`] and writes them in batches of at most
//! [`DEVICE_BATCH`] devices: the device rows, then the release-health rows of the same entries.
//!
//! Stats events go through a bounded queue, all or nothing per batch: a batch that does not fit is refused
//! (`/stats` answers 429 with `Retry-After`, and the plugin sends it again later), so a resent batch is never counted twice. Before
//! a batch of events is written, the pending device reports are, so events are judged against what the devices
//! reported last.
//!
//! While the database is unavailable (PostgreSQL restarting, SQLite locked by another process) the task holds its
//! batch and retries with a back-off until the write succeeds; device reports keep coalescing meanwhile (new devices
//! up to the capacity) and the stats queue absorbs events up to its capacity. Only a write the database rejects for
//! good is dropped (after three attempts, logged and counted). On shutdown, everything acknowledged is written
//! before the task ends.
//!
//! When a batch holds a rollback (`update_fail`), the app's catalog is reloaded so the failed version stops being
//! offered to that device.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use updraft_core::{
    AppId, DeviceReportView, HealthObservation, HealthSignals, MetadataStore, PackedReport, StatsEvent,
};

use crate::coalesce::{Coalesced, Coalescer, Counts, fingerprint};
use crate::release_index::ReleaseIndex;

/// Stats events taken from the queue at once.
const MAX_BATCH: usize = 1000;

/// Device reports written in one transaction. Large, because SQLite writes every page a transaction touches, and
/// reports of random devices touch the whole devices table: one transaction of 50 000 rows costs far less than
/// five of 10 000. Bounded, so a write holds the database (SQLite's single writer lock, PostgreSQL row locks) for
/// about half a second at most; a management write may wait that long during a burst of first-seen devices.
pub(crate) const DEVICE_BATCH: usize = 50_000;

/// How often pending device reports are written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The stats queue never holds more events than this, whatever `device_queue_capacity` says.
const STATS_QUEUE_MAX: usize = 50_000;

/// What one check reports, waiting in the map as one entry per (app, device): the device's newest report and the
/// release-health signals of its checks not written yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckReport {
    /// The device report (the key is its app and device).
    pub(crate) device: PackedReport,
    /// The signals ([`crate::release_health`]), possibly none.
    pub(crate) signals: HealthSignals,
}

impl Coalesced for CheckReport {
    fn key(&self) -> &[u8] {
        self.device.key()
    }

    fn content(&self) -> &[u8] {
        self.device.content()
    }

    fn fingerprint(&self) -> u64 {
        let device = fingerprint(self.device.content());
        if self.signals.is_empty() {
            return device;
        }
        device ^ fingerprint(self.signals.content()).rotate_left(29)
    }

    /// The newest device report wins; signals of the older entry that this check does not repeat are kept.
    fn absorb(&mut self, older: Self) {
        self.signals.absorb(&older.signals);
    }
}

/// The producer side, held by request handlers.
#[derive(Clone)]
pub(crate) struct WriteQueue {
    /// Device reports with their release-health signals, one entry per (app, device).
    reports: Arc<Coalescer<CheckReport>>,
    sender: mpsc::Sender<StatsEvent>,
    stats_refused: Arc<AtomicU64>,
    health_written: Arc<HealthWritten>,
}

impl WriteQueue {
    /// Offers what a check reports without waiting: it replaces the device's pending entry (keeping the older
    /// entry's signals this one does not repeat), is dropped when it says what the device said last, or is shed
    /// (and counted) when the map is full.
    pub(crate) fn push(&self, device: PackedReport, signals: HealthSignals) {
        self.reports.offer(CheckReport { device, signals });
    }

    /// Offers a device report that carries no release-health signal.
    #[cfg(test)]
    pub(crate) fn push_device(&self, report: PackedReport) {
        self.push(report, HealthSignals::default());
    }

    /// Queues a device's stats events without waiting, all or none: `false` (nothing queued) when the queue has
    /// no room for all of them, so a resent batch is never counted twice.
    #[must_use]
    pub(crate) fn push_stats(&self, events: Vec<StatsEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        match self.sender.try_reserve_many(events.len()) {
            Ok(permits) => {
                for (permit, event) in permits.zip(events) {
                    permit.send(event);
                }
                true
            }
            Err(_) => {
                self.stats_refused.fetch_add(events.len() as u64, Ordering::Relaxed);
                false
            }
        }
    }

    /// Device reports lost (shed, or refused for good by the database; their signals with them) and stats events
    /// refused because their queue was full (those the plugin sends again).
    pub(crate) fn shed_count(&self) -> u64 {
        self.reports.counts().lost() + self.stats_refused.load(Ordering::Relaxed)
    }

    /// Device reports and stats events waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.reports.pending() + self.sender.max_capacity() - self.sender.capacity()
    }

    /// What became of device reports (and the signals in them), and how many devices are pending and remembered.
    pub(crate) fn device_reports(&self) -> (Counts, usize, usize) {
        (self.reports.counts(), self.reports.pending(), self.reports.remembered())
    }

    /// The apps whose release-health rows were written (from checks or stats events) since the last call: only
    /// their rollouts' figures can have changed ([`crate::ops::release_health::Decider`]).
    pub(crate) fn take_health_written(&self) -> HashSet<AppId> {
        self.health_written.take()
    }

    /// Every kind of keyed report written behind, by its `/metrics` label: what became of its reports, how many
    /// keys are pending and how many remembered. Release-health signals travel in the device reports' entries, so
    /// their fate is the device reports' (`signal="device_reports"`).
    pub(crate) fn signals(&self) -> Vec<(&'static str, Counts, usize, usize)> {
        let (counts, pending, remembered) = self.device_reports();
        vec![("device_reports", counts, pending, remembered)]
    }
}

/// The consumer task and its shutdown switch.
pub(crate) struct Writer {
    stop: oneshot::Sender<()>,
    stopping: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer task: at most `capacity` devices pending, and `min(capacity, 50 000)` stats events.
    pub(crate) fn start(
        store: Arc<dyn MetadataStore>,
        index: Arc<ReleaseIndex>,
        capacity: usize,
    ) -> (WriteQueue, Self) {
        let (sender, receiver) = mpsc::channel(capacity.clamp(1, STATS_QUEUE_MAX));
        let reports = Arc::new(Coalescer::new(capacity));
        let (stop, stopped) = oneshot::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let health_written = Arc::new(HealthWritten::default());
        let writer = Task {
            store,
            index,
            reports: reports.clone(),
            stopping: stopping.clone(),
            health_written: health_written.clone(),
        };
        let task = tokio::spawn(writer.run(receiver, stopped));
        let queue = WriteQueue { reports, sender, stats_refused: Arc::new(AtomicU64::new(0)), health_written };
        (queue, Self { stop, stopping, task })
    }

    /// Stops accepting items, writes everything pending and queued, and waits for the task.
    pub(crate) async fn shutdown(self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!("write-behind task failed: {error}");
        }
    }
}

struct Task {
    store: Arc<dyn MetadataStore>,
    index: Arc<ReleaseIndex>,
    reports: Arc<Coalescer<CheckReport>>,
    /// Set when the gateway shuts down: waiting for the database then has a deadline.
    stopping: Arc<AtomicBool>,
    health_written: Arc<HealthWritten>,
}

/// The apps whose release-health rows the writer wrote, until the decider takes them.
#[derive(Default)]
struct HealthWritten(Mutex<HashSet<AppId>>);

impl HealthWritten {
    fn add<'a>(&self, apps: impl Iterator<Item = &'a AppId>) {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for app_id in apps {
            if !written.contains(app_id) {
                written.insert(app_id.clone());
            }
        }
    }

    fn take(&self) -> HashSet<AppId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Task {
    async fn run(self, mut receiver: mpsc::Receiver<StatsEvent>, mut stopped: oneshot::Receiver<()>) {
        let mut events = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                received = receiver.recv_many(&mut events, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    self.write_devices().await;
                    self.write_stats(&mut events).await;
                }
                _ = tick.tick() => self.write_devices().await,
            }
        }
        // Shutdown: the HTTP server has stopped, so nothing more is acknowledged; write all of it.
        receiver.close();
        self.write_devices().await;
        while receiver.recv_many(&mut events, MAX_BATCH).await > 0 {
            self.write_devices().await;
            self.write_stats(&mut events).await;
        }
    }

    /// Writes every pending entry, in batches of at most [`DEVICE_BATCH`] devices: their device rows in one
    /// transaction, then their release-health rows (merged into one row per (app, release, device); signals of
    /// releases the index does not know are left out, [`crate::release_health::known_release`]). An entry counts as
    /// written when both are; if either write is refused for good, the batch's entries are counted as dropped.
    async fn write_devices(&self) {
        // Batch by batch out of what was taken, so a written batch's entries are freed while the next is written:
        // after a burst of first-seen devices the backlog can be hundreds of thousands of entries.
        let mut taken = self.reports.take().into_iter();
        loop {
            let mut chunk: Vec<(u64, CheckReport)> = taken.by_ref().take(DEVICE_BATCH).collect();
            if chunk.is_empty() {
                break;
            }
            // Sorted once here, in the order both tables are keyed by (app, device, ...): the store's sorts (its
            // deadlock-free locking order) and the merge of the signals then find their rows in order, and
            // sorting long ids that share a prefix is not cheap.
            chunk.sort_unstable_by(|(_, a), (_, b)| a.device.app_and_device().cmp(&b.device.app_and_device()));
            let reports: Vec<DeviceReportView<'_>> = chunk.iter().map(|(_, entry)| entry.device.view()).collect();
            // At least one per entry that has signals: sized for those once, not grown.
            let with_signals = || chunk.iter().filter(|(_, entry)| !entry.signals.is_empty());
            let mut observations: Vec<HealthObservation> = Vec::with_capacity(with_signals().count());
            for (_, entry) in with_signals() {
                let (app_id, device_id) = entry.device.ids();
                observations.extend(entry.signals.observations(&app_id, &device_id));
            }
            let write = || self.store.upsert_devices(&reports);
            let mut written = retry("device reports", reports.len(), &self.stopping, write).await.is_some();
            if !observations.is_empty() {
                let rows = crate::release_health::rows(&self.index, observations.into_iter());
                let write = || self.store.upsert_release_devices(&rows);
                let rows_written = retry("release-health signals", rows.len(), &self.stopping, write).await.is_some();
                if rows_written {
                    self.health_written.add(rows.iter().map(|row| &row.app_id));
                }
                written &= rows_written;
            }
            if written {
                self.reports.written(chunk.len());
            } else {
                self.reports.dropped(chunk.iter().map(|(key, _)| *key));
            }
        }
    }

    async fn write_stats(&self, events: &mut Vec<StatsEvent>) {
        let store = self.store.as_ref();
        // The store answers which apps' catalogs changed (a version recorded as failed on a device).
        let changed = retry("stats events", events.len(), &self.stopping, || store.insert_stats(events)).await;
        if changed.is_some() {
            // Stats events record installs and failures in the release-health rows.
            self.health_written.add(events.iter().map(|event| &event.app_id));
        }
        for app_id in changed.unwrap_or_default() {
            if let Err(error) = self.index.refresh(store, &app_id).await {
                tracing::error!(app.id = %app_id, "reloading the catalog after a failed install failed: {error}");
            }
        }
        events.clear();
    }
}

/// How long a shutting-down gateway keeps waiting for an unavailable database before giving up on queued items.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);

/// Writes until it succeeds: an unavailable database is waited for (with a back-off up to 2 s; at shutdown for at
/// most [`SHUTDOWN_PATIENCE`]); any other error is tried three times. Returns what the write returned, or `None`
/// when it never happened.
async fn retry<T, F, Fut>(what: &str, n_items: usize, stopping: &AtomicBool, mut write: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = updraft_core::StoreResult<T>>,
{
    let mut failures = 0u32;
    let mut waited_since_stop: Option<std::time::Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let error = match write().await {
            Ok(written) => {
                if failures > 0 {
                    tracing::info!(n_items, "wrote {what} after {failures} failed attempts");
                }
                return Some(written);
            }
            Err(error) => error,
        };
        failures += 1;
        let unavailable = matches!(error, updraft_core::StoreError::Unavailable(_));
        if stopping.load(Ordering::Relaxed) {
            let since = *waited_since_stop.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= SHUTDOWN_PATIENCE {
                tracing::error!(n_items, "dropping {what} at shutdown, the database is still failing: {error}");
                return None;
            }
        }
        if !unavailable && failures >= 3 {
            tracing::error!(n_items, "dropping {what} after {failures} attempts: {error}");
            return None;
        }
        if failures == 1 || failures.is_multiple_of(20) {
            tracing::warn!(n_items, "writing {what} failed (attempt {failures}), retrying: {error}");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::Utc;
    use sqlx::Connection as _;
    use updraft_core::{AppId, DeviceId, DeviceReport, HealthProtocol, HealthSignal, HealthSignalRef, Platform};
    use updraft_store::SqlStore;

    use super::*;

    const APP: &str = "com.example.app";

    /// A real store on a fresh SQLite file, with a trigger that records every write of a device row, so a test can
    /// count how often each device was written.
    async fn store() -> (tempfile::TempDir, String, Arc<SqlStore>) {
        let (dir, url, store) = crate::test_store::store_with_app(APP).await;
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            "CREATE TABLE device_writes (device_id TEXT NOT NULL, version_name TEXT NOT NULL)",
            "CREATE TRIGGER device_inserted AFTER INSERT ON devices BEGIN
                INSERT INTO device_writes VALUES (NEW.device_id, NEW.version_name); END",
            "CREATE TRIGGER device_updated AFTER UPDATE ON devices BEGIN
                INSERT INTO device_writes VALUES (NEW.device_id, NEW.version_name); END",
        ] {
            sqlx::query(sql).execute(&mut connection).await.unwrap();
        }
        (dir, url, store)
    }

    fn report(device: &str, version_name: &str) -> PackedReport {
        PackedReport::from(&DeviceReport {
            app_id: AppId::parse(APP).unwrap(),
            device_id: DeviceId::parse(device).unwrap(),
            platform: Platform::Android,
            version_name: version_name.into(),
            version_build: "1.0.0".into(),
            version_code: "100".into(),
            version_os: "14".into(),
            plugin_version: "8.51.14".into(),
            custom_id: String::new(),
            is_prod: true,
            is_emulator: false,
            install_source: "google_play".into(),
            default_channel: String::new(),
            key_id: String::new(),
            seen_at: Utc::now(),
        })
    }

    /// Every write of each device's row, in order.
    async fn writes(url: &str) -> Vec<(String, String)> {
        let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT device_id, version_name FROM device_writes ORDER BY rowid")
            .fetch_all(&mut connection)
            .await
            .unwrap()
    }

    /// Waits until the writer has taken every pending report (and, with the database locked, waits with it).
    async fn until_taken(queue: &WriteQueue) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while queue.reports.untaken() > 0 {
            assert!(Instant::now() < deadline, "the writer took nothing: {:?}", queue.device_reports());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn until_written(queue: &WriteQueue) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while queue.device_reports().1 > 0 {
            assert!(Instant::now() < deadline, "reports still pending: {:?}", queue.device_reports());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The writer is stuck on the database (another process holds SQLite's write lock) while a device checks in a
    /// thousand times: once the lock is released, that device is written once, with its newest report.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_that_reports_many_times_while_the_writer_is_blocked_is_written_once_with_its_newest() {
        let (_dir, url, store) = store().await;
        let (queue, writer) = Writer::start(store.clone(), Arc::new(ReleaseIndex::default()), 1000);
        let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut locker).await.unwrap();
        // The writer takes this one and waits for the lock with it.
        queue.push_device(report("first", "1.0.0"));
        until_taken(&queue).await;
        for n in 0..1000 {
            queue.push_device(report("busy", &format!("1.0.{n}")));
        }
        assert_eq!(queue.device_reports().1, 2, "one device in flight, one pending, whatever the number of reports");
        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
        until_written(&queue).await;
        let writes = writes(&url).await;
        assert_eq!(
            writes,
            vec![("first".to_owned(), "1.0.0".to_owned()), ("busy".to_owned(), "1.0.999".to_owned())],
            "each device written once, with its newest report"
        );
        let (counts, _, _) = queue.device_reports();
        assert_eq!((counts.queued, counts.replaced, counts.written, counts.lost()), (2, 999, 2, 0));
        writer.shutdown().await;
    }

    /// What was acknowledged before shutdown is all written by the time `shutdown` returns, each device with its
    /// newest report, though the writer had not taken any of it yet.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_writes_everything_acknowledged() {
        let (_dir, url, store) = store().await;
        let (queue, writer) = Writer::start(store.clone(), Arc::new(ReleaseIndex::default()), 100_000);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for round in 0..3 {
            for device in 0..2000 {
                queue.push_device(report(&format!("device-{device}"), &format!("1.0.{round}")));
            }
        }
        writer.shutdown().await;
        let app_id = AppId::parse(APP).unwrap();
        for device in [0, 777, 1999] {
            let stored = store.get_device(&app_id, &DeviceId::parse(&format!("device-{device}")).unwrap()).await;
            assert_eq!(stored.unwrap().unwrap().version_name, "1.0.2");
        }
        let writes = writes(&url).await;
        assert_eq!(writes.len(), 2000, "one write per device");
        assert!(writes.iter().all(|(_, version)| version == "1.0.2"));
        assert_eq!(queue.device_reports().0.lost(), 0);
    }

    /// Past the capacity, reports of further devices are shed and counted, never silently dropped; a device whose
    /// report was shed is written at its next check-in, once there is room.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_capacity_reports_are_shed_and_counted() {
        let (_dir, url, store) = store().await;
        let (queue, writer) = Writer::start(store.clone(), Arc::new(ReleaseIndex::default()), 10);
        for device in 0..25 {
            queue.push_device(report(&format!("device-{device}"), "1.0.0"));
        }
        let (counts, pending, _) = queue.device_reports();
        assert_eq!((counts.queued, counts.shed, pending), (10, 15, 10));
        assert_eq!(queue.shed_count(), 15);
        until_written(&queue).await;
        queue.push_device(report("device-24", "1.0.0"));
        writer.shutdown().await;
        let writes = writes(&url).await;
        assert_eq!(writes.len(), 11);
        assert!(writes.iter().any(|(device, _)| device == "device-24"), "shed once, kept at its next check-in");
    }

    /// Capgo bundles 1.0.0 and 1.0.1 of the app, and an index that knows them (signals of unknown releases are left
    /// out by the writer).
    async fn with_bundles(store: &SqlStore) -> Arc<ReleaseIndex> {
        for version in ["1.0.0", "1.0.1"] {
            crate::test_store::publish_external(store, APP, version).await;
        }
        Arc::new(ReleaseIndex::load(store).await.unwrap())
    }

    fn signals(pairs: &[(HealthSignal, &str)]) -> HealthSignals {
        let signals: Vec<HealthSignalRef<'_>> = pairs
            .iter()
            .map(|(signal, release)| HealthSignalRef {
                signal: *signal,
                protocol: HealthProtocol::Capgo,
                release,
                channel: "production",
                detail: "",
                at: Utc::now(),
            })
            .collect();
        HealthSignals::pack(&signals)
    }

    /// (release, offered, running) per release of the app, from the store's release-health counts.
    async fn health(store: &SqlStore) -> Vec<(String, u64, u64)> {
        let app_id = AppId::parse(APP).unwrap();
        let mut rows: Vec<(String, u64, u64)> = store
            .release_health(&app_id, None)
            .await
            .unwrap()
            .into_iter()
            .map(|release| (release.release_id, release.offered, release.running))
            .collect();
        rows.sort();
        rows
    }

    /// The device report and the release-health signals of a device that checks in a thousand times while the
    /// writer is blocked wait as one entry: the device is written once with its newest report, and every signal
    /// its checks carried is counted, including those of checks whose entry a later check replaced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_writer_keeps_one_entry_per_device_with_every_signal() {
        use HealthSignal::{Offered, Running};
        let (_dir, url, store) = store().await;
        let index = with_bundles(&store).await;
        let (queue, writer) = Writer::start(store.clone(), index, 1000);
        let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut locker).await.unwrap();
        queue.push(report("first", "1.0.0"), signals(&[(Offered, "1.0.1")]));
        until_taken(&queue).await;
        // Offered 1.0.1 while running 1.0.0, then (after the update) running 1.0.1: the last check alone says
        // nothing of the offer or of 1.0.0.
        for n in 0..999 {
            queue.push(report("busy", &format!("1.0.{n}")), signals(&[(Offered, "1.0.1"), (Running, "1.0.0")]));
        }
        queue.push(report("busy", "1.0.1"), signals(&[(Running, "1.0.1")]));
        assert_eq!(queue.device_reports().1, 2, "one entry per device, whatever the number of checks");
        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
        until_written(&queue).await;
        assert_eq!(
            writes(&url).await,
            vec![("first".to_owned(), "1.0.0".to_owned()), ("busy".to_owned(), "1.0.1".to_owned())],
            "each device written once, with its newest report"
        );
        assert_eq!(health(&store).await, vec![("1.0.0".to_owned(), 0, 1), ("1.0.1".to_owned(), 2, 1)]);
        let (counts, _, _) = queue.device_reports();
        assert_eq!((counts.written, counts.lost()), (2, 0));
        writer.shutdown().await;
    }

    /// Shutdown writes the signals acknowledged with the device reports, though the writer had not taken them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_writes_every_acknowledged_signal() {
        let (_dir, url, store) = store().await;
        let index = with_bundles(&store).await;
        let (queue, writer) = Writer::start(store.clone(), index, 100_000);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for device in 0..500 {
            let device = format!("device-{device}");
            queue.push(report(&device, "1.0.0"), signals(&[(HealthSignal::Offered, "1.0.1")]));
            queue.push(report(&device, "1.0.1"), signals(&[(HealthSignal::Running, "1.0.1")]));
        }
        writer.shutdown().await;
        assert_eq!(health(&store).await, vec![("1.0.1".to_owned(), 500, 500)]);
        assert_eq!(writes(&url).await.len(), 500, "one device write each");
        assert_eq!(queue.device_reports().0.lost(), 0);
    }
}
