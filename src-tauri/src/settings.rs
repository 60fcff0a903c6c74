//! Server addresses and the remembered user, and where they are kept (the token is in the
//! credential store: [`crate::credentials`]).
//!
//! Precedence: settings saved in the app, then `MEDIBOY_API_BASE_URL` / `VITE_SOCKET_URL`,
//! then [`DEMO_URL`] (a local `stock-bridge demo`).

use crate::error::{CommandError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stock_client::{Token, User};

/// The embedded default: `stock-bridge demo` on this machine.
pub const DEMO_URL: &str = "http://127.0.0.1:3001";

/// The two addresses the app talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub api_base_url: String,
    pub socket_url: String,
}

impl Settings {
    /// From the environment, else the demo.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        Settings {
            api_base_url: var("MEDIBOY_API_BASE_URL").unwrap_or_else(|| DEMO_URL.into()),
            socket_url: var("VITE_SOCKET_URL").unwrap_or_else(|| DEMO_URL.into()),
        }
    }

    /// Trims and checks both URLs (with the `url` crate); refuses anything but an
    /// http(s) address with a host.
    pub fn validated(self) -> Result<Self, CommandError> {
        let check = |what: &str, raw: String| -> Result<String, CommandError> {
            let trimmed = raw.trim().trim_end_matches('/').to_owned();
            let invalid =
                |why: &str| CommandError::new(ErrorKind::InvalidSettings, format!("{what} {why}, got {trimmed:?}"));
            if trimmed.contains(char::is_whitespace) {
                return Err(invalid("must not contain spaces"));
            }
            let url = url::Url::parse(&trimmed).map_err(|_| invalid("must be an http:// or https:// address"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("must be an http:// or https:// address"));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("must name a host"));
            }
            Ok(trimmed)
        };
        Ok(Settings {
            api_base_url: check("The API address", self.api_base_url)?,
            socket_url: check("The socket address", self.socket_url)?,
        })
    }
}

/// Who is logged in, in memory. The token is a `secrecy::SecretString`.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub token: Token,
    pub user: Option<User>,
}

/// What the store file keeps of a remembered session: who, never the token (that is in
/// the credential store: [`crate::credentials`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RememberedUser {
    pub user: Option<User>,
}

/// Where settings and the remembered user are kept (the store plugin in the app, memory
/// in tests). Never a token.
pub trait Vault: Send + Sync + 'static {
    fn load(&self, key: &str) -> Option<Value>;
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), String>;
}

pub const SETTINGS_KEY: &str = "settings";
pub const SESSION_KEY: &str = "session";

/// A [`Vault`] in memory.
#[derive(Default)]
pub struct MemoryVault(std::sync::Mutex<std::collections::HashMap<String, Value>>);

impl MemoryVault {
    /// Everything kept, as the store file would hold it.
    pub fn contents(&self) -> String {
        serde_json::to_string(&*self.0.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or_default()
    }
}

impl Vault for MemoryVault {
    fn load(&self, key: &str) -> Option<Value> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(v) => map.insert(key.to_owned(), v),
            None => map.remove(key),
        };
        Ok(())
    }
}

/// The store plugin's `dashboard.json` in the app's data folder.
pub struct StoreVault<R: tauri::Runtime>(pub std::sync::Arc<tauri_plugin_store::Store<R>>);

impl<R: tauri::Runtime> Vault for StoreVault<R> {
    fn load(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), String> {
        match value {
            Some(v) => self.0.set(key, v),
            None => {
                self.0.delete(key);
            }
        }
        self.0.save().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_addresses_are_accepted() {
        let ok = Settings { api_base_url: " http://api.local/ ".into(), socket_url: "https://ws.local".into() }
            .validated()
            .unwrap();
        assert_eq!(ok.api_base_url, "http://api.local");
        for bad in ["", "ftp://x", "http://", "api.local", "http://a b", "https://:80", "http://[::1"] {
            let err = Settings { api_base_url: bad.into(), socket_url: DEMO_URL.into() }.validated().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidSettings, "{bad}");
        }
    }
}
