//! Keeps this instance's release index current with writes made through other instances that share the PostgreSQL
//! database: each `NOTIFY` names an app, whose catalog is reloaded and swapped in (one read per change, none per
//! update check). After (re)connecting, everything is reloaded once, since notifications sent meanwhile are lost.
//!
//! A reload that still fails after a few quick attempts (the database refuses connections, the pool is exhausted)
//! is not given up: the app stays stale in the index, and [`crate::ops::catalogs::retry_stale`] reloads it until it
//! succeeds, while the changes of other apps go on being applied here.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::web;
use tokio::task::JoinHandle;
use updraft_core::AppId;
use updraft_store::{Change, ChangeListener};

use crate::state::AppState;

/// Quick attempts at one reload before the app is left to the stale retries.
const QUICK_ATTEMPTS: u64 = 3;

/// Starts following changes.
pub(crate) fn spawn(state: web::Data<AppState>, mut listener: ChangeListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.next().await {
                Change::App(app_id) => reload_app(&state, &app_id).await,
                Change::All => reload_all(&state).await,
            }
        }
    })
}

/// Reloads an app's signing keys and catalog, a few times quickly; when it still fails, it stays stale.
async fn reload_app(state: &AppState, app_id: &AppId) {
    for attempt in 1..=QUICK_ATTEMPTS {
        match crate::ops::catalogs::reload_app(state, app_id).await {
            Ok(()) => {
                state.metrics.count_remote_change();
                return;
            }
            Err(error) if attempt < QUICK_ATTEMPTS => {
                tracing::warn!(app.id = %app_id, "reloading a changed app failed (attempt {attempt}): {error:?}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => {
                state.index.mark_stale(app_id);
                tracing::error!(
                    app.id = %app_id,
                    "reloading a changed app failed; trying again every {} s: {error:?}",
                    crate::ops::catalogs::STALE_RETRY.as_secs()
                );
            }
        }
    }
}

/// Reloads every app the database lists, and every app this instance serves (one deleted while the notifications
/// were lost is found gone).
async fn reload_all(state: &AppState) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match crate::ops::catalogs::app_ids(state).await {
            Ok(listed) => {
                let app_ids: BTreeSet<AppId> = listed.into_iter().chain(state.index.app_ids()).collect();
                for app_id in &app_ids {
                    reload_app(state, app_id).await;
                }
                tracing::info!(n_apps = app_ids.len(), "release index reloaded after (re)connecting");
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
