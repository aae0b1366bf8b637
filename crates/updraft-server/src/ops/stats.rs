//! Stats for operators: recent device events and per-bundle counts. (Devices' reports are queued by the write-behind
//! writer, not here.)

use updraft_core::{AppId, StatsSummary};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// The `recent` newest events and the per-bundle counts of an app.
pub(crate) async fn summary(state: &AppState, app_id: &AppId, recent: u64) -> Result<StatsSummary, ApiError> {
    Ok(state.store.stats_summary(app_id, recent).await?)
}
