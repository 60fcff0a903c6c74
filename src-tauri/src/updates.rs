//! Signed automatic updates, the app's side: tauri-plugin-updater as the source
//! `stock_client::update` checks, downloads and installs through (a static `latest.json` at
//! the address in Settings or `STOCK_DASHBOARD_UPDATE_URL`; bundles verified with minisign
//! against the public key in `tauri.conf.json`), the Later choice kept in the vault, and a
//! clean restart into the installed version. When to check and what the operator is
//! offered is decided in `stock_client::update`; the page hears of it through the outlet.

use crate::page::PageUpdate;
use crate::settings::{UPDATE_LATER_KEY, Vault};
use crate::state::{AppState, lock};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use stock_client::update::{
    Progress, Release, UpdateCommand, UpdateError, UpdateHost, UpdateSource, UpdateView, Updates,
};
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::UpdaterExt;

/// The longest wait for a connection to the update server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest silence while reading its answer (a slow download still goes on).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What the page may ask of the updater (the banner's buttons, Diagnostics' "Check now").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    Install,
    Later,
    CheckNow,
}

impl UpdateAction {
    /// Every action, for the page contract.
    pub const ALL: [UpdateAction; 3] = [UpdateAction::Install, UpdateAction::Later, UpdateAction::CheckNow];
}

impl From<UpdateAction> for UpdateCommand {
    fn from(action: UpdateAction) -> Self {
        match action {
            UpdateAction::Install => UpdateCommand::Install,
            UpdateAction::Later => UpdateCommand::Later,
            UpdateAction::CheckNow => UpdateCommand::CheckNow,
        }
    }
}

/// tauri-plugin-updater, asked at one address.
pub struct PluginSource<R: Runtime> {
    app: AppHandle<R>,
    url: url::Url,
}

impl<R: Runtime> UpdateSource for PluginSource<R> {
    type Found = tauri_plugin_updater::Update;

    async fn check(&self) -> Result<Option<(Release, Self::Found)>, UpdateError> {
        let updater = self
            .app
            .updater_builder()
            .endpoints(vec![self.url.clone()])
            .map(|b| b.configure_client(|c| c.connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT)))
            .and_then(|b| b.build())
            .map_err(|e| classify(e, UpdateError::Check))?;
        let found = updater.check().await.map_err(|e| classify(e, UpdateError::Check))?;
        Ok(found.map(|update| (Release { version: update.version.clone(), notes: update.body.clone() }, update)))
    }

    async fn download(&self, found: &Self::Found, progress: &mut Progress) -> Result<Vec<u8>, UpdateError> {
        found
            .download(|chunk, total| progress.add(chunk as u64, total), || {})
            .await
            .map_err(|e| classify(e, UpdateError::Download))
    }

    async fn install(&self, found: Arc<Self::Found>, bundle: Arc<Vec<u8>>) -> Result<(), UpdateError> {
        // Runs the package manager (Linux: pkexec/sudo dpkg -i or rpm -U) or starts the
        // installer (Windows, which then ends this process): off the async threads.
        tauri::async_runtime::spawn_blocking(move || found.install(bundle.as_slice()))
            .await
            .map_err(|e| UpdateError::Install(e.to_string()))?
            .map_err(|e| classify(e, UpdateError::Install))
    }
}

/// A failure by kind: anything about the signature is a refusal, whatever step it came at.
pub fn classify(e: tauri_plugin_updater::Error, otherwise: fn(String) -> UpdateError) -> UpdateError {
    use tauri_plugin_updater::Error as E;
    match e {
        E::Minisign(_)
        | E::Base64(_)
        | E::SignatureUtf8(_)
        | E::SignedVersionMismatch { .. }
        | E::MissingSignedVersion => UpdateError::Signature(e.to_string()),
        other => otherwise(other.to_string()),
    }
}

/// What the app does for the updater: keep Later in the vault, restart cleanly.
struct AppHost<R: Runtime> {
    app: AppHandle<R>,
    vault: Arc<dyn Vault>,
}

impl<R: Runtime> UpdateHost for AppHost<R> {
    fn remember_later(&self, version: Option<&str>) {
        if let Err(e) = self.vault.save(UPDATE_LATER_KEY, version.map(|v| serde_json::json!({ "version": v }))) {
            tracing::warn!("update: could not remember the choice: {e}");
        }
    }

    fn restart(&self) {
        // Through the app's exit (the last known table is written), then the new binary.
        self.app.request_restart();
    }
}

/// The running updater and the task handing its view to the page; dropping it stops both.
pub struct UpdateFeed {
    pub updates: Updates,
    forward: tauri::async_runtime::JoinHandle<()>,
}

impl Drop for UpdateFeed {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// The version put off with Later in an earlier run.
pub fn later(vault: &dyn Vault) -> Option<String> {
    vault.load(UPDATE_LATER_KEY).and_then(|v| v["version"].as_str().map(str::to_owned))
}

/// (Re)starts the updater on the address in the settings (none: updates are off).
pub fn start<R: Runtime>(app: &AppHandle<R>, state: &Arc<AppState>) {
    let url = state.settings().update_url();
    // The old one first: one updater at a time.
    lock(&state.updates).take();
    let Some(url) = url else {
        state.outlet.publish(PageUpdate::Update(state.update_view()));
        return;
    };
    tracing::info!("updates: checking {url}");
    let host = AppHost { app: app.clone(), vault: state.vault.clone() };
    let source = PluginSource { app: app.clone(), url };
    // On Tauri's runtime (the policy task lives there), from the main thread or a command.
    let runtime = tauri::async_runtime::handle();
    let _entered = runtime.inner().enter();
    let updates = stock_client::update::start(source, host, &state.version, later(state.vault.as_ref()));
    let mut changes = updates.watch();
    let weak = Arc::downgrade(state);
    let forward = tauri::async_runtime::spawn(async move {
        loop {
            let view: UpdateView = changes.borrow_and_update().clone();
            let Some(state) = weak.upgrade() else { return };
            state.outlet.publish(PageUpdate::Update(view));
            drop(state);
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
    *lock(&state.updates) = Some(UpdateFeed { updates, forward });
}

#[cfg(test)]
mod tests {
    use super::*;
    use stock_client::update::UpdateStep;

    #[test]
    fn a_bad_signature_is_a_refusal_at_any_step_and_the_rest_keeps_its_step() {
        let refused = classify(tauri_plugin_updater::Error::SignatureUtf8("x".into()), UpdateError::Download);
        assert_eq!(refused.step(), UpdateStep::Signature);
        let refused = classify(tauri_plugin_updater::Error::MissingSignedVersion, UpdateError::Install);
        assert_eq!(refused.step(), UpdateStep::Signature);
        let failed = classify(tauri_plugin_updater::Error::ReleaseNotFound, UpdateError::Check);
        assert_eq!(failed.step(), UpdateStep::Check);
        let failed = classify(tauri_plugin_updater::Error::PackageInstallFailed, UpdateError::Install);
        assert_eq!(failed.step(), UpdateStep::Install);
    }

    #[test]
    fn the_page_sends_actions_by_name() {
        let names: Vec<String> =
            UpdateAction::ALL.iter().map(|a| serde_json::to_value(a).unwrap().as_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["install", "later", "check_now"]);
    }
}
