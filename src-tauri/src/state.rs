//! The app's managed state: settings, who is logged in, the running feed, the outlet.

use crate::feed::Feed;
use crate::outlet::Outlet;
use crate::settings::{SESSION_KEY, SETTINGS_KEY, Settings, StoredSession, Vault};
use std::sync::{Arc, Mutex};

pub struct AppState {
    pub vault: Arc<dyn Vault>,
    pub settings: Mutex<Settings>,
    pub session: Mutex<Option<StoredSession>>,
    /// A tokio mutex: stopping a feed is awaited while holding it, so two logins cannot race.
    pub feed: tokio::sync::Mutex<Option<Feed>>,
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
            outlet: Outlet::default(),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn session(&self) -> Option<StoredSession> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
