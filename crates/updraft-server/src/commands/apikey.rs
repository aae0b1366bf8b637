//! `updraft apikey create|list|revoke`: the gateway's API keys, over its HTTP API (`/apikey`, bodies from
//! `crate::contract::api_keys`), so the command acts on the store the gateway uses wherever it runs from.

use crate::cli::{ApikeyCreate, ApikeyList, ApikeyRevoke};
use crate::commands::api_client::ApiClient;
use crate::contract::api_keys::{ApiKeyList, CreateApiKey, CreatedApiKey, RevokeApiKey, RevokedApiKey};

pub(crate) async fn create(request: &ApikeyCreate) -> anyhow::Result<()> {
    anyhow::ensure!(!request.name.trim().is_empty(), "--name must not be empty");
    let client = ApiClient::new(&request.server)?;
    let body = CreateApiKey {
        name: request.name.clone(),
        app_id: request.app.clone(),
        role: Some(request.role.clone()),
        channel: request.channel.clone(),
    };
    let created: CreatedApiKey = client.post("/apikey", &body).await?;
    if request.json {
        println!("{}", serde_json::to_string(&created)?);
    } else {
        println!("{}", created.key);
    }
    eprintln!(
        "created {} API key {:?} (id {}{}{}) on {}; it is shown only once, store it now",
        created.view.role,
        created.view.name,
        created.view.id,
        created.view.app_id.as_deref().map(|app| format!(", app {app} only")).unwrap_or_default(),
        created.view.channel.as_deref().map(|channel| format!(", changes channel {channel} only")).unwrap_or_default(),
        client.base
    );
    Ok(())
}

pub(crate) async fn list(request: &ApikeyList) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let listed: ApiKeyList = client.get_as("/apikey").await?;
    if request.json {
        println!("{}", serde_json::to_string(&listed)?);
        return Ok(());
    }
    println!("{:<24} {:<12} {:<8} {:<28} {:<16} {:<24} STATE", "NAME", "ID", "ROLE", "APP", "CHANNEL", "CREATED");
    for key in &listed.keys {
        let state = match &key.revoked_at {
            Some(at) => format!("revoked {at}"),
            None => "active".to_owned(),
        };
        println!(
            "{:<24} {:<12} {:<8} {:<28} {:<16} {:<24} {state}",
            key.name,
            key.id,
            key.role,
            key.app_id.as_deref().unwrap_or("(all apps)"),
            key.channel.as_deref().unwrap_or("(all)"),
            key.created_at
        );
    }
    if listed.keys.is_empty() {
        eprintln!("no stored API keys on {} (the admin key from UPDRAFT_ADMIN_API_KEY is not listed)", client.base);
    }
    Ok(())
}

pub(crate) async fn revoke(request: &ApikeyRevoke) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let body = RevokeApiKey { name: Some(request.name.clone()), id: None };
    let revoked: RevokedApiKey = client.delete("/apikey", &body).await?;
    if request.json {
        println!("{}", serde_json::to_string(&revoked)?);
    }
    eprintln!("revoked API key {:?} (id {}) on {}", request.name, revoked.view.id, client.base);
    Ok(())
}
