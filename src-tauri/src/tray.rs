//! The tray icon and the window's life beside it: a dot in the connection state's colour,
//! the state words as its tooltip (and title, where the tray shows one), a menu with Show
//! and Quit; closing the window hides it to the tray when the settings say so; a second
//! launch brings the window to the front ([`bring_to_front`]).
//!
//! Each change is also logged (`tray: socket connected — ...`): a tray cannot be driven by
//! WebDriver, so the window tests read the log. On Linux the tray needs the
//! AppIndicator library; without it (or on a desktop without a tray) there is no icon
//! and nothing else changes.

use crate::state::AppState;
use std::sync::Arc;
use stock_client::StateChange;
use stock_protocol::ConnectionState;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime, WindowEvent};

pub const TRAY_ID: &str = "connection";
const SHOW_ID: &str = "show";
const QUIT_ID: &str = "quit";
/// Side of the generated icon, in pixels.
const ICON_PX: u32 = 32;

/// The colour of each state: the banner's (green, amber, red).
pub fn colour(state: ConnectionState) -> [u8; 3] {
    match state {
        ConnectionState::Connected => [0x1f, 0x9d, 0x55],
        ConnectionState::Connecting => [0xd9, 0x8e, 0x04],
        ConnectionState::Offline => [0xc6, 0x28, 0x28],
    }
}

/// The tooltip: the state words, and why when there is a reason.
pub fn tooltip(state: &StateChange) -> String {
    match &state.reason {
        Some(reason) => format!("Stock Dashboard: {} — {reason}", state.state.words()),
        None => format!("Stock Dashboard: {}", state.state.words()),
    }
}

/// A filled circle of `rgb` on a transparent square.
pub fn dot(rgb: [u8; 3]) -> Image<'static> {
    let mut rgba = Vec::with_capacity((ICON_PX * ICON_PX * 4) as usize);
    let centre = (ICON_PX as f32 - 1.0) / 2.0;
    let radius = ICON_PX as f32 / 2.0 - 2.0;
    for y in 0..ICON_PX {
        for x in 0..ICON_PX {
            let d = ((x as f32 - centre).powi(2) + (y as f32 - centre).powi(2)).sqrt();
            // One pixel of soft edge.
            let alpha = ((radius + 0.5 - d).clamp(0.0, 1.0) * 255.0) as u8;
            rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], alpha]);
        }
    }
    Image::new_owned(rgba, ICON_PX, ICON_PX)
}

/// Creates the tray icon (when the desktop can show one) and keeps it following the
/// connection state.
pub fn install<R: Runtime>(app: &AppHandle<R>, state: Arc<AppState>) {
    if !tray_available() {
        tracing::info!("tray: not available here (no AppIndicator library); closing the window quits");
        return;
    }
    let built = (|| -> tauri::Result<()> {
        let show = MenuItem::with_id(app, SHOW_ID, "Show", true, None::<&str>)?;
        let quit = MenuItem::with_id(app, QUIT_ID, "Quit", true, None::<&str>)?;
        let menu = Menu::with_items(app, &[&show, &quit])?;
        let current = state.connection.borrow().clone();
        TrayIconBuilder::with_id(TRAY_ID)
            .icon(dot(colour(current.state)))
            .tooltip(tooltip(&current))
            .menu(&menu)
            .on_menu_event(|app, event| match event.id().as_ref() {
                SHOW_ID => bring_to_front(app),
                QUIT_ID => {
                    tracing::info!("tray: quit");
                    app.exit(0);
                }
                _ => {}
            })
            .build(app)?;
        Ok(())
    })();
    if let Err(e) = built {
        tracing::warn!("tray: could not be created ({e}); closing the window quits");
        return;
    }
    let app = app.clone();
    let mut changes = state.connection.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let current = changes.borrow_and_update().clone();
            show_state(&app, &current);
            if changes.changed().await.is_err() {
                break;
            }
        }
    });
}

