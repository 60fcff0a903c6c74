//! Desktop notifications: the notices `stock_client::alerts` decides on (sale mode changes,
//! watched products out of stock or back, gathered and spaced), shown through
//! tauri-plugin-notification (on Linux the desktop's `org.freedesktop.Notifications`
//! service over D-Bus). Each notice is logged too (`notification: ...`).

use stock_client::alerts::{Notice, Notifier};
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;

/// Starts the notifier; its notices go to the desktop.
pub fn start<R: Runtime>(app: AppHandle<R>) -> Notifier {
    // The notifier's task runs on the app's tokio runtime.
    let _runtime = tauri::async_runtime::handle().inner().enter();
    Notifier::start(move |notice: Notice| {
        tracing::info!("notification: {} — {}", notice.title, notice.body.replace('\n', "; "));
        let app = app.clone();
        // A D-Bus call: off the async workers.
        tauri::async_runtime::spawn_blocking(move || {
            if let Err(e) = app.notification().builder().title(&notice.title).body(&notice.body).show() {
                tracing::warn!("notification not shown: {e}");
            }
        });
    })
}
