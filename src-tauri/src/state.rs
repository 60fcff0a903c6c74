//! The app's managed state: settings, who is logged in, the running feed, the dashboard
//! model (its one owner) and the outlet to the page; where settings and tokens are kept.

use crate::credentials::{CredentialError, CredentialStore};
use crate::feed::Feed;
use crate::outlet::Outlet;
use crate::page::PageUpdate;
use crate::settings::{LiveSession, RememberedUser, SESSION_KEY, SETTINGS_KEY, Settings, Vault};
use std::sync::{Arc, Mutex, MutexGuard};
use stock_client::ClientEvent;
use stock_client::dashboard::{Dashboard, DashboardView};

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
        AppState {
            vault,
            credentials,
            settings: Mutex::new(settings),
            session: Mutex::new(None),
            restored: tokio::sync::watch::channel(false).0,
            feed: tokio::sync::Mutex::new(None),
            dashboard: Mutex::new(Dashboard::default()),
            outlet: Outlet::default(),
        }
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
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
