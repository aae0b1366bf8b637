//! Keeps this instance's release index current with writes made through other instances that share the PostgreSQL
//! database: each `NOTIFY` names an app, whose catalog is reloaded and swapped in (one read per change, none per
//! update check). After (re)connecting, everything is reloaded once, since notifications sent meanwhile are lost.

use std::time::Duration;

use actix_web::web;
use tokio::task::JoinHandle;
use updraft_core::AppId;
use updraft_store::{Change, ChangeListener};

use crate::state::AppState;

/// Starts following changes.
pub(crate) fn spawn(state: web::Data<AppState>, mut listener: ChangeListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.next().await {
                Change::App(app_id) => refresh_app(&state, &app_id).await,
                Change::All => reload_all(&state).await,
            }
        }
    })
}

async fn refresh_app(state: &AppState, app_id: &AppId) {
    for attempt in 1..=5u64 {
        let reloaded = if attempt == 1 {
            crate::ops::catalogs::reload_app(state, app_id).await
        } else {
            crate::ops::catalogs::reload_catalog(state, app_id).await
        };
        match reloaded {
            Ok(()) => {
                state.metrics.count_remote_change();
                return;
            }
            Err(error) if attempt < 5 => {
                tracing::warn!(app.id = %app_id, "reloading a changed app failed (attempt {attempt}): {error:?}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => tracing::error!(app.id = %app_id, "reloading a changed app failed: {error:?}"),
        }
    }
}

async fn reload_all(state: &AppState) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match crate::ops::catalogs::app_ids(state).await {
            Ok(app_ids) => {
                for app_id in &app_ids {
                    refresh_app(state, app_id).await;
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
