//! The logged-in session's lifecycle, independent of how it was asked for (a command, a
//! remembered session at start): keep it (token in the credential store, user in the
//! vault) or not, start the feed for a token, stop it, forget a token the server refused.
//! Calls into the credential store block (D-Bus, Windows APIs), so they run on tokio's
//! blocking threads.

use crate::credentials::CredentialError;
use crate::error::{CommandError, ErrorKind};
use crate::feed::Feed;
use crate::settings::{LiveSession, RememberedUser, SESSION_KEY};
use crate::state::{AppState, lock};
use chrono::Utc;
use std::sync::Arc;
use stock_client::{ClientEvent, StateChange};
use stock_protocol::ConnectionState;

/// (Re)starts the feed for `token` on `socket_url`, with an empty view.
pub async fn start_feed(state: Arc<AppState>, socket_url: &str, token: &str) {
    let mut feed = state.feed.lock().await;
    if let Some(old) = feed.take() {
        old.stop().await;
    }
    state.clear_view();
    // Weak: the state owns the feed, the feed must not keep the state alive.
    let weak = Arc::downgrade(&state);
    *feed = Some(Feed::start(socket_url, token, move |event| {
        let Some(state) = weak.upgrade() else { return };
        let refused = matches!(event, ClientEvent::Unauthorized { .. });
        state.record(event);
        if refused {
            // The server no longer accepts this token: forget it, so the next start asks to log in.
            // (On this forwarding task: the credential store's call blocks it briefly.)
            if let Err(e) = forget(&state) {
                tracing::warn!("could not forget the refused session: {e}");
            }
        }
    }));
}

/// Whether tokens can be remembered here.
pub async fn remember_check(state: Arc<AppState>) -> Result<(), CredentialError> {
    tokio::task::spawn_blocking(move || state.remember_check())
        .await
        .unwrap_or_else(|e| Err(CredentialError::Failed(e.to_string())))
}

/// Remembers `live` (token in the credential store, user in the vault) or, with
/// `remember` false, makes sure nothing of an earlier session is remembered.
pub async fn keep(state: Arc<AppState>, live: &LiveSession, remember: bool) -> Result<(), CommandError> {
    let token = live.token.clone();
    let user = RememberedUser { user: live.user.clone() };
    tokio::task::spawn_blocking(move || {
        if remember {
            state.credentials.save(&token).map_err(|e| {
                CommandError::new(ErrorKind::RememberUnavailable, format!("could not keep the session: {e}"))
            })?;
            let value = serde_json::to_value(&user).unwrap_or_default();
            state.vault.save(SESSION_KEY, Some(value))
        } else {
            forget(&state)
        }
        .map_err(|e| CommandError::new(ErrorKind::Storage, format!("could not save the session: {e}")))
    })
    .await
    .map_err(|e| CommandError::new(ErrorKind::Storage, e.to_string()))?
}

/// Stops the feed and forgets the session (in memory and remembered); the view is emptied
/// and the page told "logged out".
pub async fn end(state: Arc<AppState>) -> Result<(), CommandError> {
    if let Some(feed) = state.feed.lock().await.take() {
        feed.stop().await;
    }
    let forgetting = state.clone();
    let saved = tokio::task::spawn_blocking(move || forget(&forgetting))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
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
fn forget(state: &AppState) -> Result<(), String> {
    *lock(&state.session) = None;
    let vault = state.vault.save(SESSION_KEY, None);
    let credentials = match state.credentials.delete() {
        Err(CredentialError::Unavailable(_)) => Ok(()),
        other => other.map_err(|e| e.to_string()),
    };
    vault.and(credentials)
}
