//! The logged-in session's lifecycle, independent of how it was asked for (a command, a
//! remembered session at start): start the feed for a token, stop it, forget a token the
//! server refused.

use crate::feed::Feed;
use crate::settings::SESSION_KEY;
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
            if let Err(e) = forget(&state) {
                tracing::warn!("could not forget the refused session: {e}");
            }
        }
    }));
}

/// Stops the feed and forgets the session (in memory and remembered); the view is emptied
/// and the page told "logged out".
pub async fn end(state: &AppState) -> Result<(), String> {
    if let Some(feed) = state.feed.lock().await.take() {
        feed.stop().await;
    }
    let saved = forget(state);
    state.clear_view();
    state.record(ClientEvent::State(StateChange {
        state: ConnectionState::Offline,
        reason: Some("logged out".into()),
        since: Utc::now(),
        attempt: 0,
    }));
    saved
}

fn forget(state: &AppState) -> Result<(), String> {
    *lock(&state.session) = None;
    state.vault.save(SESSION_KEY, None)
}
