//! How the window's web view renders (Linux, WebKitGTK).
//!
//! WebKitGTK's accelerated compositing gives a scrolled table a backing store as tall as
//! the whole table: measured with `bench/app-run.sh`, 400 rows cost the web process about
//! 85 MiB, and it kept growing with the number of products. Rendering without it paints
//! only what is visible: after login the dashboard then weighs a little less than an empty
//! Tauri window with WebKit's defaults (the README's app benchmark has the figures). The
//! page has nothing that needs the GPU (no 3D, no video; its highlights animate background
//! colours).

use tauri::{Runtime, WebviewWindow};

/// Applies the rendering policy to `window`'s web view (a no-op off Linux).
pub fn configure<R: Runtime>(window: &WebviewWindow<R>) {
    #[cfg(target_os = "linux")]
    {
        let applied = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(e) = applied {
            tracing::warn!("cannot configure the web view's rendering: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}
