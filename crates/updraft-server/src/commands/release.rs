//! `updraft release list|rollback|promote`: Expo release management over the HTTP API, with the bodies of
//! `crate::contract::expo`.

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::ServerArgs;
use crate::commands::api_client::ApiClient;
use crate::contract::expo::{PromoteRequest, ReleaseView, ReleasesRecorded, RollbackRequest};

fn print_releases(releases: &[ReleaseView]) {
    for release in releases {
        println!(
            "{}  {}  {:<8} {:<7} runtime {}  {}  {}",
            release.created_at,
            release.id,
            release.channel,
            release.platform,
            release.runtime_version,
            release.kind,
            release.message,
        );
    }
}

/// Prints the answer: as JSON, or one line per release.
fn show(
    answer: Value,
    releases: impl FnOnce(Value) -> anyhow::Result<Vec<ReleaseView>>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{answer}");
    } else {
        print_releases(&releases(answer)?);
    }
    Ok(())
}

fn recorded(answer: Value) -> anyhow::Result<Vec<ReleaseView>> {
    let recorded: ReleasesRecorded =
        serde_json::from_value(answer).context("the gateway's answer is not a list of recorded releases")?;
    Ok(recorded.releases)
}

pub(crate) async fn list(server: &ServerArgs, app: &str, channel: Option<&str>, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let query: Vec<(&str, &str)> = channel.map(|c| vec![("channel", c)]).unwrap_or_default();
    let answer = client.get(&format!("/expo/{app}/releases"), &query).await?;
    let listed = |answer| serde_json::from_value(answer).context("the gateway's answer is not a list of releases");
    show(answer, listed, json)
}

pub(crate) async fn rollback(
    server: &ServerArgs,
    app: &str,
    channel: &str,
    runtime_version: &str,
    to: Option<&str>,
    embedded: bool,
    json: bool,
) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let body = RollbackRequest {
        channel: channel.to_owned(),
        runtime_version: runtime_version.to_owned(),
        to: to.map(str::to_owned),
        embedded,
        platform: None,
    };
    let answer = client.post_json(&format!("/expo/{app}/releases/rollback"), &json!(body)).await?;
    show(answer, recorded, json)
}

pub(crate) async fn promote(
    server: &ServerArgs,
    app: &str,
    release: &str,
    to_channel: &str,
    json: bool,
) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let body = PromoteRequest { release: release.to_owned(), to_channel: to_channel.to_owned() };
    let answer = client.post_json(&format!("/expo/{app}/releases/promote"), &json!(body)).await?;
    show(answer, recorded, json)
}
