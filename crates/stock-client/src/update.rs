//! Keeping a till up to date without interrupting a shift: when to look for a release, what
//! the operator is shown, and when it installs. The app plugs in the real updater
//! (tauri-plugin-updater: a `latest.json`, signed bundles) as an [`UpdateSource`]; this
//! module owns the policy:
//!
//! - a check at start, then every [`CHECK_EVERY`] (after a failed check or download, the
//!   next try is [`RETRY_AFTER_FAILURE`] later instead);
//! - a release found is downloaded at once, its progress shown
//!   ([`UpdateStatus::Downloading`]), and its signature checked by the source before it is
//!   offered: [`UpdateStatus::Ready`] — the banner's "Update 0.1.1 ready" with Install and
//!   restart / Later. Nothing installs while the operator works unless they ask;
//! - Later ([`UpdateCommand::Later`]) hides the offer and is remembered (through
//!   [`UpdateHost::remember_later`]): the next start installs the release (or a newer one) as
//!   soon as it is downloaded, before the operator starts work;
//! - a failed check, download or install, and a bundle whose signature does not match, is
//!   one [`UpdateProblem`] in the view (the Diagnostics panel shows it) — never a dialog, and
//!   a refused bundle is never installed.
//!
//! # Layout
//! - [`start`] runs the policy as an owned task; [`Updates`] is its handle (commands, the
//!   current [`UpdateView`]; dropping it stops the task).
//! - [`UpdateSource`]: checking, downloading (verified) and installing; [`UpdateHost`]: what
//!   the app does for it (remember Later, restart).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often a running till looks for a release.
pub const CHECK_EVERY: Duration = Duration::from_secs(4 * 60 * 60);
/// How soon the next try comes after a check or a download failed.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30 * 60);
/// Download progress is published at most once per this many per mille of the bundle.
const PROGRESS_STEP_PER_MILLE: u64 = 10;

/// A release the source found, newer than the running app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub version: String,
    pub notes: Option<String>,
}

/// Where updating stands, as the page shows it (the banner offers [`UpdateStatus::Ready`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdateStatus {
    /// No update address is set.
    Off,
    /// Between checks: nothing newer was found (or no check finished yet).
    Idle,
    Checking,
    Downloading {
        version: String,
        received: u64,
        total: Option<u64>,
    },
    /// Downloaded and verified: offered to the operator.
    Ready {
        version: String,
        notes: Option<String>,
    },
    /// The operator chose Later: installs at the next start.
    Deferred {
        version: String,
    },
    Installing {
        version: String,
    },
}

/// Which step of updating failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStep {
    Check,
    Download,
    /// The bundle's signature does not match the app's release key: refused.
    Signature,
    Install,
}

/// The last thing that went wrong, for the Diagnostics panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateProblem {
    pub step: UpdateStep,
    /// The release it was about, when one was found.
    pub version: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Everything the page shows about updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateView {
    pub current_version: String,
    pub status: UpdateStatus,
    /// When a check last finished (found something or not).
    pub last_checked: Option<DateTime<Utc>>,
    pub problem: Option<UpdateProblem>,
}

impl UpdateView {
    /// Updates are off (no address): nothing checked, nothing wrong.
    pub fn off(current_version: &str) -> Self {
        UpdateView {
            current_version: current_version.to_owned(),
            status: UpdateStatus::Off,
            last_checked: None,
            problem: None,
        }
    }
}

/// Why a step failed, by kind (the message is for people; behaviour follows the kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("could not check for updates: {0}")]
    Check(String),
    #[error("could not download the update: {0}")]
    Download(String),
    #[error("the update was refused: its signature does not match this app's release key ({0}); nothing was installed")]
    Signature(String),
    #[error("could not install the update: {0}")]
    Install(String),
}

impl UpdateError {
    pub fn step(&self) -> UpdateStep {
        match self {
            UpdateError::Check(_) => UpdateStep::Check,
            UpdateError::Download(_) => UpdateStep::Download,
            UpdateError::Signature(_) => UpdateStep::Signature,
            UpdateError::Install(_) => UpdateStep::Install,
        }
    }
}

/// Counts the bytes of a download as they arrive.
pub struct Progress {
    version: String,
    received: u64,
    published_per_mille: Option<u64>,
    view: Arc<watch::Sender<UpdateView>>,
}

