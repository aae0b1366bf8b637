//! `updraft audit --app APP [--json]`: an app's audit log over the gateway's HTTP API (`GET /audit`).

use crate::cli::AuditArgs;
use crate::commands::api_client::ApiClient;
use crate::contract::audit::AuditLog;

pub(crate) async fn show(request: &AuditArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let limit = request.limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Some(app) = &request.app {
        query.push(("app_id", app.as_str()));
    }
    let answer = client.get("/audit", &query).await?;
    let log: AuditLog = serde_json::from_value(answer)?;
    if request.json {
        println!("{}", serde_json::to_string(&log)?);
        return Ok(());
    }
    println!("{:<24} {:<20} {:<18} {:<14} CHANGE", "WHEN", "KEY", "ACTION", "CHANNEL");
    for record in &log.records {
        println!(
            "{:<24} {:<20} {:<18} {:<14} {} -> {}",
            record.at,
            record.key_name,
            record.action,
            record.channel.as_deref().unwrap_or("-"),
            record.before,
            record.after
        );
    }
    if log.records.is_empty() {
        eprintln!("no audit records on {}", client.base);
    }
    Ok(())
}
