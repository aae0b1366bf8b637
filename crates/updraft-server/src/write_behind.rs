//! Device reports and stats events are written behind: handlers push them into one bounded queue and return; one
//! task drains it in batches (keeping only the latest report per device) and writes them. A full queue sheds
//! them, never answers. On shutdown the queue is closed and drained, so nothing acknowledged is lost.
//!
//! A device whose report is unchanged since it was last written is rewritten (for its last-seen time) at most once a
//! minute, which keeps the database's write load proportional to change, not to traffic.
//!
//! When a batch holds a rollback (`update_fail`), the app's catalog is reloaded so the failed version stops being
//! offered to that device.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use updraft_core::{AppId, DeviceReport, MetadataStore, StatsEvent, is_rollback};

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

    /// Queues a stats event without waiting; sheds it when the queue is full.
    pub(crate) fn push_stats(&self, event: StatsEvent) {
        self.push(Item::Stats(event));
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
        let task = tokio::spawn(run(store, index, receiver, stopped));
        (WriteQueue { sender, shed: Arc::new(AtomicU64::new(0)) }, Self { stop, task })
    }

    /// Stops accepting items, writes everything queued, and waits for the task.
    pub(crate) async fn shutdown(self) {
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
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut written = Written::default();
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                write_batch(store.as_ref(), &index, &mut batch, &mut written).await;
            }
            _ = &mut stopped => {
                receiver.close();
                while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    write_batch(store.as_ref(), &index, &mut batch, &mut written).await;
                }
                break;
            }
        }
    }
}

async fn write_batch(store: &dyn MetadataStore, index: &ReleaseIndex, batch: &mut Vec<Item>, written: &mut Written) {
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
    if !reports.is_empty() && retry("device reports", reports.len(), || store.upsert_devices(&reports)).await {
        written.remember(&reports);
    }
    if !events.is_empty() {
        let written = retry("stats events", events.len(), || store.insert_stats(&events)).await;
        let rolled_back: BTreeSet<&AppId> =
            events.iter().filter(|e| is_rollback(&e.action)).map(|e| &e.app_id).collect();
        if written {
            for app_id in rolled_back {
                if let Err(error) = index.refresh(store, app_id).await {
                    tracing::error!(app.id = %app_id, "reloading the catalog after a rollback failed: {error}");
                }
            }
        }
    }
}

/// Tries a write three times with a short back-off; returns whether it succeeded.
async fn retry<F, Fut>(what: &str, n_items: usize, mut write: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = updraft_core::StoreResult<()>>,
{
    for attempt in 1..=3u64 {
        match write().await {
            Ok(()) => return true,
            Err(error) if attempt < 3 => {
                tracing::warn!(n_items, "writing {what} failed (attempt {attempt}): {error}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => tracing::error!(n_items, "dropping {what} after 3 attempts: {error}"),
        }
    }
    false
}
