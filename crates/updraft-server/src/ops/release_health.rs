//! Release health for operators: per release and channel, the devices offered it, running it and failed on it
//! (written behind from update checks and stats, `crate::release_health`), with the app's recorded halts.

use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::contract::release_health::{HaltEntry, ReleaseHealthAnswer, ReleaseHealthEntry};
use crate::ops::AppState;

/// The health of an app's releases (of one channel when given).
pub(crate) async fn report(
    state: &AppState,
    app_id: &AppId,
    channel: Option<&str>,
) -> Result<ReleaseHealthAnswer, ApiError> {
    let releases = state.store.release_health(app_id, channel).await?;
    let halts = state.store.rollout_halts(app_id, channel).await?;
    Ok(ReleaseHealthAnswer {
        app_id: app_id.as_str().to_owned(),
        channel: channel.map(str::to_owned),
        releases: releases.iter().map(ReleaseHealthEntry::from).collect(),
        halts: halts.iter().map(HaltEntry::from).collect(),
    })
}
