//! `updraft keys generate|import|list`: an app's Expo code-signing keys, managed on a running gateway over its HTTP
//! API (`--server`, `--api-key` with the admin key), so they work from a laptop or CI and always act on the
//! gateway's own store. A generated private key stays on the gateway; only the certificate is written, unless
//! `--export-private-key` asks for the private key too (written owner-only from the moment the file exists).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use updraft_core::AppId;
use updraft_expo::signing::{check_key_id, normalise_private_key};

use crate::cli::{KeysGenerate, KeysImport, KeysList};
use crate::commands::api_client::ApiClient;
use crate::contract::expo_keys::{KeyView, StoreKeyRequest, StoredKey};

const CERTIFICATE: &str = "certificate.pem";
const PRIVATE_KEY: &str = "private-key.pem";
const PUBLIC_KEY: &str = "public-key.pem";

fn warn_if_replaced(answer: &StoredKey, app_id: &str, key_id: &str) {
    if answer.replaced {
        eprintln!(
            "warning: replaced signing key {key_id:?} of {app_id}: binaries built with its previous certificate reject every signed update until they are rebuilt with the new one"
        );
    }
}

/// Generates a key on the gateway and writes its certificate (and, when asked, the private key) to `out`.
pub(crate) async fn generate_keys(request: &KeysGenerate) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    AppId::parse(&request.app_id).context("--app")?;
    check_key_id(&request.key_id).context("--key-id")?;
    let out = &request.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut names = vec![CERTIFICATE];
    if request.export_private_key {
        names.extend([PRIVATE_KEY, PUBLIC_KEY]);
    }
    // Checked before the gateway stores anything, so a refusal here leaves nothing half done.
    if !request.force
        && let Some(taken) = names.iter().map(|name| out.join(name)).find(|path| path.exists())
    {
        bail!("{} already exists; choose another --out, or pass --force to overwrite it", taken.display());
    }
    let body = StoreKeyRequest {
        key_id: request.key_id.clone(),
        private_key: None,
        force: request.force,
        validity_years: Some(request.validity_years),
        export_private_key: request.export_private_key,
    };
    let answer: StoredKey = client.post(&format!("/expo/{}/keys", request.app_id), &body).await?;
    let certificate = out.join(CERTIFICATE);
    let certificate_pem =
        answer.key.certificate_pem.as_deref().context("the gateway's answer has no certificate_pem")?;
    std::fs::write(&certificate, certificate_pem).with_context(|| format!("writing {}", certificate.display()))?;
    if request.export_private_key {
        let private = answer.private_key_pem.as_deref().context("the gateway's answer has no private_key_pem")?;
        write_private(&out.join(PRIVATE_KEY), private)?;
        let public = out.join(PUBLIC_KEY);
        std::fs::write(&public, &answer.key.public_key_pem).with_context(|| format!("writing {}", public.display()))?;
    }
    warn_if_replaced(&answer, &request.app_id, &request.key_id);
    eprintln!(
        "stored signing key {key_id:?} for {app} on {server} (fingerprint {fingerprint}); wrote {certificate}{exported}. Set it as updates.codeSigningCertificate with codeSigningMetadata {{\"keyid\":\"{key_id}\",\"alg\":\"rsa-v1_5-sha256\"}}",
        key_id = request.key_id,
        app = request.app_id,
        server = client.base,
        fingerprint = answer.key.fingerprint,
        certificate = certificate.display(),
        exported = if request.export_private_key {
            format!(" and {} (keep it secret)", out.join(PRIVATE_KEY).display())
        } else {
            String::new()
        },
    );
    Ok(())
}

/// Writes a private key readable by its owner only, from the moment the file exists (never chmod after).
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // An existing file keeps its permissions when opened, so it is replaced rather than rewritten.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("replacing {}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("writing {}", path.display()))
}

/// Imports an existing private key (PKCS#1 or PKCS#8 PEM) into the gateway.
pub(crate) async fn import_key(request: &KeysImport) -> anyhow::Result<()> {
    let (app, key_id, private_key) = (&request.app_id, &request.key_id, &request.private_key);
    let client = ApiClient::new(&request.server)?;
    AppId::parse(app).context("--app")?;
    check_key_id(key_id).context("--key-id")?;
    let pem = std::fs::read_to_string(private_key).with_context(|| format!("reading {}", private_key.display()))?;
    // Checked here too, so a wrong file is named before anything is sent.
    let normalised = normalise_private_key(&pem).with_context(|| format!("{}", private_key.display()))?;
    let body = StoreKeyRequest {
        key_id: key_id.clone(),
        private_key: Some(normalised),
        force: request.force,
        validity_years: None,
        export_private_key: false,
    };
    let answer: StoredKey = client.post(&format!("/expo/{app}/keys"), &body).await?;
    warn_if_replaced(&answer, app, key_id);
    eprintln!("stored signing key {key_id:?} for {app} on {} (fingerprint {})", client.base, answer.key.fingerprint);
    Ok(())
}

/// Lists an app's keys.
pub(crate) async fn list_keys(request: &KeysList) -> anyhow::Result<()> {
    let client = ApiClient::new(&request.server)?;
    let app = &request.app_id;
    AppId::parse(app).context("--app")?;
    let keys: Vec<KeyView> = client.get_as(&format!("/expo/{app}/keys")).await?;
    if request.json {
        println!("{}", serde_json::to_string(&keys)?);
        return Ok(());
    }
    for key in &keys {
        println!(
            "{:<16} {}  {}  {}",
            key.key_id,
            key.fingerprint,
            key.created_at,
            if key.certificate_pem.is_some() { "generated (certificate stored)" } else { "imported" },
        );
    }
    Ok(())
}
