//! The desktop app: a thin Tauri adapter over `stock-client`.
//!
//! # Layout
//! - [`commands`]: what the page may call (login, logout, settings, subscribe,
//!   next_updates, dashboard, diagnostics).
//! - [`session`]: the logged-in session's lifecycle (start the feed, end, forget a refused token).
//! - [`outlet`]: the one place that hands updates to the page (which pulls them, one batch
//!   per frame at most); [`page`]: the page's wire format.
//! - [`feed`]: the running live client and its forwarding task, owned and stoppable.
//! - [`state`]: managed state, the dashboard model's one owner; [`settings`]: addresses,
//!   the remembered user and the [`settings::Vault`] that keeps them (tauri-plugin-store);
//!   [`credentials`]: the remembered token, in the OS credential store (keyring).
//! - [`error`]: [`error::CommandError`], matched by `kind` in the page.
//! - [`webview`]: how the window's web view renders (memory).

pub mod commands;
pub mod credentials;
pub mod error;
pub mod feed;
pub mod outlet;
pub mod page;
pub mod session;
pub mod settings;
pub mod state;
pub mod webview;

use settings::StoreVault;
use state::AppState;
use std::sync::Arc;
use tauri::{Manager, Runtime};
use tauri_plugin_store::StoreExt;

/// The file the store plugin keeps settings and the remembered session in.
pub const STORE_FILE: &str = "dashboard.json";

/// The command handler, shared by the app and the tests.
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        commands::login,
        commands::logout,
        commands::current_session,
        commands::get_settings,
        commands::save_settings,
        commands::subscribe,
        commands::next_updates,
        commands::dashboard,
        commands::diagnostics,
    ]
}

/// Starts the feed of a remembered session, so it skips the login screen.
pub fn resume(state: Arc<AppState>) {
    tauri::async_runtime::spawn(session::restore(state));
}

/// When the process started, for the "page ready" log line (read by `bench/app-bench.js`).
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

pub fn run() {
    STARTED.get_or_init(std::time::Instant::now);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::default().build())
        .setup(|app| {
            let store = app.store(STORE_FILE)?;
            let credentials = Arc::new(credentials::OsCredentials::new(credentials::SERVICE));
            let state = Arc::new(AppState::load(Arc::new(StoreVault(store)), credentials));
            resume(state.clone());
            app.manage(state);
            if let Some(window) = app.get_webview_window("main") {
                webview::configure(&window);
            }
            Ok(())
        })
        .invoke_handler(handler())
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("stock-dashboard: {e}");
        std::process::exit(1);
    }
}