fn show_state<R: Runtime>(app: &AppHandle<R>, state: &StateChange) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
    let text = tooltip(state);
    tracing::info!("tray: {}", text.trim_start_matches("Stock Dashboard: "));
    let _ = tray.set_icon(Some(dot(colour(state.state))));
    let _ = tray.set_tooltip(Some(&text));
    // Linux trays show no tooltips; some show a title.
    #[cfg(target_os = "linux")]
    let _ = tray.set_title(Some(state.state.words()));
}

/// Shows the main window, restores it and gives it the focus (the tray's Show, a second launch).
pub fn bring_to_front<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        tracing::info!("window: brought to the front");
    }
}

/// Closing the main window hides it instead when there is a tray and the settings say so;
/// a moved or resized window's place is written to disk once it settles.
pub fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &WindowEvent) {
    match event {
        WindowEvent::Moved(_) | WindowEvent::Resized(_) => save_place_soon(window.app_handle().clone()),
        WindowEvent::CloseRequested { api, .. } => {
            let Some(state) = window.app_handle().try_state::<Arc<AppState>>() else { return };
            let has_tray = window.app_handle().tray_by_id(TRAY_ID).is_some();
            if has_tray && state.settings().close_to_tray {
                api.prevent_close();
                let _ = window.hide();
                tracing::info!("window: hidden to the tray (Quit from the tray's menu ends the app)");
            }
        }
        _ => {}
    }
}

/// What of the window is kept: size, place, maximised; not visibility (a window hidden to
/// the tray comes back shown).
pub fn kept_window_state() -> tauri_plugin_window_state::StateFlags {
    tauri_plugin_window_state::StateFlags::all() - tauri_plugin_window_state::StateFlags::VISIBLE
}

/// How long the window must stay put before its place is written.
const PLACE_SETTLES: std::time::Duration = std::time::Duration::from_secs(1);

/// The window-state plugin writes its file only when the app exits normally; a till that
/// loses power would forget. Written once a move or resize has settled instead.
fn save_place_soon<R: Runtime>(app: AppHandle<R>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LATEST: AtomicU64 = AtomicU64::new(0);
    let ticket = LATEST.fetch_add(1, Ordering::Relaxed) + 1;
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(PLACE_SETTLES).await;
        if LATEST.load(Ordering::Relaxed) == ticket {
            use tauri_plugin_window_state::AppHandleExt;
            match app.save_window_state(kept_window_state()) {
                Ok(()) => tracing::info!("window: size and place saved"),
                Err(e) => tracing::warn!("window: could not save its size and place: {e}"),
            }
        }
    });
}

/// Whether a tray can be shown: on Linux the AppIndicator library must be installed (the
/// tray crate loads it at run time and would stop the app without it).
fn tray_available() -> bool {
    #[cfg(target_os = "linux")]
    {
        const LIBS: [&str; 2] = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"];
        const DIRS: [&str; 5] = [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/lib/x86_64-linux-gnu",
        ];
        DIRS.iter().any(|dir| LIBS.iter().any(|lib| std::path::Path::new(dir).join(lib).exists()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_own_colour_and_words() {
        let states = [ConnectionState::Connected, ConnectionState::Connecting, ConnectionState::Offline];
        let colours: std::collections::HashSet<_> = states.iter().map(|s| colour(*s)).collect();
        assert_eq!(colours.len(), 3);
        let offline = StateChange {
            state: ConnectionState::Offline,
            reason: Some("server closed the connection".into()),
            since: chrono::Utc::now(),
            attempt: 2,
        };
        assert_eq!(tooltip(&offline), "Stock Dashboard: socket offline — server closed the connection");
    }

    #[test]
    fn the_dot_is_opaque_in_the_middle_and_clear_in_the_corner() {
        let image = dot([1, 2, 3]);
        let px = |x: u32, y: u32| &image.rgba()[((y * ICON_PX + x) * 4) as usize..][..4];
        assert_eq!(px(16, 16), &[1, 2, 3, 255]);
        assert_eq!(px(0, 0)[3], 0);
    }
}
