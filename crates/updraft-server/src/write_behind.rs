//! Device reports and stats events are written behind, never on the request path.
//!
//! Device reports coalesce in memory by (app, device) ([`crate::coalesce`]): the newest report of a device replaces
//! the older one until it is written, so memory is bounded by distinct devices, not by request rate, and nothing is
//! shed at any request rate below the map's capacity (`device_queue_capacity` devices; past it, reports of further
//! devices are shed and counted, never silently). One task takes every pending report every [`FLUSH_INTERVAL`] and
//! writes them in transactions of at most [`DEVICE_BATCH`].
//!
//! Stats events go through a bounded queue, all or nothing per batch: a batch that does not fit is refused
//! (`/stats` answers 503, and the plugin sends it again later), so a resent batch is never counted twice. Before
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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use updraft_core::{AppId, DeviceReport, MetadataStore, PackedReport, StatsEvent, is_rollback};

use crate::coalesce::{Coalescer, Counts};
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

/// The producer side, held by request handlers.
#[derive(Clone)]
pub(crate) struct WriteQueue {
    devices: Arc<Coalescer<PackedReport>>,
    sender: mpsc::Sender<StatsEvent>,
    stats_refused: Arc<AtomicU64>,
}

impl WriteQueue {
    /// Offers a device report without waiting: it replaces the device's pending report, is dropped when it says
    /// what the device said last, or is shed (and counted) when the map is full.
    pub(crate) fn push_device(&self, report: PackedReport) {
        self.devices.offer(report);
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

    /// Device reports lost (shed, or refused for good by the database) and stats events refused because their
    /// queue was full (those the plugin sends again).
    pub(crate) fn shed_count(&self) -> u64 {
        self.devices.counts().lost() + self.stats_refused.load(Ordering::Relaxed)
    }

    /// Device reports and stats events waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.devices.pending() + self.sender.max_capacity() - self.sender.capacity()
    }

    /// What became of device reports, and how many devices are pending and remembered.
    pub(crate) fn device_reports(&self) -> (Counts, usize, usize) {
        (self.devices.counts(), self.devices.pending(), self.devices.remembered())
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
        let devices = Arc::new(Coalescer::new(capacity));
        let (stop, stopped) = oneshot::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let writer = Task { store, index, devices: devices.clone(), stopping: stopping.clone() };
        let task = tokio::spawn(writer.run(receiver, stopped));
        (WriteQueue { devices, sender, stats_refused: Arc::new(AtomicU64::new(0)) }, Self { stop, stopping, task })
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
    devices: Arc<Coalescer<PackedReport>>,
    /// Set when the gateway shuts down: waiting for the database then has a deadline.
    stopping: Arc<AtomicBool>,
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

    /// Writes every pending device report, in bounded transactions.
    async fn write_devices(&self) {
        let taken = self.devices.take();
        for chunk in taken.chunks(DEVICE_BATCH) {
            let reports: Vec<DeviceReport> = chunk.iter().map(|(_, report)| report.unpack()).collect();
            let write = || self.store.upsert_devices(&reports);
            if retry("device reports", reports.len(), &self.stopping, write).await.is_some() {
                self.devices.written(chunk.len());
            } else {
                self.devices.dropped(chunk.iter().map(|(key, _)| *key));
            }
        }
    }

    async fn write_stats(&self, events: &mut Vec<StatsEvent>) {
        let store = self.store.as_ref();
        let written = retry("stats events", events.len(), &self.stopping, || store.insert_stats(events)).await;
        let rolled_back: BTreeSet<&AppId> =
            events.iter().filter(|e| is_rollback(&e.action)).map(|e| &e.app_id).collect();
        if written.is_some() {
            for app_id in rolled_back {
                if let Err(error) = self.index.refresh(store, app_id).await {
                    tracing::error!(app.id = %app_id, "reloading the catalog after a rollback failed: {error}");
                }
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
