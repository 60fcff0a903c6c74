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
//! - [`diagnostics`]: what support reads about this till (panel, Copy, and the fleet view's
//!   request through the bridge).
//! - [`updates`]: signed automatic updates (tauri-plugin-updater under
//!   `stock_client::update`'s policy).
//! - [`launch`]: what a launch was asked to do (`--quit`, `--forget-credential`: the
//!   Windows installer's and uninstaller's requests).
//! - [`webview`]: how the window's web view renders (memory).
//! - [`notify`]: desktop notifications (tauri-plugin-notification) for what
//!   `stock_client::alerts` decides deserves one.
//! - [`tray`]: the tray icon following the connection state, hiding to the tray, and
//!   bringing the window back (a second launch does, through tauri-plugin-single-instance).
//!   The window's size and place are kept by tauri-plugin-window-state.

pub mod commands;
pub mod credentials;
pub mod diagnostics;
pub mod error;
pub mod feed;
pub mod launch;
pub mod notify;
pub mod outlet;
pub mod page;
pub mod session;
pub mod settings;
pub mod state;
pub mod tray;
pub mod updates;
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
        commands::set_watched,
        commands::update_status,
        commands::update_action,
    ]
}

/// Starts the feed of a remembered session, so it skips the login screen.
pub fn resume(state: Arc<AppState>) {
    tauri::async_runtime::spawn(session::restore(state));
}

/// Whether the single-instance check can run: on Linux it needs a D-Bus session bus (the
/// plugin would stop the app without one).
fn single_instance_possible() -> bool {
    #[cfg(target_os = "linux")]
    {
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
            || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists())
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// How often the table is written to disk for the next start (when it changed): a till
/// that loses power loses at most this much; a clean exit writes it too.
pub const KEEP_LAST_KNOWN_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

async fn keep_last_known(state: Arc<AppState>) {
    let mut every = tokio::time::interval(KEEP_LAST_KNOWN_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        // On this task, not on a blocking thread: a few milliseconds for a big table, and
        // blocking threads come and go, each leaving glibc an arena of freed memory it
        // keeps (the app's RSS grew by ~25 MiB over the benchmark's hour that way).
        state.keep_last_known();
    }
}

/// The task writing the last known values; stopped with the app.
struct LastKnownKeeper(tauri::async_runtime::JoinHandle<()>);

impl Drop for LastKnownKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `--forget-credential`: removes the remembered session's token; the exit status says
/// whether it could.
fn forget_credential() -> i32 {
    use credentials::CredentialStore;
    match credentials::OsCredentials::new(credentials::SERVICE).delete() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("stock-dashboard: could not remove the saved sign-in: {e}");
            1
        }
    }
}

/// When the process started, for the "page ready" log line (read by `bench/app-bench.js`).
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

pub fn run() {
    STARTED.get_or_init(std::time::Instant::now);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let launch = launch::Launch::from_args(std::env::args_os());
    if launch == launch::Launch::ForgetCredential {
        std::process::exit(forget_credential());
    }
    let mut builder = tauri::Builder::default();
    let single_instance = single_instance_possible();
    if single_instance {
        // First, so a second launch stops before it does anything else (it hands its
        // command line to the running app, here).
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, args, _cwd| {
            if launch::Launch::from_args(&args) == launch::Launch::Quit {
                tracing::info!("another launch asked this app to quit (an installer replacing it)");
                app.exit(0);
            } else {
                tracing::info!("another launch: bringing this window to the front");
                tray::bring_to_front(app);
            }
        }));
    } else {
        tracing::warn!("no D-Bus session bus: a second launch will open a second window");
    }
    if launch == launch::Launch::Quit && !single_instance {
        eprintln!("stock-dashboard: --quit: no session bus here, so no running app can be reached");
        std::process::exit(0);
    }
    let result = builder
        .plugin(tauri_plugin_window_state::Builder::default().with_state_flags(tray::kept_window_state()).build())
        .plugin(tauri_plugin_store::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_updater::Builder::new().build())
        .setup(move |app| {
            if launch == launch::Launch::Quit {
                // No running app took the request (a running one would have, above): done.
                tracing::info!("--quit: no running app");
                std::process::exit(0);
            }
            let store = app.store(STORE_FILE)?;
            let credentials = Arc::new(credentials::OsCredentials::new(credentials::SERVICE));
            let mut state = AppState::load(Arc::new(StoreVault(store)), credentials);
            state.version = app.package_info().version.to_string();
            let state = Arc::new(state);
            *state::lock(&state.notifier) = Some(notify::start(app.handle().clone()));
            app.manage(LastKnownKeeper(tauri::async_runtime::spawn(keep_last_known(state.clone()))));
            resume(state.clone());
            tray::install(app.handle(), state.clone());
            updates::start(app.handle(), &state);
            app.manage(state);
            if let Some(window) = app.get_webview_window("main") {
                webview::configure(&window);
            }
            Ok(())
        })
        .on_window_event(tray::on_window_event)
        .invoke_handler(handler())
        .build(tauri::generate_context!())
        .map(|app| {
            app.run(|app, event| {
                if let tauri::RunEvent::Exit = event
                    && let Some(state) = app.try_state::<Arc<AppState>>()
                {
                    state.keep_last_known();
                }
            })
        });
    if let Err(e) = result {
        eprintln!("stock-dashboard: {e}");
        std::process::exit(1);
    }
}
