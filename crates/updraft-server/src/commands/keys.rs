//! `updraft keys generate|import`: an app's Expo code-signing keys, stored in the local metadata store (private
//! keys never leave the server; a running gateway picks them up within seconds).

use std::path::Path;

use anyhow::{Context, bail};
use updraft_core::{AppId, MetadataStore};
use updraft_expo::signing::{check_key_id, generate, normalise_private_key};

use crate::commands::open_store;
use crate::config::Settings;

async fn app_must_exist(store: &dyn MetadataStore, app_id: &AppId) -> anyhow::Result<()> {
    if store.load_catalog(app_id).await?.is_none() {
        bail!("app {app_id} does not exist; create it first with POST /app");
    }
    Ok(())
}

/// Generates a key pair and certificate, stores the private key for the app, and writes all three PEMs to `out`.
pub(crate) async fn generate_keys(
    settings: &Settings,
    app: &str,
    key_id: &str,
    out: &Path,
    years: u32,
) -> anyhow::Result<()> {
    let app_id = AppId::parse(app).context("--app")?;
    check_key_id(key_id).context("--key-id")?;
    let store = open_store(settings).await?;
    app_must_exist(store.as_ref(), &app_id).await?;
    let keys = tokio::task::spawn_blocking(move || generate(&format!("Updraft {app_id}"), years))
        .await
        .context("generating the key")??;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: &str, private: bool| -> anyhow::Result<()> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if private {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    };
    write("private-key.pem", &keys.private_key_pem, true)?;
    write("public-key.pem", &keys.public_key_pem, false)?;
    write("certificate.pem", &keys.certificate_pem, false)?;
    let app_id = AppId::parse(app)?;
    store.put_signing_key(&app_id, key_id, &normalise_private_key(&keys.private_key_pem)?).await?;
    store.close().await;
    eprintln!(
        "stored signing key {key_id:?} for {app_id}; wrote {0}/certificate.pem (set it as updates.codeSigningCertificate with codeSigningMetadata {{\"keyid\":\"{key_id}\",\"alg\":\"rsa-v1_5-sha256\"}}), {0}/public-key.pem and {0}/private-key.pem",
        out.display()
    );
    Ok(())
}

/// Imports an existing private key (PKCS#1 or PKCS#8 PEM).
pub(crate) async fn import_key(settings: &Settings, app: &str, private_key: &Path, key_id: &str) -> anyhow::Result<()> {
    let app_id = AppId::parse(app).context("--app")?;
    check_key_id(key_id).context("--key-id")?;
    let pem = std::fs::read_to_string(private_key).with_context(|| format!("reading {}", private_key.display()))?;
    let normalised = normalise_private_key(&pem).with_context(|| format!("{}", private_key.display()))?;
    let store = open_store(settings).await?;
    app_must_exist(store.as_ref(), &app_id).await?;
    store.put_signing_key(&app_id, key_id, &normalised).await?;
    store.close().await;
    eprintln!("stored signing key {key_id:?} for {app_id}");
    Ok(())
}
