//! Device reports and stats events are written behind: handlers push them into one bounded queue and return; one
//! task drains it in batches (keeping only the latest report per device) and writes them. A full queue sheds
//! device reports, never answers; a stats event that finds the queue full is refused (`/stats` answers 429 with
//! `Retry-After`, and the plugin sends it again later). On shutdown the queue is closed and drained, so nothing acknowledged is lost.
//!
//! While the database is unavailable (PostgreSQL restarting, SQLite locked by another process) the task holds its
//! batch and retries with a back-off until the write succeeds; the queue meanwhile absorbs new items up to its
//! capacity. Only a write the database rejects for good is dropped (after three attempts, logged).
//!
//! A device whose report is unchanged since it was last written is rewritten (for its last-seen time) at most once a
//! minute, which keeps the database's write load proportional to change, not to traffic.
//!
//! When a batch records a version as failed on a device (a rollback, or a download, checksum, unzip or decrypt
//! failure: `updraft_core::failed_version`), the app's catalog is reloaded so that version stops being offered to
//! that device.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use updraft_core::{DeviceReport, MetadataStore, StatsEvent};

use crate::release_index::ReleaseIndex;

const MAX_BATCH: usize = 1000;

/// A device whose report has not changed is rewritten (to refresh its last-seen time) at most this often.
const UNCHANGED_REWRITE: std::time::Duration = std::time::Duration::from_secs(60);

/// How many devices' last written reports are remembered (about 100 bytes each).
const MAX_REMEMBERED: usize = 1_000_000;

/// What was last written per device: a fingerprint of the report (all but the time) and when.
#[derive(Default)]
struct Written {
    devices: HashMap<(String, String), (u64, std::time::Instant)>,
}

impl Written {
    /// Whether a report needs writing: new, changed, or not written for a while.
    fn needs_write(&self, report: &DeviceReport) -> bool {
        match self.devices.get(&(report.app_id.as_str().to_owned(), report.device_id.as_str().to_owned())) {
            Some((fingerprint, at)) => *fingerprint != fingerprint_of(report) || at.elapsed() >= UNCHANGED_REWRITE,
            None => true,
        }
    }

    fn remember(&mut self, reports: &[DeviceReport]) {
        if self.devices.len() + reports.len() > MAX_REMEMBERED {
            self.devices.clear();
        }
        let now = std::time::Instant::now();
        for report in reports {
            let key = (report.app_id.as_str().to_owned(), report.device_id.as_str().to_owned());
            self.devices.insert(key, (fingerprint_of(report), now));
        }
    }
}

fn fingerprint_of(report: &DeviceReport) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        report.platform.as_str(),
        &report.version_name,
        &report.version_build,
        &report.version_code,
        &report.version_os,
        &report.plugin_version,
        &report.custom_id,
        report.is_prod,
        report.is_emulator,
        &report.install_source,
        &report.default_channel,
        &report.key_id,
    )
        .hash(&mut hasher);
    hasher.finish()
}

enum Item {
    Device(DeviceReport),
    Stats(StatsEvent),
}

/// The producer side, held by request handlers.
#[derive(Clone)]
pub(crate) struct WriteQueue {
    sender: mpsc::Sender<Item>,
    shed: Arc<AtomicU64>,
}

impl WriteQueue {
    /// Queues a device report without waiting; sheds it when the queue is full.
    pub(crate) fn push_device(&self, report: DeviceReport) {
        self.push(Item::Device(report));
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
                    permit.send(Item::Stats(event));
                }
                true
            }
            Err(_) => {
                self.shed.fetch_add(events.len() as u64, Ordering::Relaxed);
                false
            }
        }
    }

    /// Reports and events shed because the queue was full.
    pub(crate) fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Items waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    fn push(&self, item: Item) {
        if self.sender.try_send(item).is_err() {
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The consumer task and its shutdown switch.
pub(crate) struct Writer {
    stop: oneshot::Sender<()>,
    stopping: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer task.
    pub(crate) fn start(
        store: Arc<dyn MetadataStore>,
        index: Arc<ReleaseIndex>,
        capacity: usize,
    ) -> (WriteQueue, Self) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let (stop, stopped) = oneshot::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(store, index, receiver, stopped, stopping.clone()));
        (WriteQueue { sender, shed: Arc::new(AtomicU64::new(0)) }, Self { stop, stopping, task })
    }

    /// Stops accepting items, writes everything queued, and waits for the task.
    pub(crate) async fn shutdown(self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!("write-behind task failed: {error}");
        }
    }
}

async fn run(
    store: Arc<dyn MetadataStore>,
    index: Arc<ReleaseIndex>,
    mut receiver: mpsc::Receiver<Item>,
    mut stopped: oneshot::Receiver<()>,
    stopping: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut written = Written::default();
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                write_batch(store.as_ref(), &index, &mut batch, &mut written, &stopping).await;
            }
            _ = &mut stopped => {
                receiver.close();
                while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    write_batch(store.as_ref(), &index, &mut batch, &mut written, &stopping).await;
                }
                break;
            }
        }
    }
}

/// Writes one batch. `stopping` is set when the gateway shuts down: waiting for the database then has a deadline.
async fn write_batch(
    store: &dyn MetadataStore,
    index: &ReleaseIndex,
    batch: &mut Vec<Item>,
    written: &mut Written,
    stopping: &AtomicBool,
) {
    let mut latest: HashMap<(String, String), DeviceReport> = HashMap::new();
    let mut events = Vec::new();
    for item in batch.drain(..) {
        match item {
            Item::Device(report) => {
                let key = (report.app_id.as_str().to_owned(), report.device_id.as_str().to_owned());
                if latest.get(&key).is_none_or(|existing| existing.seen_at <= report.seen_at) {
                    latest.insert(key, report);
                }
            }
            Item::Stats(event) => events.push(event),
        }
    }
    // Devices check in on every launch; a report identical to the one written a moment ago changes nothing.
    let reports: Vec<DeviceReport> = latest.into_values().filter(|r| written.needs_write(r)).collect();
    // Reports go first: whether a failure report blocks a version is judged against the bundle the device reported.
    if !reports.is_empty()
        && retry("device reports", reports.len(), stopping, || store.upsert_devices(&reports)).await.is_some()
    {
        written.remember(&reports);
    }
    if !events.is_empty() {
        let changed = retry("stats events", events.len(), stopping, || store.insert_stats(&events)).await;
        for app_id in changed.unwrap_or_default() {
            if let Err(error) = index.refresh(store, &app_id).await {
                tracing::error!(app.id = %app_id, "reloading the catalog after a failed install failed: {error}");
            }
        }
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
