//! The app's managed state: settings, who is logged in, the running feed, the dashboard
//! model (its one owner) and the outlet to the page.

use crate::feed::Feed;
use crate::outlet::Outlet;
use crate::page::PageUpdate;
use crate::settings::{SESSION_KEY, SETTINGS_KEY, Settings, StoredSession, Vault};
use std::sync::{Arc, Mutex, MutexGuard};
use stock_client::ClientEvent;
use stock_client::dashboard::{Dashboard, DashboardView};

pub struct AppState {
    pub vault: Arc<dyn Vault>,
    pub settings: Mutex<Settings>,
    pub session: Mutex<Option<StoredSession>>,
    /// A tokio mutex: stopping a feed is awaited while holding it, so two logins cannot race.
    pub feed: tokio::sync::Mutex<Option<Feed>>,
    dashboard: Mutex<Dashboard>,
    pub outlet: Outlet,
}

impl AppState {
    /// Loads saved settings (else the environment's) and a remembered session.
    pub fn load(vault: Arc<dyn Vault>) -> Self {
        let settings = vault
            .load(SETTINGS_KEY)
            .and_then(|v| serde_json::from_value::<Settings>(v).ok())
            .and_then(|s| s.validated().ok())
            .unwrap_or_else(Settings::from_env);
        let session = vault.load(SESSION_KEY).and_then(|v| serde_json::from_value::<StoredSession>(v).ok());
        AppState {
            vault,
            settings: Mutex::new(settings),
            session: Mutex::new(session),
            feed: tokio::sync::Mutex::new(None),
            dashboard: Mutex::new(Dashboard::default()),
            outlet: Outlet::default(),
        }
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    pub fn session(&self) -> Option<StoredSession> {
        lock(&self.session).clone()
    }

    /// Records `event` in the dashboard, then hands its change to the page. (In this order:
    /// a page that reads the view in between sees the change twice, never not at all.)
    pub fn record(&self, event: ClientEvent) {
        let change = lock(&self.dashboard).apply(event);
        self.outlet.publish(PageUpdate::from(change));
    }

    /// Everything a page needs to draw itself now.
    pub fn view(&self) -> DashboardView {
        lock(&self.dashboard).view()
    }

    /// Forgets the products and notices shown (a new login, a logout); keeps the state history.
    pub fn clear_view(&self) {
        lock(&self.dashboard).clear();
    }
}

/// A poisoned lock still holds usable data here (plain values, no invariants across locks).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
