//! The one place that sends anything to the page: the [`tauri::ipc::Channel`] the page
//! handed over with `subscribe` (ordered, fast). Every update also goes into the
//! [`Dashboard`] first, so a page that (re)loads can ask for the whole view.
//!
//! An update is sent at once when nothing was sent in the last [`FLUSH_EVERY`] (about one
//! frame); what arrives within that time waits for its end and goes as one batch, in which
//! only the latest snapshot of each product is kept. A quiet feed gets no added delay, and
//! under a burst the page gets a bounded number of messages, instead of one script
//! evaluation in WebKit per update.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stock_client::dashboard::{Dashboard, UiUpdate};
use stock_client::ClientEvent;
use tauri::ipc::Channel;
use tokio::sync::Notify;

/// The shortest time between two messages to the page.
pub const FLUSH_EVERY: Duration = Duration::from_millis(16);

/// See the module docs.
#[derive(Clone, Default)]
pub struct Outlet {
    channel: Arc<Mutex<Option<Channel<Vec<UiUpdate>>>>>,
    pending: Arc<Mutex<Vec<UiUpdate>>>,
    wake: Arc<Notify>,
    flushing: Arc<AtomicBool>,
    pub dashboard: Arc<Mutex<Dashboard>>,
}

impl Outlet {
    /// The page's channel; a newer page replaces an older one.
    pub fn subscribe(&self, channel: Channel<Vec<UiUpdate>>) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel);
        if !self.flushing.swap(true, Ordering::SeqCst) {
            let outlet = self.clone();
            tauri::async_runtime::spawn(async move {
                loop {
                    // A wake-up during the pause below is kept by `Notify` (one permit).
                    outlet.wake.notified().await;
                    outlet.flush();
                    tokio::time::sleep(FLUSH_EVERY).await;
                }
            });
        }
    }

    /// Records `event` and queues what to tell the page.
    pub fn publish(&self, event: ClientEvent) -> UiUpdate {
        let update = self.dashboard.lock().unwrap_or_else(|e| e.into_inner()).apply(event);
        if self.channel.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            // No page yet: it will read the whole view from the dashboard when it loads.
            return update;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = match &update {
            UiUpdate::Stock(row) => pending
                .iter_mut()
                .find(|u| matches!(u, UiUpdate::Stock(r) if r.product_id == row.product_id))
                .map(|slot| *slot = update.clone())
                .is_some(),
            _ => false,
        };
        if !replaced {
            pending.push(update.clone());
        }
        drop(pending);
        self.wake.notify_one();
        update
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return;
        }
        let channel = self.channel.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(channel) = channel {
            if let Err(e) = channel.send(batch) {
                tracing::debug!("the page is not listening: {e}");
            }
        }
    }
}
