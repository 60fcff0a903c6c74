//! The app's managed state: settings, who is logged in, the running feed, the dashboard
//! model (its one owner) and the outlet to the page; where settings and tokens are kept;
//! the watched products and the notifier their changes go to.

use crate::credentials::{CredentialError, CredentialStore};
use crate::feed::Feed;
use crate::outlet::Outlet;
use crate::page::PageUpdate;
use crate::settings::{
    LAST_KNOWN_KEY, LiveSession, RememberedUser, SESSION_KEY, SETTINGS_KEY, Settings, TILL_KEY, Vault, VaultError,
    WATCHED_KEY,
};
use std::sync::{Arc, Mutex, MutexGuard};
use stock_client::ClientEvent;
use stock_client::StateChange;
use stock_client::alerts::{Notifier, Watchlist};
use stock_client::dashboard::LastKnown;
use stock_client::dashboard::{Change, Dashboard, DashboardView};
use stock_protocol::{TillApp, TillIdentity};

pub struct AppState {
    pub vault: Arc<dyn Vault>,
    pub credentials: Arc<dyn CredentialStore>,
    pub settings: Mutex<Settings>,
    pub session: Mutex<Option<LiveSession>>,
    /// A tokio mutex: stopping a feed is awaited while holding it, so two logins cannot race.
    pub feed: tokio::sync::Mutex<Option<Feed>>,
    dashboard: Mutex<Dashboard>,
    pub outlet: Outlet,
    /// True once a remembered session has been looked for (the page waits for it).
    pub restored: tokio::sync::watch::Sender<bool>,
    /// The connection state, for what follows it outside the page (the tray).
    pub connection: tokio::sync::watch::Sender<StateChange>,
    /// The products the operator watches, and what was last seen of them.
    pub watchlist: Mutex<Watchlist>,
    /// Shows desktop notifications (set by the app once it runs; none in tests).
    pub notifier: Mutex<Option<Notifier>>,
    /// What was last written to disk (events received, saved at), so an unchanged table is
    /// not written again.
    kept: Mutex<Option<(u64, chrono::DateTime<chrono::Utc>)>>,
    /// This till's id in the fleet view (random, made at first start, kept in the vault).
    till_id: String,
    /// The running updater (none while updates are off).
    pub updates: Mutex<Option<crate::updates::UpdateFeed>>,
    /// This app's version (the app sets Tauri's, which a release build's config decides;
    /// the crate's otherwise).
    pub version: String,
}

