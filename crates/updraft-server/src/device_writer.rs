//! Device reports are written behind: update checks push them into a bounded queue and return; one task drains the
//! queue in batches (keeping only the latest report per device) and upserts them. A full queue sheds reports, never
//! answers. On shutdown the queue is closed and drained, so acknowledged checks are not lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use updraft_core::{DeviceReport, MetadataStore};

const MAX_BATCH: usize = 1000;

/// The producer side, held by request handlers.
#[derive(Clone)]
pub(crate) struct DeviceQueue {
    sender: mpsc::Sender<DeviceReport>,
    shed: Arc<AtomicU64>,
}

impl DeviceQueue {
    /// Queues a report without waiting; sheds it when the queue is full or closed.
    pub(crate) fn push(&self, report: DeviceReport) {
        if self.sender.try_send(report).is_err() {
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The consumer task and its shutdown switch.
pub(crate) struct DeviceWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl DeviceWriter {
    /// Starts the writer task.
    pub(crate) fn start(store: Arc<dyn MetadataStore>, capacity: usize) -> (DeviceQueue, Self) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(store, receiver, stopped));
        (
            DeviceQueue {
                sender,
                shed: Arc::new(AtomicU64::new(0)),
            },
            Self { stop, task },
        )
    }

    /// Stops accepting reports, writes everything queued, and waits for the task.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!("device writer task failed: {error}");
        }
    }
}

async fn run(
    store: Arc<dyn MetadataStore>,
    mut receiver: mpsc::Receiver<DeviceReport>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                write_batch(store.as_ref(), &mut batch).await;
            }
            _ = &mut stopped => {
                receiver.close();
                while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    write_batch(store.as_ref(), &mut batch).await;
                }
                break;
            }
        }
    }
}

/// Writes one batch, keeping only the newest report per device, retrying briefly if the database is busy.
async fn write_batch(store: &dyn MetadataStore, batch: &mut Vec<DeviceReport>) {
    let mut latest: HashMap<(String, String), DeviceReport> = HashMap::with_capacity(batch.len());
    for report in batch.drain(..) {
        let key = (
            report.app_id.as_str().to_owned(),
            report.device_id.as_str().to_owned(),
        );
        match latest.get(&key) {
            Some(existing) if existing.seen_at > report.seen_at => {}
            _ => {
                latest.insert(key, report);
            }
        }
    }
    let reports: Vec<DeviceReport> = latest.into_values().collect();
    for attempt in 1..=3 {
        match store.upsert_devices(&reports).await {
            Ok(()) => return,
            Err(error) if attempt < 3 => {
                tracing::warn!(
                    n_devices = reports.len(),
                    "writing device reports failed (attempt {attempt}): {error}"
                );
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => {
                tracing::error!(
                    n_devices = reports.len(),
                    "dropping device reports after 3 attempts: {error}"
                );
            }
        }
    }
}
