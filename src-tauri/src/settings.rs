//! Server addresses and the remembered user, and where they are kept (the token is in the
//! credential store: [`crate::credentials`]).
//!
//! Precedence: settings saved in the app, then `MEDIBOY_API_BASE_URL` / `VITE_SOCKET_URL`,
//! then [`DEMO_URL`] (a local `stock-bridge demo`).

use crate::error::{CommandError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stock_client::{Token, Trust, User};

/// The embedded default: `stock-bridge demo` on this machine.
pub const DEMO_URL: &str = "http://127.0.0.1:3001";

/// The two addresses the app talks to, how it trusts them, and how the window behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub api_base_url: String,
    pub socket_url: String,
    /// A private CA bundle (PEM file) trusted besides the system's, for login and socket.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The operator's explicit choice to use http:// with a host other than this computer.
    #[serde(default)]
    pub allow_unencrypted: bool,
    /// Closing the window keeps the app running in the tray (on by default).
    #[serde(default = "on")]
    pub close_to_tray: bool,
    /// Desktop notifications: sale mode changes, watched products out of stock or back (on by default).
    #[serde(default = "on")]
    pub notifications: bool,
    /// What support staff see this till called ("Dhanmondi, counter 2"); may be empty.
    #[serde(default)]
    pub till_name: String,
    /// Where the chain publishes releases (a `latest.json`, https://); empty: no updates.
    #[serde(default)]
    pub update_url: String,
}

/// Where an installer names the till (the name set in Settings wins).
pub const TILL_NAME_VAR: &str = "STOCK_DASHBOARD_TILL_NAME";
/// Where an installer sets the update address (the one set in Settings wins).
pub const UPDATE_URL_VAR: &str = "STOCK_DASHBOARD_UPDATE_URL";

fn on() -> bool {
    true
}

impl Settings {
    /// From the environment, else the demo.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        let mut settings = Settings {
            api_base_url: var("MEDIBOY_API_BASE_URL").unwrap_or_else(|| DEMO_URL.into()),
            socket_url: var("VITE_SOCKET_URL").unwrap_or_else(|| DEMO_URL.into()),
            ca_file: var(stock_client::trust::CA_FILE_VAR),
            allow_unencrypted: false,
            close_to_tray: true,
            notifications: true,
            till_name: var(TILL_NAME_VAR).unwrap_or_default(),
            update_url: var(UPDATE_URL_VAR).unwrap_or_default(),
        };
        // Addresses given by the environment are the installer's choice: an unencrypted one
        // is taken as allowed (and flagged in the banner), and shows so in Settings.
        settings.allow_unencrypted = settings.unencrypted();
        settings
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
        let settings = Settings {
            api_base_url: check("The API address", self.api_base_url)?,
            // One address, or a cluster's nodes separated by commas (the till moves on to
            // the next when one fails).
            socket_url: {
                let checked: Vec<String> = self
                    .socket_url
                    .split(',')
                    .map(|one| check("The socket address", one.to_owned()))
                    .collect::<Result<_, _>>()?;
                checked.join(", ")
            },
            ca_file: self.ca_file.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()),
            allow_unencrypted: self.allow_unencrypted,
            close_to_tray: self.close_to_tray,
            notifications: self.notifications,
            till_name: self.till_name.trim().to_owned(),
            update_url: check_update_url(self.update_url)?,
        };
        if settings.till_name.chars().count() > stock_protocol::till::TILL_NAME_MAX
            || settings.till_name.chars().any(char::is_control)
        {
            return Err(CommandError::new(
                ErrorKind::InvalidSettings,
                format!(
                    "The till name must be at most {} characters, without line breaks",
                    stock_protocol::till::TILL_NAME_MAX
                ),
            ));
        }
        if !settings.allow_unencrypted {
            let sockets = stock_client::link::split_addresses(&settings.socket_url);
            let api = [("The API address", &settings.api_base_url)];
            for (what, address) in api.into_iter().chain(sockets.iter().map(|a| ("The socket address", a))) {
                if stock_client::trust::is_unencrypted_remote(address) {
                    return Err(CommandError::new(
                        ErrorKind::InvalidSettings,
                        format!(
                            "{what} {address} is not encrypted: the password would travel in clear. Use https://, \
                             or tick \"Allow unencrypted connection\" if this network is trusted"
                        ),
                    ));
                }
            }
        }
        settings.trust()?;
        Ok(settings)
    }

    /// The update address, when updates are on: an address saved in Settings was checked
    /// then, one from [`UPDATE_URL_VAR`] is checked here by the same rule (refused: updates
    /// stay off, and the log says why).
    pub fn update_url(&self) -> Option<url::Url> {
        match check_update_url(self.update_url.clone()) {
            Ok(address) if address.is_empty() => None,
            Ok(address) => url::Url::parse(&address).ok(),
            Err(e) => {
                tracing::warn!("updates are off: {}", e.message);
                None
            }
        }
    }

    /// Whether an address is http:// to another computer (the banner flags it).
    pub fn unencrypted(&self) -> bool {
        std::iter::once(self.api_base_url.clone())
            .chain(stock_client::link::split_addresses(&self.socket_url))
            .any(|a| stock_client::trust::is_unencrypted_remote(&a))
    }

    /// The servers trusted: the system's store, plus the CA file if one is set.
    pub fn trust(&self) -> Result<Trust, CommandError> {
        Trust::from_ca_file(self.ca_file.as_deref().map(std::path::Path::new))
            .map_err(|e| CommandError::new(ErrorKind::InvalidSettings, format!("{e}")))
    }
}

