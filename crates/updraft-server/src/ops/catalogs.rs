//! Keeping this instance's in-memory state current with the metadata store outside a write made here: reloading
//! one app (its catalog and signing keys) after another instance changed it, again while that fails, and listing the
//! apps to reload them all.

use std::time::Duration;

use actix_web::web;
use tokio::task::JoinHandle;
use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Reloads an app's signing keys and catalog; fails when either could not be read (whatever was loaded stays in
/// use meanwhile, and the app is kept stale for [`retry_stale`]).
pub(crate) async fn reload_app(state: &AppState, app_id: &AppId) -> Result<(), ApiError> {
    let keys = state.expo.reload_keys(state.store.as_ref(), app_id).await;
    state.refresh(app_id).await?;
    if let Err(error) = keys {
        state.index.mark_stale(app_id);
        return Err(error.into());
    }
    if state.index.unmark_stale(app_id) {
        tracing::info!(app.id = %app_id, "reloaded an app after earlier failures");
    }
    Ok(())
}

/// How often apps whose reload failed are reloaded again.
pub(crate) const STALE_RETRY: Duration = Duration::from_secs(2);

/// Reloads, every [`STALE_RETRY`], the apps whose catalog or keys could not be read after a change (on any database:
/// a write's own reload can fail too), until each succeeds.
pub(crate) fn retry_stale(state: web::Data<AppState>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STALE_RETRY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            for app_id in state.index.stale() {
                if let Err(error) = reload_app(&state, &app_id).await {
                    tracing::warn!(app.id = %app_id, "reloading a changed app failed again (retrying): {error:?}");
                }
            }
        }
    })
}

/// Every app's id.
pub(crate) async fn app_ids(state: &AppState) -> Result<Vec<AppId>, ApiError> {
    Ok(state.store.list_app_ids().await?)
}