impl Progress {
    /// `chunk` more bytes arrived; `total` is the bundle's size when the server said it.
    pub fn add(&mut self, chunk: u64, total: Option<u64>) {
        self.received += chunk;
        let per_mille = total.filter(|t| *t > 0).map(|t| (self.received.min(t) * 1000) / t);
        let due = match (per_mille, self.published_per_mille) {
            (Some(now), Some(before)) => now >= before + PROGRESS_STEP_PER_MILLE || now == 1000,
            (Some(_), None) => true,
            // Without a size: every mebibyte.
            (None, _) => self.received / (1 << 20) != (self.received - chunk) / (1 << 20),
        };
        if due {
            self.published_per_mille = per_mille;
            let (version, received) = (self.version.clone(), self.received);
            self.view.send_modify(|v| v.status = UpdateStatus::Downloading { version, received, total });
        }
    }
}

/// Checks, downloads and installs releases (the real one: tauri-plugin-updater).
pub trait UpdateSource: Send + Sync + 'static {
    /// What the source needs to download and install a release it found.
    type Found: Send + Sync + 'static;
    /// A release newer than the running app, if there is one.
    fn check(&self) -> impl Future<Output = Result<Option<(Release, Self::Found)>, UpdateError>> + Send;
    /// The bundle, its signature verified ([`UpdateError::Signature`] otherwise).
    fn download(
        &self,
        found: &Self::Found,
        progress: &mut Progress,
    ) -> impl Future<Output = Result<Vec<u8>, UpdateError>> + Send;
    /// Installs it (verifying again); the app restarts afterwards.
    fn install(
        &self,
        found: Arc<Self::Found>,
        bundle: Arc<Vec<u8>>,
    ) -> impl Future<Output = Result<(), UpdateError>> + Send;
}

/// What the app does for the updater.
pub trait UpdateHost: Send + Sync + 'static {
    /// Keeps (or forgets, with `None`) the release the operator put off until the next start.
    fn remember_later(&self, version: Option<&str>);
    /// Starts the installed version (the app exits cleanly first).
    fn restart(&self);
}

/// What the operator (or the app) asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateCommand {
    /// Look now (Diagnostics' "Check now").
    CheckNow,
    /// Install the ready release and restart.
    Install,
    /// Not now: install at the next start.
    Later,
}

/// The running policy's handle; dropping it stops the task.
pub struct Updates {
    commands: mpsc::Sender<UpdateCommand>,
    view: watch::Receiver<UpdateView>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Updates {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Updates {
    /// Asks; refused (with false) only when the task has stopped.
    pub fn ask(&self, command: UpdateCommand) -> bool {
        // One slot per kind is plenty: a full queue means the same ask is already waiting.
        match self.commands.try_send(command) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn view(&self) -> UpdateView {
        self.view.borrow().clone()
    }

    /// Changes to the view, for whoever shows them.
    pub fn watch(&self) -> watch::Receiver<UpdateView> {
        self.view.clone()
    }
}

/// Starts the policy. `later` is the version the operator put off last time (if any): the
/// first release downloaded then installs without asking.
pub fn start<S: UpdateSource, H: UpdateHost>(
    source: S,
    host: H,
    current_version: &str,
    later: Option<String>,
) -> Updates {
    let status = match &later {
        Some(version) => UpdateStatus::Deferred { version: version.clone() },
        None => UpdateStatus::Idle,
    };
    let (view_tx, view) = watch::channel(UpdateView { status, ..UpdateView::off(current_version) });
    let (commands, inbox) = mpsc::channel(4);
    let policy = Policy { source, host, view: Arc::new(view_tx), install_on_arrival: later.is_some(), offered: None };
    let task = tokio::spawn(policy.run(inbox));
    Updates { commands, view, task }
}

struct Offered<F> {
    release: Release,
    found: Arc<F>,
    bundle: Arc<Vec<u8>>,
}

struct Policy<S: UpdateSource, H> {
    source: S,
    host: H,
    view: Arc<watch::Sender<UpdateView>>,
    /// Later was chosen in an earlier run: install what arrives first.
    install_on_arrival: bool,
    /// Downloaded, verified, waiting for the operator.
    offered: Option<Offered<S::Found>>,
}

impl<S: UpdateSource, H: UpdateHost> Policy<S, H> {
    async fn run(mut self, mut inbox: mpsc::Receiver<UpdateCommand>) {
        let mut next_check = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_check) => {
                    let ok = self.check_and_fetch().await;
                    next_check = Instant::now() + if ok { CHECK_EVERY } else { RETRY_AFTER_FAILURE };
                }
                command = inbox.recv() => match command {
                    None => return,
                    Some(UpdateCommand::CheckNow) => next_check = Instant::now(),
                    Some(UpdateCommand::Install) => self.install().await,
                    Some(UpdateCommand::Later) => self.later(),
                },
            }
        }
    }

