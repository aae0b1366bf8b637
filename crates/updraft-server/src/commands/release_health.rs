//! `updraft release health`: per release adoption and failure counts and rates, from `GET /release_health`.

use crate::cli::ReleaseHealthArgs;
use crate::commands::api_client::ApiClient;
use crate::contract::release_health::ReleaseHealthAnswer;

pub(crate) async fn health(request: &ReleaseHealthArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let mut query = vec![("app_id", request.app_id.as_str())];
    if let Some(channel) = &request.channel {
        query.push(("channel", channel));
    }
    let answer = client.get("/release_health", &query).await?;
    if request.json {
        println!("{answer}");
        return Ok(());
    }
    let answer: ReleaseHealthAnswer = serde_json::from_value(answer)?;
    if answer.releases.is_empty() {
        eprintln!("no release of {} has been offered, run or reported failing yet", answer.app_id);
    }
    println!(
        "{:<12} {:<38} {:<6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "CHANNEL", "RELEASE", "PROTO", "OFFERED", "RUNNING", "FAILED", "DEVICES", "FAIL %", "ADOPT %"
    );
    for release in &answer.releases {
        println!(
            "{:<12} {:<38} {:<6} {:>8} {:>8} {:>8} {:>8} {:>8.1}% {:>8.1}%",
            release.channel,
            release.release_id,
            release.protocol,
            release.offered,
            release.running,
            release.failed,
            release.devices,
            release.failure_rate * 100.0,
            release.adoption_rate * 100.0,
        );
    }
    for halt in &answer.halts {
        println!(
            "halted {} on {} at {} by {}: {}",
            halt.candidate, halt.channel, halt.halted_at, halt.halted_by, halt.reason
        );
    }
    Ok(())
}
