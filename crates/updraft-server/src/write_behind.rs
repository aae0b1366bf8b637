//! Device reports and stats events are written behind: handlers push them into one bounded queue and return; one
//! task drains it in batches (keeping only the latest report per device) and writes them. A full queue sheds
//! them, never answers. On shutdown the queue is closed and drained, so nothing acknowledged is lost.
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
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                write_batch(store.as_ref(), &index, &mut batch).await;
            }
            _ = &mut stopped => {
                receiver.close();
                while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    write_batch(store.as_ref(), &index, &mut batch).await;
                }
                break;
            }
        }
    }
}

async fn write_batch(store: &dyn MetadataStore, index: &ReleaseIndex, batch: &mut Vec<Item>) {
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
    let reports: Vec<DeviceReport> = latest.into_values().collect();
    if !reports.is_empty() {
        retry("device reports", reports.len(), || store.upsert_devices(&reports)).await;
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
