//! `updraft serve`: open the store and the object store, load the release index, start the device writer (and, on
//! PostgreSQL, follow other instances' changes), and serve HTTP until SIGTERM/Ctrl-C; then let in-flight requests
//! finish and flush queued device reports.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use updraft_core::MetadataStore;

use crate::commands::open_store;
use crate::config::Settings;
use crate::ops::{AppState, StateParts};
use crate::release_index::ReleaseIndex;
use crate::routes;
use crate::telemetry::access_log;
use crate::write_behind::Writer;

/// How long an idle kept-alive connection stays open. Clients that pool connections must not reuse one idle for
/// longer (the CLI's client reuses them for at most a second).
pub(crate) const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen_addr()?;
    // Bound first, so a taken port is reported before anything is opened or loaded.
    let listener = bind(listen)?;
    if settings.admin_api_key.is_none() {
        tracing::warn!(
            "no admin key is configured (UPDRAFT_ADMIN_API_KEY): no one can create apps or API keys; set it to a \
             secret of 16+ characters and restart"
        );
    }
    let store = open_store(&settings).await?;
    let mut staging = vec![settings.staging_dir()];
    if settings.storage.kind == crate::config::StorageKind::Fs {
        staging.push(settings.objects_dir().join(".staging"));
    }
    let removed = crate::upload::empty_staging(&staging).context("emptying the staging directories")?;
    if removed > 0 {
        tracing::info!(n_entries = removed, "removed {removed} unfinished uploads left in staging by a previous run");
    }
    let objects = crate::storage::open_object_store(&settings).await?;
    // Fail at start-up, with the reason, rather than at the first upload or download.
    if let Some(problem) = crate::storage::check_store(objects.as_ref()).await.into_iter().next() {
        anyhow::bail!(
            "object storage {objects} does not work ({problem}); check the UPDRAFT_STORAGE__* settings or run `updraft storage check`"
        );
    }
    let dyn_store: Arc<dyn MetadataStore> = store.clone();
    let index = Arc::new(ReleaseIndex::load(dyn_store.as_ref()).await.context("loading the release index")?);
    let (writes, writer) = Writer::start(dyn_store.clone(), index.clone(), settings.device_queue_capacity);

    let change_listener = updraft_store::ChangeListener::for_url(&settings.database_url());
    let expo = crate::expo_cache::ExpoCache::default();
    for app_id in index.app_ids() {
        expo.reload_keys(dyn_store.as_ref(), &app_id).await.context("loading signing keys")?;
    }
    crate::limits::install(&settings.limits);
    let head_timeout = std::time::Duration::from_secs(settings.limits.request_head_timeout_seconds);
    let webhooks = crate::webhooks::Webhooks::start(settings.webhook_url.as_deref(), settings.webhook_secret.as_ref())?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let state = web::Data::new(AppState::new(StateParts {
        public_url: public_url.trim_end_matches('/').to_owned(),
        settings,
        store: dyn_store,
        objects,
        index,
        writes,
        expo,
        store_calls: store.calls(),
        background: tokio::runtime::Handle::current(),
        webhooks,
    }));
    let rate_limits = web::Data::new(crate::rate_limit::RateLimits::new(&state.settings.limits));
    let server = HttpServer::new({
        let state = state.clone();
        move || {
            App::new()
                .app_data(state.clone())
                .app_data(rate_limits.clone())
                .wrap(from_fn(crate::limits::refuse_oversized_bodies))
                .wrap(from_fn(routes::hot_path))
                .wrap(from_fn(crate::rate_limit::enforce))
                .wrap(from_fn(access_log))
                .configure(routes::configure)
        }
    })
    .listen(listener)
    .context("starting the HTTP server")?
    .keep_alive(KEEP_ALIVE)
    // A head that trickles in is dropped (408) after this; a refused request's connection lingers briefly so the
    // client can read the answer before it is closed.
    .client_request_timeout(head_timeout)
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .shutdown_timeout(30)
    .run();
    // Subscribed only after the index is loaded: the first event is a full reload, which covers any change made
    // between the two.
    let change_feed = change_listener.map(|listener| crate::change_feed::spawn(state.clone(), listener));
    // Apps whose reload failed after a change, reloaded again until it succeeds (`crate::ops::catalogs`).
    let stale_retries = crate::ops::catalogs::retry_stale(state.clone());
    // The health decision over active rollouts, on every instance (`crate::release_health`).
    let decider = crate::release_health::spawn_decider(state.clone());
    tracing::info!(instance = crate::release_health::instance_id(), "release-health decider running");
    // bsdiff patches of Expo launch assets, computed one at a time off the request path.
    let patch_worker = crate::ops::expo_patches::spawn_worker(state.clone().into_inner());
    // Rows devices create, aged out and capped per app, in bounded batches (`crate::device_ageing`).
    let device_ageing = crate::device_ageing::spawn(state.clone());
    tracing::info!(public_url = %state.public_url, "updraft listening on http://{bound}");
    println!("updraft listening on http://{bound}");
    server.await.context("serving HTTP")?;
    tracing::info!("shutting down: flushing queued device reports and stats");
    if let Some(change_feed) = change_feed {
        change_feed.abort();
    }
    stale_retries.abort();
    decider.abort();
    patch_worker.abort();
    device_ageing.abort();
    drop(state);
    writer.shutdown().await;
    store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Binds the listening socket; a taken port names the setting that moves it.
fn bind(listen: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).map_err(|error| match error.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {listen}: the address is already in use (another updraft or another program holds \
             it); stop that process or choose another address with UPDRAFT_LISTEN, e.g. UPDRAFT_LISTEN=127.0.0.1:8081"
        ),
        _ => anyhow::Error::new(error).context(format!("cannot listen on {listen} (UPDRAFT_LISTEN)")),
    })
}
