//! Where a remembered session's token lives: the operating system's credential store,
//! through the `keyring` crate (Secret Service on Linux, Credential Manager on Windows,
//! Keychain on macOS) — never a file. The store file (`crate::settings::Vault`) keeps only
//! the settings and the user's display name. When no credential store answers, "remember
//! me" is unavailable and the page says why; there is no plaintext fallback.

use secrecy::{ExposeSecret, SecretString};
use std::sync::Mutex;

/// The name the app's credential is filed under.
pub const SERVICE: &str = "stock-dashboard";
const ACCOUNT: &str = "session";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No credential store answers (no Secret Service on this desktop, a locked keychain…).
    #[error("this computer's credential store is not available ({0})")]
    Unavailable(String),
    #[error("the credential store failed: {0}")]
    Failed(String),
}

/// Keeps at most one token (the remembered session's).
pub trait CredentialStore: Send + Sync + 'static {
    /// Ok when tokens can be kept; else why not.
    fn check(&self) -> Result<(), CredentialError>;
    fn load(&self) -> Result<Option<SecretString>, CredentialError>;
    fn save(&self, token: &SecretString) -> Result<(), CredentialError>;
    /// Removes the token (nothing to remove is fine).
    fn delete(&self) -> Result<(), CredentialError>;
}

/// The operating system's store.
pub struct OsCredentials {
    service: String,
}

impl OsCredentials {
    /// The app's entry; tests pass a service name of their own.
    pub fn new(service: &str) -> Self {
        OsCredentials { service: service.to_owned() }
    }

    fn entry(&self) -> Result<keyring::Entry, CredentialError> {
        keyring::Entry::new(&self.service, ACCOUNT).map_err(classify)
    }
}

fn classify(e: keyring::Error) -> CredentialError {
    match e {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            CredentialError::Unavailable(e.to_string())
        }
        other => CredentialError::Failed(other.to_string()),
    }
}

impl CredentialStore for OsCredentials {
    fn check(&self) -> Result<(), CredentialError> {
        self.load().map(|_| ())
    }

    fn load(&self) -> Result<Option<SecretString>, CredentialError> {
        match self.entry()?.get_password() {
            Ok(token) => Ok(Some(SecretString::from(token))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    fn save(&self, token: &SecretString) -> Result<(), CredentialError> {
        self.entry()?.set_password(token.expose_secret()).map_err(classify)
    }

    fn delete(&self) -> Result<(), CredentialError> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// A store in memory (tests), or one that is unavailable with a reason.
#[derive(Default)]
pub struct MemoryCredentials {
    token: Mutex<Option<SecretString>>,
    unavailable: Option<String>,
}

impl MemoryCredentials {
    pub fn unavailable(reason: &str) -> Self {
        MemoryCredentials { token: Mutex::default(), unavailable: Some(reason.to_owned()) }
    }
}

impl CredentialStore for MemoryCredentials {
    fn check(&self) -> Result<(), CredentialError> {
        match &self.unavailable {
            Some(why) => Err(CredentialError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }
    fn load(&self) -> Result<Option<SecretString>, CredentialError> {
        self.check()?;
        Ok(self.token.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
    fn save(&self, token: &SecretString) -> Result<(), CredentialError> {
        self.check()?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(())
    }
    fn delete(&self) -> Result<(), CredentialError> {
        self.check()?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}
