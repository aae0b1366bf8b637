//! `updraft apikey create|list|revoke`: the gateway's API keys, over its HTTP API (`/apikey`), so the command acts
//! on the store the gateway uses wherever it runs from.

use serde_json::{Value, json};

use crate::cli::ServerArgs;
use crate::commands::api_client::ApiClient;

pub(crate) async fn create(server: &ServerArgs, name: &str, app: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
    let client = ApiClient::new(server)?;
    let mut body = json!({ "name": name });
    if let Some(app) = app {
        body["app_id"] = json!(app);
    }
    let answer = client.post_json("/apikey", &body).await?;
    if as_json {
        println!("{answer}");
    } else {
        println!("{}", answer["key"].as_str().unwrap_or_default());
    }
    eprintln!(
        "created API key {} (id {}{}) on {}; it is shown only once, store it now",
        answer["name"],
        answer["id"].as_str().unwrap_or_default(),
        answer["app_id"].as_str().map(|app| format!(", app {app} only")).unwrap_or_default(),
        client.base
    );
    Ok(())
}

pub(crate) async fn list(server: &ServerArgs, as_json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let answer = client.get("/apikey", &[]).await?;
    if as_json {
        println!("{answer}");
        return Ok(());
    }
    let keys = answer["keys"].as_array().cloned().unwrap_or_default();
    println!("{:<24} {:<12} {:<28} {:<24} STATE", "NAME", "ID", "APP", "CREATED");
    for key in &keys {
        let text = |field: &str| key[field].as_str().unwrap_or("-").to_owned();
        let state = match key["revoked_at"].as_str() {
            Some(at) => format!("revoked {at}"),
            None => "active".to_owned(),
        };
        println!(
            "{:<24} {:<12} {:<28} {:<24} {state}",
            text("name"),
            text("id"),
            key["app_id"].as_str().unwrap_or("(all apps)"),
            text("created_at")
        );
    }
    if keys.is_empty() {
        eprintln!("no stored API keys on {} (the admin key from UPDRAFT_ADMIN_API_KEY is not listed)", client.base);
    }
    Ok(())
}

pub(crate) async fn revoke(server: &ServerArgs, name: &str, as_json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    let answer: Value = client.delete_json("/apikey", &json!({ "name": name })).await?;
    if as_json {
        println!("{answer}");
    }
    eprintln!("revoked API key {name:?} (id {}) on {}", answer["id"].as_str().unwrap_or_default(), client.base);
    Ok(())
}
