//! `updraft rollout start|set|halt|resume|complete|status`: a channel's rollout over the HTTP API, sending the
//! bodies of `crate::contract::rollouts`. Every command prints the rollout's status: one line on stderr, or the
//! JSON answer on stdout with `--json`.

use crate::cli::{RolloutChannel, RolloutHalt, RolloutSet, RolloutStart, ServerArgs};
use crate::commands::api_client::ApiClient;
use crate::contract::rollouts::{RolloutAction, RolloutRequest, RolloutStatus};

/// Prints a status: the JSON on stdout with `--json`, else one readable line on stderr.
fn print(status: &RolloutStatus, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(status)?);
        return Ok(());
    }
    let name = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    eprintln!(
        "{}/{}: {} at {}% (candidate {}, stable {}); {} devices, {} failures ({:.1}%){}",
        status.app_id,
        status.channel,
        status.state,
        status.percent,
        name(&status.candidate),
        name(&status.stable),
        status.devices,
        status.failures,
        status.failure_rate * 100.0,
        status.reason.as_ref().map(|reason| format!("; {reason}")).unwrap_or_default(),
    );
    Ok(())
}

async fn post(server: &ServerArgs, path: &str, body: &impl serde::Serialize, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let status: RolloutStatus = client.post(path, body).await?;
    print(&status, json)
}

pub(crate) async fn start(request: &RolloutStart) -> anyhow::Result<()> {
    let body = RolloutRequest {
        app_id: request.app_id.clone(),
        channel: request.channel.clone(),
        version: request.version.clone(),
        release: request.release.clone(),
        runtime_version: request.runtime_version.clone(),
        percent: Some(request.percent.as_percent()),
        max_failure_rate: request.max_failure_rate,
        min_devices: request.min_devices,
    };
    post(&request.server, "/rollout", &body, request.json).await
}

pub(crate) async fn set(request: &RolloutSet) -> anyhow::Result<()> {
    let body = RolloutRequest {
        app_id: request.app_id.clone(),
        channel: request.channel.clone(),
        version: None,
        release: None,
        runtime_version: None,
        percent: request.percent.map(|p| p.as_percent()),
        max_failure_rate: request.max_failure_rate,
        min_devices: request.min_devices,
    };
    post(&request.server, "/rollout", &body, request.json).await
}

pub(crate) async fn halt(request: &RolloutHalt) -> anyhow::Result<()> {
    let body = RolloutAction {
        app_id: request.app_id.clone(),
        channel: request.channel.clone(),
        reason: request.reason.clone(),
    };
    post(&request.server, "/rollout/halt", &body, request.json).await
}

/// `resume` or `complete`.
pub(crate) async fn action(request: &RolloutChannel, action: &str) -> anyhow::Result<()> {
    let body = RolloutAction { app_id: request.app_id.clone(), channel: request.channel.clone(), reason: None };
    post(&request.server, &format!("/rollout/{action}"), &body, request.json).await
}

pub(crate) async fn status(request: &RolloutChannel) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let answer =
        client.get("/rollout", &[("app_id", request.app_id.as_str()), ("channel", request.channel.as_str())]).await?;
    let status: RolloutStatus = serde_json::from_value(answer)?;
    print(&status, request.json)
}

/// Starts the rollout of a bundle `publish capgo --rollout` just uploaded.
pub(crate) async fn start_capgo(
    client: &ApiClient,
    app_id: &str,
    channel: &str,
    version: &str,
    percent: updraft_core::RolloutPercent,
) -> anyhow::Result<RolloutStatus> {
    let body = RolloutRequest {
        app_id: app_id.to_owned(),
        channel: channel.to_owned(),
        version: Some(version.to_owned()),
        release: None,
        runtime_version: None,
        percent: Some(percent.as_percent()),
        max_failure_rate: None,
        min_devices: None,
    };
    client.post("/rollout", &body).await
}
