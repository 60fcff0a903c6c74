//! The one place that sends anything to the page: the [`tauri::ipc::Channel`] the page
//! handed over with `subscribe` (ordered, fast). Every update also goes into the
//! [`Dashboard`] first, so a page that (re)loads can ask for the whole view.

use std::sync::{Arc, Mutex};
use stock_client::dashboard::{Dashboard, UiUpdate};
use stock_client::ClientEvent;
use tauri::ipc::Channel;

/// See the module docs.
#[derive(Clone, Default)]
pub struct Outlet {
    channel: Arc<Mutex<Option<Channel<UiUpdate>>>>,
    pub dashboard: Arc<Mutex<Dashboard>>,
}

impl Outlet {
    /// The page's channel; a newer page replaces an older one.
    pub fn subscribe(&self, channel: Channel<UiUpdate>) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel);
    }

    /// Records `event` and tells the page.
    pub fn publish(&self, event: ClientEvent) -> UiUpdate {
        let update = self.dashboard.lock().unwrap_or_else(|e| e.into_inner()).apply(event);
        self.send(&update);
        update
    }

    fn send(&self, update: &UiUpdate) {
        let channel = self.channel.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(channel) = channel {
            if let Err(e) = channel.send(update.clone()) {
                tracing::debug!("the page is not listening: {e}");
            }
        }
    }
}
