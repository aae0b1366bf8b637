//! Keeps this instance's release index current with writes made through other instances that share the PostgreSQL
//! database: each `NOTIFY` names an app, whose catalog is reloaded and swapped in (one read per change, none per
//! update check). After (re)connecting, everything is reloaded once, since notifications sent meanwhile are lost.
//!
//! A reload that fails (the database refuses connections, the pool is exhausted) is not given up: the app is kept
//! as stale and reloaded again every [`STALE_RETRY`] until it succeeds, while the changes of other apps go on being
//! applied. Otherwise the instance would serve the app's old catalog until its next change.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::web;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use updraft_core::AppId;
use updraft_store::{Change, ChangeListener};

use crate::state::AppState;

/// How often the apps whose reload failed are reloaded again.
const STALE_RETRY: Duration = Duration::from_secs(2);

/// Quick attempts at one reload before the app is left to the stale retries.
const QUICK_ATTEMPTS: u64 = 3;

/// Starts following changes.
pub(crate) fn spawn(state: web::Data<AppState>, listener: ChangeListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The listener runs on its own task, so waiting for a change can be interrupted by the retry timer
        // without dropping a notification half-received.
        let (changes, mut received) = mpsc::unbounded_channel();
        let _listening = AbortOnDrop(tokio::spawn(forward(listener, changes)));
        let mut stale = BTreeSet::new();
        let mut retry = tokio::time::interval(STALE_RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = received.recv() => match change {
                    Some(Change::App(app_id)) => reload_app(&state, app_id, &mut stale, QUICK_ATTEMPTS).await,
                    Some(Change::All) => reload_all(&state, &mut stale).await,
                    None => return,
                },
                _ = retry.tick(), if !stale.is_empty() => {
                    for app_id in stale.clone() {
                        reload_app(&state, app_id, &mut stale, 1).await;
                    }
                }
            }
            state.metrics.set_stale_apps(stale.len());
        }
    })
}

async fn forward(mut listener: ChangeListener, changes: mpsc::UnboundedSender<Change>) {
    while changes.send(listener.next().await).is_ok() {}
}

/// Aborts the task when the feed itself is dropped or aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reloads an app's signing keys and catalog, trying `attempts` times; when it still fails, the app joins `stale`.
async fn reload_app(state: &AppState, app_id: AppId, stale: &mut BTreeSet<AppId>, attempts: u64) {
    for attempt in 1..=attempts {
        match crate::ops::catalogs::reload_app(state, &app_id).await {
            Ok(()) => {
                state.metrics.count_remote_change();
                if stale.remove(&app_id) {
                    tracing::info!(app.id = %app_id, "reloaded a changed app after earlier failures");
                }
                return;
            }
            Err(error) if attempt < attempts => {
                tracing::warn!(app.id = %app_id, "reloading a changed app failed (attempt {attempt}): {error:?}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => {
                tracing::error!(
                    app.id = %app_id,
                    "reloading a changed app failed; trying again every {} s: {error:?}",
                    STALE_RETRY.as_secs()
                );
                stale.insert(app_id.clone());
                return;
            }
        }
    }
}

/// Reloads every app the database lists, and every app this instance serves (one deleted while the notifications
/// were lost is found gone).
async fn reload_all(state: &AppState, stale: &mut BTreeSet<AppId>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match crate::ops::catalogs::app_ids(state).await {
            Ok(listed) => {
                let app_ids: BTreeSet<AppId> = listed.into_iter().chain(state.index.app_ids()).collect();
                let n_apps = app_ids.len();
                for app_id in app_ids {
                    reload_app(state, app_id, stale, QUICK_ATTEMPTS).await;
                }
                tracing::info!(n_apps, "release index reloaded after (re)connecting");
                return;
            }
            Err(error) => {
                tracing::warn!("listing apps to reload failed (retrying): {error}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
