//! The commands the page may call (and nothing else: see `capabilities/default.json`).
//! The token never leaves Rust: the page learns who is logged in, not how.

use crate::error::{CommandError, ErrorKind};
use crate::outlet::Batch;
use crate::session;
use crate::settings::{LiveSession, SETTINGS_KEY, Settings};
use crate::state::{AppState, lock};

use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::Arc;
use stock_client::dashboard::DashboardView;
use stock_client::{LoginTarget, User};
use tauri::State;

type AppStateRef<'a> = State<'a, Arc<AppState>>;

/// Who is logged in, as far as the page needs to know.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub logged_in: bool,
    pub user: Option<User>,
    pub settings: Settings,
    /// Whether "remember me" can work on this computer.
    pub remember: RememberView,
    /// An address is http:// to another computer (the operator allowed it): the banner says so.
    pub unencrypted: bool,
    /// The products the operator watches (starred in the table).
    pub watched: Vec<i64>,
}

/// "Remember me" is possible only with a credential store.
#[derive(Debug, Clone, Serialize)]
pub struct RememberView {
    pub available: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

async fn session_view(state: &Arc<AppState>) -> SessionView {
    let session = state.session();
    let check = session::remember_check(state.clone()).await;
    SessionView {
        logged_in: session.is_some(),
        user: session.and_then(|s| s.user),
        settings: state.settings(),
        remember: RememberView { available: check.is_ok(), reason: check.err().map(|e| e.to_string()) },
        unencrypted: state.settings().unencrypted(),
        watched: state.watched(),
    }
}

/// Watches a product (a notification when it runs out or comes back) or stops watching it.
/// Returns the whole list, as saved.
#[tauri::command]
pub fn set_watched(state: AppStateRef<'_>, product_id: i64, watched: bool) -> Result<Vec<i64>, CommandError> {
    state
        .set_watched(product_id, watched)
        .map_err(|e| CommandError::new(ErrorKind::Storage, format!("the watched products could not be saved: {e}")))
}

#[tauri::command]
pub async fn login(
    state: AppStateRef<'_>,
    email: String,
    password: String,
    remember: bool,
) -> Result<SessionView, CommandError> {
    if remember && let Err(e) = session::remember_check(state.inner().clone()).await {
        // Before logging in: nothing changes, and the page says why.
        return Err(CommandError::new(ErrorKind::RememberUnavailable, format!("\"Remember me\" is not possible: {e}")));
    }
    let settings = state.settings();
    let target = LoginTarget { trust: settings.trust()?, ..LoginTarget::new(settings.api_base_url.clone()) };
    let session = stock_client::login(&target, &email, &password).await?;
    let live = LiveSession { token: session.token, user: session.user };
    session::keep(state.inner().clone(), &live, remember).await?;
    *lock(&state.session) = Some(live.clone());
    session::start_feed(state.inner().clone(), &settings, live.token.expose_secret()).await;
    Ok(session_view(state.inner()).await)
}

#[tauri::command]
pub async fn logout(state: AppStateRef<'_>) -> Result<(), CommandError> {
    session::end(state.inner().clone()).await
}

/// The page's first call once it has loaded.
#[tauri::command]
pub async fn current_session(state: AppStateRef<'_>) -> Result<SessionView, CommandError> {
    static FIRST: std::sync::Once = std::sync::Once::new();
    FIRST.call_once(|| {
        if let Some(started) = crate::STARTED.get() {
            tracing::info!("page ready after {} ms", started.elapsed().as_millis());
        }
    });
    session::restored(&state).await;
    Ok(session_view(state.inner()).await)
}

#[tauri::command]
pub fn get_settings(state: AppStateRef<'_>) -> Settings {
    state.settings()
}

/// Saves new settings; a running feed moves to the new socket address (and reconnects as
/// the till's new name).
#[tauri::command]
pub async fn save_settings<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: AppStateRef<'_>,
    settings: Settings,
) -> Result<Settings, CommandError> {
    let settings = settings.validated()?;
    let value = serde_json::to_value(&settings).unwrap_or_default();
    state
        .vault
        .save(SETTINGS_KEY, Some(value))
        .map_err(|e| CommandError::new(ErrorKind::Storage, format!("could not save the settings: {e}")))?;
    let previous = std::mem::replace(&mut *lock(&state.settings), settings.clone());
    // (The feed's lock is released before restarting it: start_feed takes it itself.)
    let feed_running = state.feed.lock().await.is_some();
    // The till's name travels in the handshake: a new one takes a new connection.
    if (previous.socket_url != settings.socket_url
        || previous.ca_file != settings.ca_file
        || previous.till_name != settings.till_name)
        && feed_running
        && let Some(session) = state.session()
    {
        session::start_feed(state.inner().clone(), &settings, session.token.expose_secret()).await;
    }
    if previous.update_url != settings.update_url {
        crate::updates::start(&app, state.inner());
    }
    Ok(settings)
}

/// Starts queueing updates for this page; returns its generation for `next_updates`.
/// The page then reads the whole view with `dashboard`, so nothing is missed in between.
#[tauri::command]
pub fn subscribe(state: AppStateRef<'_>) -> u64 {
    state.outlet.subscribe()
}

/// The next batch of updates for the page of `generation` (waits while there is none, up
/// to `outlet::POLL_WAIT`): see [`crate::outlet`].
#[tauri::command]
pub async fn next_updates(state: AppStateRef<'_>, generation: u64) -> Result<Batch, CommandError> {
    Ok(state.outlet.next_updates(generation).await?)
}

/// Everything the page needs to draw itself now.
#[tauri::command]
pub fn dashboard(state: AppStateRef<'_>) -> DashboardView {
    state.view()
}

#[tauri::command]
pub async fn diagnostics(state: AppStateRef<'_>) -> Result<crate::diagnostics::Diagnostics, CommandError> {
    Ok(crate::diagnostics::collect(&state).await)
}

/// Where updating stands (the page's first look; changes come as `update` updates).
#[tauri::command]
pub fn update_status(state: AppStateRef<'_>) -> stock_client::update::UpdateView {
    state.update_view()
}

/// The banner's Install and restart / Later, Diagnostics' Check now.
#[tauri::command]
pub fn update_action(state: AppStateRef<'_>, action: crate::updates::UpdateAction) -> Result<(), CommandError> {
    let asked = lock(&state.updates).as_ref().is_some_and(|feed| feed.updates.ask(action.into()));
    if asked {
        Ok(())
    } else {
        Err(CommandError::new(ErrorKind::UpdatesOff, "Updates are off: no update address is set in Settings"))
    }
}
