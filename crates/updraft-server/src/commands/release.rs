//! `updraft release list|rollback|promote`: Expo release management over the HTTP API, sending the bodies of
//! `crate::contract::expo`.

use serde_json::Value;

use crate::cli::{ReleaseList, ReleasePromote, ReleaseRollback};
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

pub(crate) async fn list(request: &ReleaseList) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let query: Vec<(&str, &str)> = request.channel.as_deref().map(|c| vec![("channel", c)]).unwrap_or_default();
    let answer = client.get(&format!("/expo/{}/releases", request.app_id), &query).await?;
    if request.json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
}

pub(crate) async fn rollback(request: &ReleaseRollback) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
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
    let answer: Value = client.post(&format!("/expo/{app}/releases/rollback"), &body).await?;
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

pub(crate) async fn promote(request: &ReleasePromote) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let body = PromoteRequest { release: request.release.clone(), to_channel: request.to_channel.clone() };
    let answer: Value = client.post(&format!("/expo/{}/releases/promote", request.app_id), &body).await?;
    if request.json {
        println!("{answer}")
    } else {
        print_releases(&answer)
    }
    Ok(())
}
