fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "login",
        "logout",
        "current_session",
        "get_settings",
        "save_settings",
        "subscribe",
        "next_updates",
        "dashboard",
        "diagnostics",
        "set_watched",
        "update_status",
        "update_action",
    ]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("failed to run the Tauri build script");
}
