//! The logged-in session's lifecycle, independent of how it was asked for (a command, a
//! remembered session at start): keep it (token in the credential store, user in the
//! vault) or not, start the feed for a token, stop it, forget a token the server refused.
//! Calls into the credential store block (D-Bus, Windows APIs), so they run on tokio's
//! blocking threads.

use crate::credentials::CredentialError;
use crate::error::{CommandError, ErrorKind};
use crate::feed::{Feed, FeedSink};
use crate::settings::{LiveSession, RememberedUser, SESSION_KEY, Settings, VaultError};
use crate::state::{AppState, lock};
use chrono::Utc;
use secrecy::ExposeSecret;
use std::sync::Arc;
use stock_client::Trust;
use stock_client::{ClientEvent, StateChange};
use stock_protocol::ConnectionState;

/// (Re)starts the feed for `token` on the settings' socket address, with an empty view
/// (unless the view holds values restored from disk: those stay, marked not live, until
/// the feed's first catch-up completes).
pub async fn start_feed(state: Arc<AppState>, settings: &Settings, token: &str) {
    // Saved settings were checked when saved; a CA file gone since then is reported as the reason.
    let trust = match settings.trust() {
        Ok(trust) => trust,
        Err(e) => {
            tracing::warn!("{}", e.message);
            Trust::system()
        }
    };
    let mut feed = state.feed.lock().await;
    if let Some(old) = feed.take() {
        old.stop().await;
    }
    let missing_since = state.last_known_since();
    if missing_since.is_none() {
        state.clear_view();
    }
    // Weak: the state owns the feed, the feed must not keep the state alive.
    let sink: std::sync::Weak<dyn FeedSink> = Arc::downgrade(&state) as std::sync::Weak<dyn FeedSink>;
    let config = stock_client::ClientConfig { missing_since, ..Default::default() };
    *feed = Some(Feed::start(&settings.socket_url, token, trust, config, state.till_identity(), sink));
}

impl FeedSink for AppState {
    fn event(self: Arc<Self>, event: ClientEvent) {
        let refused = matches!(event, ClientEvent::Unauthorized { .. });
        self.record(event);
        if refused {
            let state = self;
            // The server no longer accepts this token: forget it, so the next start asks to
            // log in (on a task of its own: the credential store may take a while).
            tokio::spawn(async move {
                if let Err(e) = forget_now(state).await {
                    tracing::warn!("could not forget the refused session: {e}");
                }
            });
        }
    }

    fn shown(&self) -> (usize, bool) {
        AppState::shown(self)
    }

    fn diagnostics(self: Arc<Self>) -> futures_util::future::BoxFuture<'static, String> {
        Box::pin(async move { crate::diagnostics::text(&crate::diagnostics::collect(&self).await) })
    }
}

/// The longest the app waits for the credential store. A locked keyring may show the
/// user a prompt and wait for it; past this, the store counts as unavailable for now
/// (the page says why) instead of the app hanging.
pub const CREDENTIAL_STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `call` (which may block on D-Bus or OS APIs) on a blocking thread, for at most
/// [`CREDENTIAL_STORE_WAIT`].
async fn with_store<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
) -> Result<T, CredentialError> {
    match tokio::time::timeout(CREDENTIAL_STORE_WAIT, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(CredentialError::Failed(e.to_string())),
        Err(_) => Err(CredentialError::Unavailable(format!(
            "it did not answer within {} s (is the keyring locked?)",
            CREDENTIAL_STORE_WAIT.as_secs()
        ))),
    }
}

/// Looks for a remembered session (the user in the vault, the token in the credential
/// store) and, when there is one, logs it in and starts its feed. Marks the state
/// restored either way, so the page's `current_session` can answer.
pub async fn restore(state: Arc<AppState>) {
    if let Some(remembered) = state.remembered_user() {
        let store = state.clone();
        match with_store(move || store.credentials.load()).await {
            Ok(Some(token)) => {
                let live = LiveSession { token, user: remembered.user };
                *lock(&state.session) = Some(live.clone());
                let settings = state.settings();
                start_feed(state.clone(), &settings, live.token.expose_secret()).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("the remembered session cannot be read: {e}"),
        }
    }
    state.restored.send_replace(true);
}

/// Waits (bounded) until [`restore`] has run.
pub async fn restored(state: &AppState) {
    let mut restored = state.restored.subscribe();
    let _ = tokio::time::timeout(CREDENTIAL_STORE_WAIT * 2, restored.wait_for(|done| *done)).await;
}

/// Whether tokens can be remembered here.
pub async fn remember_check(state: Arc<AppState>) -> Result<(), CredentialError> {
    with_store(move || state.remember_check()).await
}

/// Remembers `live` (token in the credential store, user in the vault) or, with
/// `remember` false, makes sure nothing of an earlier session is remembered.
pub async fn keep(state: Arc<AppState>, live: &LiveSession, remember: bool) -> Result<(), CommandError> {
    let token = live.token.clone();
    let user = RememberedUser { user: live.user.clone() };
    if remember {
        let store = state.clone();
        with_store(move || store.credentials.save(&token)).await.map_err(|e| {
            CommandError::new(ErrorKind::RememberUnavailable, format!("could not keep the session: {e}"))
        })?;
        let value = serde_json::to_value(&user).unwrap_or_default();
        state.vault.save(SESSION_KEY, Some(value)).map_err(ForgetError::from)
    } else {
        forget_now(state).await
    }
    .map_err(|e| CommandError::new(ErrorKind::Storage, format!("could not save the session: {e}")))
}

/// Why a session could not be forgotten everywhere (the rest of it was).
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// [`forget`] on a blocking thread, bounded like every call to the credential store.
async fn forget_now(state: Arc<AppState>) -> Result<(), ForgetError> {
    with_store(move || Ok(forget(&state))).await.unwrap_or_else(|e| Err(e.into()))
}

/// Stops the feed and forgets the session (in memory and remembered); the view is emptied
/// and the page told "logged out".
pub async fn end(state: Arc<AppState>) -> Result<(), CommandError> {
    if let Some(feed) = state.feed.lock().await.take() {
        feed.stop().await;
    }
    let saved = forget_now(state.clone())
        .await
        .map_err(|e| CommandError::new(ErrorKind::Storage, format!("could not forget the session: {e}")));
    state.clear_view();
    state.record(ClientEvent::State(StateChange {
        state: ConnectionState::Offline,
        reason: Some("logged out".into()),
        since: Utc::now(),
        attempt: 0,
    }));
    saved
}

/// Forgets the session: in memory, the user in the vault, the token in the credential
/// store (where there is none, there is nothing to delete).
fn forget(state: &AppState) -> Result<(), ForgetError> {
    *lock(&state.session) = None;
    let vault = state.vault.save(SESSION_KEY, None);
    let credentials = match state.credentials.delete() {
        Err(CredentialError::Unavailable(_)) => Ok(()),
        other => other,
    };
    vault?;
    Ok(credentials?)
}