impl AppState {
    /// Loads saved settings (else the environment's). A remembered session is restored
    /// later, off the main thread ([`crate::session::restore`]): the credential store may
    /// take a while (or show the user a prompt).
    pub fn load(vault: Arc<dyn Vault>, credentials: Arc<dyn CredentialStore>) -> Self {
        let settings = vault
            .load(SETTINGS_KEY)
            .and_then(|v| serde_json::from_value::<Settings>(v).ok())
            .and_then(|s| s.validated().ok())
            .unwrap_or_else(Settings::from_env);
        let mut dashboard = Dashboard::default();
        if let Some(saved) = vault.load(LAST_KNOWN_KEY).and_then(|v| serde_json::from_value::<LastKnown>(v).ok()) {
            tracing::info!(products = saved.products.len(), saved_at = %saved.saved_at, "last known values restored (not live)");
            dashboard.restore(saved);
        }
        let watched: Vec<i64> =
            vault.load(WATCHED_KEY).and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        let connection = tokio::sync::watch::channel(dashboard.view().state).0;
        let till_id = till_id(vault.as_ref());
        AppState {
            till_id,
            connection,
            watchlist: Mutex::new(Watchlist::new(watched)),
            notifier: Mutex::new(None),
            kept: Mutex::new(None),
            vault,
            credentials,
            settings: Mutex::new(settings),
            session: Mutex::new(None),
            restored: tokio::sync::watch::channel(false).0,
            feed: tokio::sync::Mutex::new(None),
            dashboard: Mutex::new(dashboard),
            outlet: Outlet::default(),
            updates: Mutex::new(None),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Where updating stands (off when no update address is set).
    pub fn update_view(&self) -> stock_client::update::UpdateView {
        lock(&self.updates)
            .as_ref()
            .map(|feed| feed.updates.view())
            .unwrap_or_else(|| stock_client::update::UpdateView::off(&self.version))
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// This till's id in the fleet view.
    pub fn till_id(&self) -> &str {
        &self.till_id
    }

    /// Who this till is, for the handshake: its id, the name set in Settings, the app.
    pub fn till_identity(&self) -> TillIdentity {
        TillIdentity {
            till_id: self.till_id.clone(),
            name: self.settings().till_name,
            app: TillApp::Desktop,
            version: self.version.clone(),
            os: std::env::consts::OS.into(),
        }
    }

    /// What the page shows, for the till's health reports: products, notifications on.
    pub fn shown(&self) -> (usize, bool) {
        (lock(&self.dashboard).product_count(), self.settings().notifications)
    }

    pub fn session(&self) -> Option<LiveSession> {
        lock(&self.session).clone()
    }

    /// Who was remembered (the vault's part of a remembered session).
    pub fn remembered_user(&self) -> Option<RememberedUser> {
        self.vault.load(SESSION_KEY).and_then(|v| serde_json::from_value::<RememberedUser>(v).ok())
    }

    /// Whether "remember me" can work here, and if not why.
    pub fn remember_check(&self) -> Result<(), CredentialError> {
        self.credentials.check()
    }

    /// Records `event` in the dashboard, then hands its change to the page. (In this order:
    /// a page that reads the view in between sees the change twice, never not at all.)
    pub fn record(&self, event: ClientEvent) {
        let Some(change) = lock(&self.dashboard).apply(event) else { return };
        let alert = match &change {
            Change::State(state) => {
                self.connection.send_replace(state.clone());
                None
            }
            Change::Stock(row) => lock(&self.watchlist).observe(row),
            Change::SaleMode(data) => lock(&self.watchlist).observe_sale_mode(data),
            _ => None,
        };
        if let Some(alert) = alert
            && self.settings().notifications
            && let Some(notifier) = lock(&self.notifier).as_ref()
        {
            notifier.push(alert);
        }
        self.outlet.publish(PageUpdate::from(change));
    }

    /// Watches `product` or stops watching it; the list is saved. Returns the whole list.
    pub fn set_watched(&self, product: i64, watched: bool) -> Result<Vec<i64>, VaultError> {
        let ids = {
            let mut list = lock(&self.watchlist);
            list.set(product, watched);
            list.watched()
        };
        self.vault.save(WATCHED_KEY, Some(serde_json::json!(ids)))?;
        Ok(ids)
    }

    pub fn watched(&self) -> Vec<i64> {
        lock(&self.watchlist).watched()
    }

    /// Everything a page needs to draw itself now.
    pub fn view(&self) -> DashboardView {
        lock(&self.dashboard).view()
    }

    /// Forgets the products and notices shown (a new login, a logout), here and on disk;
    /// keeps the state history.
    pub fn clear_view(&self) {
        lock(&self.dashboard).clear();
        *lock(&self.kept) = None;
        if let Err(e) = self.vault.save(LAST_KNOWN_KEY, None) {
            tracing::warn!("could not forget the last known values: {e}");
        }
    }

    /// Since when the values shown are not live (restored from disk), if they are not.
    pub fn last_known_since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        lock(&self.dashboard).last_known()
    }

    /// Writes the table to disk for the next start, when it changed since the last time.
    pub fn keep_last_known(&self) {
        let (kept, received) = {
            let dashboard = lock(&self.dashboard);
            (dashboard.to_keep(chrono::Utc::now()), dashboard.events_received())
        };
        let Some(kept) = kept else { return };
        let mark = (received, kept.saved_at);
        if *lock(&self.kept) == Some(mark) {
            return;
        }
        match serde_json::to_value(&kept)
            .map_err(|e| VaultError(Box::new(e)))
            .and_then(|v| self.vault.save(LAST_KNOWN_KEY, Some(v)))
        {
            Ok(()) => {
                *lock(&self.kept) = Some(mark);
                tracing::info!(products = kept.products.len(), "last known values saved");
            }
            Err(e) => tracing::warn!("could not save the last known values: {e}"),
        }
    }
}

/// A poisoned lock still holds usable data here (plain values, no invariants across locks).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This till's id: the one kept in `vault`, else a new random one (kept for next time).
fn till_id(vault: &dyn Vault) -> String {
    let kept = vault.load(TILL_KEY).and_then(|v| v.get("till_id")?.as_str().map(str::to_owned));
    if let Some(id) = kept.filter(|id| stock_protocol::till::is_till_id(id)) {
        return id;
    }
    let bytes: [u8; 16] = rand::random();
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Err(e) = vault.save(TILL_KEY, Some(serde_json::json!({ "till_id": id }))) {
        tracing::warn!("this till's id could not be kept; a new one is made at the next start: {e}");
    }
    id
}
