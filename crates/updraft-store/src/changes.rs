//! How one gateway instance learns that another changed an app: every PostgreSQL write that changes what devices
//! are served sends `NOTIFY` on [`CHANNEL`] with the app id, in the writing transaction (so it is delivered exactly
//! when the change becomes visible, and never for a rolled-back one). [`ChangeListener`] holds one connection that
//! `LISTEN`s; after every (re)connection it reports [`Change::All`], because notifications sent while it was not
//! listening are gone and the caller must reload everything once.

use std::time::Duration;

use sqlx::postgres::PgListener;
use updraft_core::AppId;

use crate::backend::Backend;

/// The notification channel.
pub(crate) const CHANNEL: &str = "updraft_catalog";

/// The longest wait between reconnection attempts while the database is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This app's catalog (channels, bundles, overrides, releases, keys) changed.
    App(AppId),
    /// The listener (re)connected: anything may have changed meanwhile.
    All,
}

/// A `LISTEN` connection to PostgreSQL that reconnects by itself.
pub struct ChangeListener {
    url: String,
    listener: Option<PgListener>,
    backoff: Duration,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("ChangeListener").field("connected", &self.listener.is_some()).finish_non_exhaustive()
    }
}

impl ChangeListener {
    /// A listener for the database at `url`, or `None` when that database is not shared (SQLite: one process
    /// writes it, and that process refreshes its own view).
    #[must_use]
    pub fn for_url(url: &str) -> Option<Self> {
        matches!(Backend::of_url(url), Ok(Backend::Postgres)).then(|| Self {
            url: url.to_owned(),
            listener: None,
            backoff: Duration::from_millis(100),
        })
    }

    /// Waits for the next change. Never fails: while the database is unreachable it retries with a back-off, and
    /// the first answer after connecting is [`Change::All`].
    pub async fn next(&mut self) -> Change {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                match connect(&self.url).await {
                    Ok(listener) => {
                        tracing::info!("listening for catalog changes from other instances");
                        self.listener = Some(listener);
                        self.backoff = Duration::from_millis(100);
                        return Change::All;
                    }
                    Err(error) => {
                        tracing::warn!("cannot listen for catalog changes yet (retrying): {error}");
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => match AppId::parse(notification.payload()) {
                    Ok(app_id) => return Change::App(app_id),
                    Err(_) => tracing::warn!("ignoring a catalog notification with an invalid app id"),
                },
                Ok(None) => {
                    tracing::warn!("lost the catalog change connection; reconnecting");
                    self.listener = None;
                }
                Err(error) => {
                    tracing::warn!("catalog change connection failed ({error}); reconnecting");
                    self.listener = None;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
