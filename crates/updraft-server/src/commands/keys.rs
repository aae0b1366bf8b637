//! `updraft keys generate|import|list`: an app's Expo code-signing keys, managed on a running gateway over its HTTP
//! API (`--server`, `--api-key` with the admin key), so they work from a laptop or CI and always act on the
//! gateway's own store. A generated private key stays on the gateway; only the certificate is written, unless
//! `--export-private-key` asks for the private key too (written owner-only from the moment the file exists).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use updraft_core::AppId;
use updraft_expo::signing::{check_key_id, normalise_private_key};

use crate::cli::ServerArgs;
use crate::commands::api_client::ApiClient;

/// What `keys generate` was asked for.
pub(crate) struct Generate {
    pub(crate) app_id: String,
    pub(crate) key_id: String,
    pub(crate) out: PathBuf,
    pub(crate) validity_years: u32,
    pub(crate) force: bool,
    pub(crate) export_private_key: bool,
}

const CERTIFICATE: &str = "certificate.pem";
const PRIVATE_KEY: &str = "private-key.pem";
const PUBLIC_KEY: &str = "public-key.pem";

fn text<'a>(answer: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    answer[field].as_str().with_context(|| format!("the gateway's answer has no {field}"))
}

fn warn_if_replaced(answer: &Value, app_id: &str, key_id: &str) {
    if answer["replaced"] == true {
        eprintln!(
            "warning: replaced signing key {key_id:?} of {app_id}: binaries built with its previous certificate reject every signed update until they are rebuilt with the new one"
        );
    }
}

/// Generates a key on the gateway and writes its certificate (and, when asked, the private key) to `out`.
pub(crate) async fn generate_keys(server: &ServerArgs, request: Generate) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
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
    let body = json!({
        "key_id": request.key_id,
        "force": request.force,
        "validity_years": request.validity_years,
        "export_private_key": request.export_private_key,
    });
    let answer = client.post_json(&format!("/expo/{}/keys", request.app_id), &body).await?;
    let certificate = out.join(CERTIFICATE);
    std::fs::write(&certificate, text(&answer, "certificate_pem")?)
        .with_context(|| format!("writing {}", certificate.display()))?;
    if request.export_private_key {
        write_private(&out.join(PRIVATE_KEY), text(&answer, "private_key_pem")?)?;
        let public = out.join(PUBLIC_KEY);
        std::fs::write(&public, text(&answer, "public_key_pem")?)
            .with_context(|| format!("writing {}", public.display()))?;
    }
    warn_if_replaced(&answer, &request.app_id, &request.key_id);
    eprintln!(
        "stored signing key {key_id:?} for {app} on {server} (fingerprint {fingerprint}); wrote {certificate}{exported}. Set it as updates.codeSigningCertificate with codeSigningMetadata {{\"keyid\":\"{key_id}\",\"alg\":\"rsa-v1_5-sha256\"}}",
        key_id = request.key_id,
        app = request.app_id,
        server = client.base,
        fingerprint = text(&answer, "fingerprint")?,
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
pub(crate) async fn import_key(
    server: &ServerArgs,
    app: &str,
    private_key: &Path,
    key_id: &str,
    force: bool,
) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    AppId::parse(app).context("--app")?;
    check_key_id(key_id).context("--key-id")?;
    let pem = std::fs::read_to_string(private_key).with_context(|| format!("reading {}", private_key.display()))?;
    // Checked here too, so a wrong file is named before anything is sent.
    let normalised = normalise_private_key(&pem).with_context(|| format!("{}", private_key.display()))?;
    let body = json!({ "key_id": key_id, "private_key": normalised, "force": force });
    let answer = client.post_json(&format!("/expo/{app}/keys"), &body).await?;
    warn_if_replaced(&answer, app, key_id);
    eprintln!(
        "stored signing key {key_id:?} for {app} on {} (fingerprint {})",
        client.base,
        text(&answer, "fingerprint")?
    );
    Ok(())
}

/// Lists an app's keys.
pub(crate) async fn list_keys(server: &ServerArgs, app: &str, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(server)?;
    AppId::parse(app).context("--app")?;
    let answer = client.get(&format!("/expo/{app}/keys"), &[]).await?;
    if json {
        println!("{answer}");
        return Ok(());
    }
    for key in answer.as_array().into_iter().flatten() {
        println!(
            "{:<16} {}  {}  {}",
            key["key_id"].as_str().unwrap_or_default(),
            key["fingerprint"].as_str().unwrap_or_default(),
            key["created_at"].as_str().unwrap_or_default(),
            if key["certificate_pem"].is_string() { "generated (certificate stored)" } else { "imported" },
        );
    }
    Ok(())
}
