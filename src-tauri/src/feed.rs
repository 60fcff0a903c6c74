//! The live feed while someone is logged in: a [`LiveClient`] and the task that hands its
//! events on to a [`FeedSink`] (the app's state, held weakly: the state owns the feed).
//! Dropping the [`Feed`] stops both; [`Feed::stop`] also waits for the connection to be
//! torn down. Must be started inside the async runtime.
//!
//! The feed also answers for the till: what it shows goes into its health reports, and a
//! request for its Diagnostics (support, through the bridge) is answered with the sink's.

use futures_util::future::BoxFuture;
use std::sync::{Arc, Weak};
use stock_client::{ClientConfig, ClientEvent, LiveClient, SocketTarget, StatsSnapshot, Trust, connect};
use stock_protocol::TillIdentity;
use tokio::task::JoinHandle;

/// Where the feed's events go, and what it answers for the till.
pub trait FeedSink: Send + Sync + 'static {
    /// Every event, in order.
    fn event(self: Arc<Self>, event: ClientEvent);
    /// What is shown now: products on screen, notifications on.
    fn shown(&self) -> (usize, bool);
    /// The Diagnostics text support asked for.
    fn diagnostics(self: Arc<Self>) -> BoxFuture<'static, String>;
}

pub struct Feed {
    client: Option<LiveClient>,
    forwarder: JoinHandle<()>,
}

impl Feed {
    /// Connects to `socket_url` (one address, or several separated by commas) with `token` as `till`, trusting what `trust` trusts,
    /// configured by `config`, and hands every event to `sink`, in order.
    pub fn start(
        socket_url: &str,
        token: &str,
        trust: Trust,
        config: ClientConfig,
        till: TillIdentity,
        sink: Weak<dyn FeedSink>,
    ) -> Feed {
        let addresses = stock_client::link::split_addresses(socket_url);
        let target =
            SocketTarget { trust, till: Some(till), ..SocketTarget::with_addresses(addresses, Some(token.to_owned())) };
        let (client, mut events) = connect(target, config);
        let handle = client.handle();
        let forwarder = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(sink) = sink.upgrade() else { return };
                match event {
                    ClientEvent::DiagnosticsAsked { id } => {
                        let handle = handle.clone();
                        tokio::spawn(async move {
                            let text = sink.diagnostics().await;
                            handle.answer_diagnostics(id, text);
                        });
                    }
                    event => {
                        let shown_changed = matches!(event, ClientEvent::Stock { .. } | ClientEvent::State(_));
                        sink.clone().event(event);
                        if shown_changed {
                            let (products, notifications) = sink.shown();
                            handle.set_shown(products, notifications);
                        }
                    }
                }
            }
        });
        Feed { client: Some(client), forwarder }
    }

    pub fn stats(&self) -> Option<StatsSnapshot> {
        self.client.as_ref().map(LiveClient::stats)
    }

    /// Disconnects and waits until everything is torn down.
    pub async fn stop(mut self) {
        if let Some(client) = self.client.take() {
            client.stop().await;
        }
        self.forwarder.abort();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}
