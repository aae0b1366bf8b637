//! `updraft release list|rollback|promote`: Expo release management over the HTTP API.

use serde_json::{Value, json};

use crate::cli::ServerArgs;
use crate::commands::api_client::ApiClient;

fn print_releases(answer: &Value) {
    let releases = answer.get("releases").unwrap_or(answer);
    for release in releases.as_array().into_iter().flatten() {
        println!(
            "{}  {}  {:<8} {:<7} runtime {}  {}  {}",
            release["created_at"].as_str().unwrap_or_default(),
            release["id"].as_str().unwrap_or_default(),
            release["channel"].as_str().unwrap_or_default(),
            release["platform"].as_str().unwrap_or_default(),
            release["runtime_version"].as_str().unwrap_or_default(),
            release["kind"].as_str().unwrap_or_default(),
            release["message"].as_str().unwrap_or_default(),
        );
    }
}

pub(crate) async fn list(server: &ServerArgs, app: &str, channel: Option<&str>, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let query: Vec<(&str, &str)> = channel.map(|c| vec![("channel", c)]).unwrap_or_default();
    let answer = client.get(&format!("/expo/{app}/releases"), &query).await?;
    if json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
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
    let body = json!({ "channel": channel, "runtime_version": runtime_version, "to": to, "embedded": embedded });
    let answer = client.post_json(&format!("/expo/{app}/releases/rollback"), &body).await?;
    if json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
}

pub(crate) async fn promote(
    server: &ServerArgs,
    app: &str,
    release: &str,
    to_channel: &str,
    json: bool,
) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let body = json!({ "release": release, "to_channel": to_channel });
    let answer = client.post_json(&format!("/expo/{app}/releases/promote"), &body).await?;
    if json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
}
