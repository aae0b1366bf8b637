//! `updraft release list|rollback|promote`: Expo release management over the HTTP API, sending the bodies of
//! `crate::contract::expo`.

use serde_json::{Value, json};

use crate::cli::ServerArgs;
use crate::commands::api_client::ApiClient;
use crate::contract::expo::{PromoteRequest, RollbackRequest};

fn print_releases(answer: &Value) {
    let releases = answer.get("releases").unwrap_or(answer);
    for release in releases.as_array().into_iter().flatten() {
        println!(
            "{}  {}  group {}  {:<8} {:<7} runtime {}  {}  {}",
            release["created_at"].as_str().unwrap_or_default(),
            release["id"].as_str().unwrap_or_default(),
            release["group_id"].as_str().unwrap_or_default(),
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

/// What `release rollback` was asked for.
pub(crate) struct Rollback {
    pub(crate) app_id: String,
    pub(crate) channel: String,
    pub(crate) runtime_version: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) embedded: bool,
    pub(crate) platform: String,
    pub(crate) json: bool,
}

pub(crate) async fn rollback(server: &ServerArgs, request: Rollback) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let app = &request.app_id;
    // A release id covers one platform of its publish: say so, naming the group that covers them all.
    if let Some(to) = &request.to {
        let listed = client.get(&format!("/expo/{app}/releases"), &[("channel", request.channel.as_str())]).await?;
        let releases = listed.as_array().cloned().unwrap_or_default();
        if let Some(release) = releases.iter().find(|r| r["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(to)))
        {
            let group = release["group_id"].as_str().unwrap_or_default();
            let others: Vec<&str> = releases
                .iter()
                .filter(|r| r["group_id"] == group && r["id"] != release["id"])
                .filter_map(|r| r["platform"].as_str())
                .collect();
            let platform = release["platform"].as_str().unwrap_or_default();
            let rest = if others.is_empty() {
                String::new()
            } else {
                format!("; {} keep their current release", others.join(", "))
            };
            eprintln!(
                "warning: {to} is the {platform} release of publish group {group}, so only {platform} rolls back{rest}; pass --to {group} to roll back every platform of that publish"
            );
        }
    }
    let body = RollbackRequest {
        channel: request.channel.clone(),
        runtime_version: request.runtime_version.clone(),
        to: request.to.clone(),
        embedded: request.embedded,
        platform: Some(request.platform.clone()),
    };
    let body = json!(body);
    let answer = client.post_json(&format!("/expo/{app}/releases/rollback"), &body).await?;
    if request.json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    let releases: Vec<&Value> = answer["releases"].as_array().into_iter().flatten().collect();
    let mut platforms: Vec<&str> = releases.iter().filter_map(|r| r["platform"].as_str()).collect();
    platforms.sort_unstable();
    let group = releases.first().and_then(|r| r["group_id"].as_str()).unwrap_or_default();
    eprintln!("rolled back {} on channel {} as group {group}", platforms.join(" and "), request.channel);
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
    let body = json!(PromoteRequest { release: release.to_owned(), to_channel: to_channel.to_owned() });
    let answer = client.post_json(&format!("/expo/{app}/releases/promote"), &body).await?;
    if json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
}