/// Empty (no updates), or an https:// address (http:// only to this computer) without a
/// user name or password in it (it is shown in Diagnostics).
fn check_update_url(raw: String) -> Result<String, CommandError> {
    let trimmed = raw.trim().to_owned();
    if trimmed.is_empty() {
        return Ok(trimmed);
    }
    let invalid =
        |why: &str| CommandError::new(ErrorKind::InvalidSettings, format!("The update address {why}, got {trimmed:?}"));
    let url = url::Url::parse(&trimmed).map_err(|_| invalid("must be an https:// address"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds a secret.
        return Err(CommandError::new(
            ErrorKind::InvalidSettings,
            "The update address must not contain a user name or password",
        ));
    }
    match url.scheme() {
        "https" => Ok(trimmed),
        "http" if !stock_client::trust::is_unencrypted_remote(&trimmed) => Ok(trimmed),
        "http" => Err(invalid("must be https:// (updates are fetched only over an encrypted connection)")),
        _ => Err(invalid("must be an https:// address")),
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
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), VaultError>;
}

/// The vault could not be written (its file: a full disk, a read-only folder).
#[derive(Debug, thiserror::Error)]
#[error("the app's store could not be written: {0}")]
pub struct VaultError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

pub const SETTINGS_KEY: &str = "settings";
pub const SESSION_KEY: &str = "session";
/// The products the operator watches (ids; not secret).
pub const WATCHED_KEY: &str = "watched";
/// This till's id for the fleet view (`{"till_id": ...}`; random, made at first start; not secret).
pub const TILL_KEY: &str = "till";
/// The table as last known ([`stock_client::dashboard::LastKnown`]; values, never a token).
pub const LAST_KNOWN_KEY: &str = "last_known";

/// The release the operator put off with Later (`{"version": ...}`): installed at the next start.
pub const UPDATE_LATER_KEY: &str = "update_later";

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
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), VaultError> {
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
    fn save(&self, key: &str, value: Option<Value>) -> Result<(), VaultError> {
        match value {
            Some(v) => self.0.set(key, v),
            None => {
                self.0.delete(key);
            }
        }
        self.0.save().map_err(|e| VaultError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings with these addresses, everything else at its plain value.
    fn with(api: &str, socket: &str, allow_unencrypted: bool) -> Settings {
        Settings {
            api_base_url: api.into(),
            socket_url: socket.into(),
            ca_file: None,
            allow_unencrypted,
            close_to_tray: true,
            notifications: true,
            till_name: String::new(),
            update_url: String::new(),
        }
    }

    #[test]
    fn only_http_addresses_are_accepted() {
        let at = |api: &str, socket: &str| with(api, socket, false);
        let ok = at(" https://api.local/ ", "https://ws.local").validated().unwrap();
        assert_eq!(ok.api_base_url, "https://api.local");
        for bad in ["", "ftp://x", "http://", "api.local", "http://a b", "https://:80", "http://[::1"] {
            let err = at(bad, DEMO_URL).validated().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidSettings, "{bad}");
        }
    }

    #[test]
    fn the_socket_address_may_list_a_clusters_nodes_each_checked() {
        let at = |socket: &str| with("https://api.local", socket, false);
        let ok = at(" https://node-a.local/ ,https://node-b.local:3001").validated().unwrap();
        assert_eq!(ok.socket_url, "https://node-a.local, https://node-b.local:3001");
        assert_eq!(stock_client::link::split_addresses(&ok.socket_url).len(), 2);
        for bad in ["https://a.local,", "https://a.local, ftp://b", "https://a.local,,https://b.local"] {
            assert_eq!(at(bad).validated().unwrap_err().kind, ErrorKind::InvalidSettings, "{bad}");
        }
        let err = at("https://a.local, http://b.example").validated().unwrap_err();
        assert!(err.message.contains("http://b.example is not encrypted"), "each node is checked: {}", err.message);
        let allowed = Settings { allow_unencrypted: true, ..at("https://a.local, http://b.example") };
        assert!(allowed.validated().unwrap().unencrypted(), "the banner flags any unencrypted node");
    }

    #[test]
    fn http_to_another_computer_needs_the_operators_explicit_choice() {
        let at = |api: &str, allow| with(api, "http://127.0.0.1:3001", allow);
        let err = at("http://remote.example", false).validated().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSettings);
        assert!(err.message.contains("http://remote.example is not encrypted"), "{}", err.message);
        for local in ["http://127.0.0.1:3001", "http://localhost:3001", "http://[::1]:3001", "https://remote.example"] {
            assert!(at(local, false).validated().is_ok(), "{local}");
        }
        let allowed = at("http://remote.example", true).validated().unwrap();
        assert!(allowed.unencrypted(), "the banner flags it");
        assert!(!at("https://remote.example", false).validated().unwrap().unencrypted());
    }

    #[test]
    fn the_update_address_is_https_or_this_computer_and_carries_no_password() {
        let at = |url: &str| Settings { update_url: url.into(), ..Settings::from_env() }.validated();
        assert_eq!(at("  ").unwrap().update_url, "", "blank: no updates");
        assert_eq!(
            at(" https://updates.chain.example/latest.json ").unwrap().update_url,
            "https://updates.chain.example/latest.json"
        );
        assert!(at("http://127.0.0.1:8080/latest.json").is_ok(), "this computer may use http://");
        for (bad, says) in [
            ("http://updates.chain.example/latest.json", "encrypted"),
            ("https://user:secret@updates.chain.example/latest.json", "user name or password"),
            ("ftp://updates.chain.example/latest.json", "https://"),
            ("updates.chain.example", "https://"),
        ] {
            let err = at(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidSettings, "{bad}");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
            assert!(!err.message.contains("secret"), "no secret in an error text: {}", err.message);
        }
    }

    #[test]
    fn an_update_address_from_the_environment_follows_the_same_rule() {
        let given = |url: &str| Settings { update_url: url.into(), ..Settings::from_env() }.update_url();
        assert_eq!(given(""), None);
        assert_eq!(
            given("https://updates.chain.example/latest.json").unwrap().host_str(),
            Some("updates.chain.example")
        );
        assert!(given("http://127.0.0.1:8080/latest.json").is_some());
        assert_eq!(given("http://updates.chain.example/latest.json"), None, "http:// to another computer");
        assert_eq!(given("https://user:secret@updates.chain.example/latest.json"), None);
    }

    #[test]
    fn a_ca_file_is_checked_when_saved() {
        let settings = |ca: &str| Settings {
            api_base_url: "https://api.local".into(),
            socket_url: "https://ws.local".into(),
            ca_file: Some(ca.into()),
            allow_unencrypted: false,
            close_to_tray: true,
            notifications: true,
            till_name: String::new(),
            update_url: String::new(),
        };
        let err = settings("/nonexistent/ca.pem").validated().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSettings);
        assert!(err.message.contains("/nonexistent/ca.pem"), "names the file: {}", err.message);
        assert_eq!(settings("  ").validated().unwrap().ca_file, None, "blank means none");
    }
}