    fn set_status(&self, status: UpdateStatus) {
        self.view.send_if_modified(|v| {
            let changed = v.status != status;
            v.status = status;
            changed
        });
    }

    fn fail(&self, error: &UpdateError, version: Option<&str>) {
        tracing::warn!("update: {error}");
        let problem = UpdateProblem {
            step: error.step(),
            version: version.map(str::to_owned),
            message: error.to_string(),
            at: Utc::now(),
        };
        self.view.send_modify(|v| v.problem = Some(problem));
    }

    /// What the banner shows when nothing is under way.
    fn resting_status(&self) -> UpdateStatus {
        match &self.offered {
            Some(o) if self.is_deferred() => UpdateStatus::Deferred { version: o.release.version.clone() },
            Some(o) => UpdateStatus::Ready { version: o.release.version.clone(), notes: o.release.notes.clone() },
            None => match &self.view.borrow().status {
                UpdateStatus::Deferred { version } => UpdateStatus::Deferred { version: version.clone() },
                _ => UpdateStatus::Idle,
            },
        }
    }

    fn is_deferred(&self) -> bool {
        matches!(self.view.borrow().status, UpdateStatus::Deferred { .. })
    }

    /// One check, and the download of what it found. False when a step failed.
    async fn check_and_fetch(&mut self) -> bool {
        if self.offered.is_none() && !self.is_deferred() {
            self.set_status(UpdateStatus::Checking);
        }
        let found = self.source.check().await;
        self.view.send_modify(|v| v.last_checked = Some(Utc::now()));
        let (release, found) = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.set_status(self.resting_status());
                return true;
            }
            Err(e) => {
                self.fail(&e, None);
                self.set_status(self.resting_status());
                return false;
            }
        };
        if self.offered.as_ref().is_some_and(|o| o.release.version == release.version) {
            self.set_status(self.resting_status());
            return true;
        }
        let was_deferred = self.is_deferred();
        let mut progress = Progress {
            version: release.version.clone(),
            received: 0,
            published_per_mille: None,
            view: self.view.clone(),
        };
        self.set_status(UpdateStatus::Downloading { version: release.version.clone(), received: 0, total: None });
        match self.source.download(&found, &mut progress).await {
            Ok(bundle) => {
                tracing::info!("update {} downloaded ({} bytes), signature verified", release.version, bundle.len());
                self.offered = Some(Offered { release, found: Arc::new(found), bundle: Arc::new(bundle) });
                if self.install_on_arrival {
                    self.install_on_arrival = false;
                    self.install().await;
                } else if was_deferred {
                    self.later();
                } else {
                    self.set_status(self.resting_status());
                }
                true
            }
            Err(e) => {
                self.fail(&e, Some(&release.version));
                self.set_status(if was_deferred {
                    UpdateStatus::Deferred { version: release.version }
                } else {
                    self.resting_status()
                });
                // A refused bundle is not fetched again before the next scheduled check.
                matches!(e, UpdateError::Signature(_))
            }
        }
    }

    async fn install(&mut self) {
        let Some(offered) = &self.offered else { return };
        let version = offered.release.version.clone();
        self.set_status(UpdateStatus::Installing { version: version.clone() });
        match self.source.install(offered.found.clone(), offered.bundle.clone()).await {
            Ok(()) => {
                tracing::info!("update {version} installed: restarting");
                self.host.remember_later(None);
                self.host.restart();
            }
            Err(e) => {
                self.fail(&e, Some(&version));
                self.set_status(UpdateStatus::Ready { version, notes: offered.release.notes.clone() });
            }
        }
    }

    fn later(&mut self) {
        let Some(offered) = &self.offered else { return };
        let version = offered.release.version.clone();
        self.host.remember_later(Some(&version));
        self.set_status(UpdateStatus::Deferred { version });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    type Script<T> = Arc<Mutex<VecDeque<T>>>;

    /// A source that answers from a script, and records what it was asked.
    #[derive(Clone, Default)]
    struct Scripted {
        checks: Script<Result<Option<Release>, UpdateError>>,
        downloads: Script<Result<Vec<u8>, UpdateError>>,
        installs: Script<Result<(), UpdateError>>,
        checked: Arc<Mutex<u32>>,
        installed: Arc<Mutex<Vec<(String, usize)>>>,
    }

    impl Scripted {
        /// A source whose first check finds `version` and whose download gives `download`.
        fn offering(version: &str, download: Result<Vec<u8>, UpdateError>) -> Scripted {
            let source = Scripted::default();
            source.checks.lock().unwrap().push_back(Ok(Some(release(version))));
            source.downloads.lock().unwrap().push_back(download);
            source
        }
    }

    impl UpdateSource for Scripted {
        type Found = String;
        async fn check(&self) -> Result<Option<(Release, String)>, UpdateError> {
            *self.checked.lock().unwrap() += 1;
            let answer = self.checks.lock().unwrap().pop_front().unwrap_or(Ok(None));
            answer.map(|r| r.map(|r| (r.clone(), r.version)))
        }
        async fn download(&self, _found: &String, progress: &mut Progress) -> Result<Vec<u8>, UpdateError> {
            let answer = self.downloads.lock().unwrap().pop_front().expect("an unscripted download");
            if let Ok(bytes) = &answer {
                for chunk in bytes.chunks(100) {
                    // As a network would: chunks arrive over time (the paused clock's).
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    progress.add(chunk.len() as u64, Some(bytes.len() as u64));
                }
            }
            answer
        }
        async fn install(&self, found: Arc<String>, bundle: Arc<Vec<u8>>) -> Result<(), UpdateError> {
            let answer = self.installs.lock().unwrap().pop_front().unwrap_or(Ok(()));
            if answer.is_ok() {
                self.installed.lock().unwrap().push(((*found).clone(), bundle.len()));
            }
            answer
        }
    }

    #[derive(Clone, Default)]
    struct Host {
        later: Arc<Mutex<Vec<Option<String>>>>,
        restarts: Arc<Mutex<u32>>,
    }

    impl UpdateHost for Host {
        fn remember_later(&self, version: Option<&str>) {
            self.later.lock().unwrap().push(version.map(str::to_owned));
        }
        fn restart(&self) {
            *self.restarts.lock().unwrap() += 1;
        }
    }

    fn release(version: &str) -> Release {
        Release { version: version.into(), notes: Some("fixes".into()) }
    }

    /// Lets the policy task run until it waits on its inbox or its next check: half a
    /// second of the paused clock (a scripted download takes 100 ms of it).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn status(updates: &Updates) -> UpdateStatus {
        updates.view().status
    }

    #[tokio::test(start_paused = true)]
    async fn checks_at_start_then_every_four_hours() {
        let source = Scripted::default();
        let updates = start(source.clone(), Host::default(), "0.1.0", None);
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 1);
        assert_eq!(status(&updates), UpdateStatus::Idle);
        assert!(updates.view().last_checked.is_some());
        tokio::time::sleep(CHECK_EVERY - Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 1);
        tokio::time::sleep(Duration::from_secs(20)).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 2);
        tokio::time::sleep(CHECK_EVERY * 2).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_is_downloaded_offered_and_installed_only_when_asked() {
        let source = Scripted::offering("0.1.1", Ok(vec![7; 1000]));
        let host = Host::default();
        let updates = start(source.clone(), host.clone(), "0.1.0", None);
        let mut seen = updates.watch();
        let mut statuses = vec![];
        let offered = async {
            loop {
                seen.changed().await.unwrap();
                let s = seen.borrow_and_update().status.clone();
                statuses.push(s.clone());
                if matches!(s, UpdateStatus::Ready { .. }) {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), offered).await.expect("offered");
        assert!(
            statuses.iter().any(|s| matches!(s, UpdateStatus::Downloading { received, total: Some(1000), .. } if *received > 0 && *received < 1000)),
            "progress is shown while it downloads: {statuses:?}"
        );
        // An operator mid-shift is not interrupted: nothing installs on its own, not even
        // after hours and more checks.
        tokio::time::sleep(CHECK_EVERY * 3).await;
        settle().await;
        assert!(source.installed.lock().unwrap().is_empty());
        assert_eq!(status(&updates), UpdateStatus::Ready { version: "0.1.1".into(), notes: Some("fixes".into()) });
        assert!(updates.ask(UpdateCommand::Install));
        settle().await;
        assert_eq!(*source.installed.lock().unwrap(), [("0.1.1".to_owned(), 1000)]);
        assert_eq!(*host.restarts.lock().unwrap(), 1);
        assert_eq!(*host.later.lock().unwrap(), [None]);
    }

    #[tokio::test(start_paused = true)]
    async fn later_is_remembered_and_the_next_start_installs_without_asking() {
        let source = Scripted::offering("0.1.1", Ok(vec![1; 10]));
        let host = Host::default();
        let updates = start(source.clone(), host.clone(), "0.1.0", None);
        settle().await;
        assert!(updates.ask(UpdateCommand::Later));
        settle().await;
        assert_eq!(status(&updates), UpdateStatus::Deferred { version: "0.1.1".into() });
        assert_eq!(*host.later.lock().unwrap(), [Some("0.1.1".to_owned())]);
        // Later checks find the same release: it stays put off, and is not fetched again.
        source.checks.lock().unwrap().push_back(Ok(Some(release("0.1.1"))));
        tokio::time::sleep(CHECK_EVERY + Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 2);
        assert_eq!(status(&updates), UpdateStatus::Deferred { version: "0.1.1".into() });
        assert!(source.installed.lock().unwrap().is_empty());
        drop(updates);

        // The next start: the remembered choice installs what arrives, then restarts.
        let source = Scripted::offering("0.1.2", Ok(vec![2; 20]));
        let host = Host::default();
        let updates = start(source.clone(), host.clone(), "0.1.0", Some("0.1.1".into()));
        assert_eq!(status(&updates), UpdateStatus::Deferred { version: "0.1.1".into() });
        settle().await;
        assert_eq!(*source.installed.lock().unwrap(), [("0.1.2".to_owned(), 20)]);
        assert_eq!(*host.restarts.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bundle_whose_signature_does_not_match_is_refused_shown_once_and_not_fetched_again_soon() {
        let source = Scripted::offering("0.1.1", Err(UpdateError::Signature("bad signature".into())));
        let host = Host::default();
        let updates = start(source.clone(), host.clone(), "0.1.0", None);
        settle().await;
        let view = updates.view();
        assert_eq!(view.status, UpdateStatus::Idle, "nothing is offered");
        let problem = view.problem.expect("the refusal is shown");
        assert_eq!((problem.step, problem.version.as_deref()), (UpdateStep::Signature, Some("0.1.1")));
        assert!(problem.message.contains("nothing was installed"), "{}", problem.message);
        assert!(updates.ask(UpdateCommand::Install), "asking is harmless");
        settle().await;
        assert!(source.installed.lock().unwrap().is_empty());
        assert_eq!(*host.restarts.lock().unwrap(), 0);
        // No retry before the scheduled check.
        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_is_one_problem_and_retried_sooner() {
        let source = Scripted::default();
        source.checks.lock().unwrap().push_back(Err(UpdateError::Check("connection refused".into())));
        let updates = start(source.clone(), Host::default(), "0.1.0", None);
        settle().await;
        let view = updates.view();
        assert_eq!(view.status, UpdateStatus::Idle);
        assert_eq!(view.problem.as_ref().map(|p| p.step), Some(UpdateStep::Check));
        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 2);
        // The problem stays for support to read; the next success does not hide it.
        assert_eq!(updates.view().problem, view.problem);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_install_offers_the_release_again() {
        let source = Scripted::offering("0.1.1", Ok(vec![1; 10]));
        source.installs.lock().unwrap().push_back(Err(UpdateError::Install("authentication was cancelled".into())));
        let host = Host::default();
        let updates = start(source.clone(), host.clone(), "0.1.0", None);
        settle().await;
        updates.ask(UpdateCommand::Install);
        settle().await;
        assert!(matches!(status(&updates), UpdateStatus::Ready { .. }));
        assert_eq!(updates.view().problem.map(|p| p.step), Some(UpdateStep::Install));
        assert_eq!(*host.restarts.lock().unwrap(), 0);
        updates.ask(UpdateCommand::Install);
        settle().await;
        assert_eq!(*host.restarts.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn check_now_checks_at_once_and_a_dropped_handle_stops_the_task() {
        let source = Scripted::default();
        let updates = start(source.clone(), Host::default(), "0.1.0", None);
        settle().await;
        updates.ask(UpdateCommand::CheckNow);
        settle().await;
        assert_eq!(*source.checked.lock().unwrap(), 2);
        let view = updates.watch();
        drop(updates);
        settle().await;
        assert!(view.has_changed().is_err(), "the task ended with its handle");
    }

    #[test]
    fn the_view_is_what_the_page_reads() {
        let view = UpdateView {
            current_version: "0.1.0".into(),
            status: UpdateStatus::Downloading { version: "0.1.1".into(), received: 5, total: Some(10) },
            last_checked: None,
            problem: None,
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["status"]["state"], "downloading");
        assert_eq!(json["status"]["total"], 10);
    }
}
