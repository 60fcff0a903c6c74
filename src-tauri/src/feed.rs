//! The live feed while someone is logged in: a [`LiveClient`] and the task that hands its
//! events on. Dropping the [`Feed`] stops both; [`Feed::stop`] also waits for the
//! connection to be torn down. Must be started inside the async runtime.

use stock_client::{ClientConfig, ClientEvent, LiveClient, SocketTarget, StatsSnapshot, Trust, connect};
use tokio::task::JoinHandle;

pub struct Feed {
    client: Option<LiveClient>,
    forwarder: JoinHandle<()>,
}

impl Feed {
    /// Connects to `socket_url` with `token`, trusting what `trust` trusts, configured by
    /// `config`, and hands every event to `on_event`, in order.
    pub fn start(
        socket_url: &str,
        token: &str,
        trust: Trust,
        config: ClientConfig,
        mut on_event: impl FnMut(ClientEvent) + Send + 'static,
    ) -> Feed {
        let target = SocketTarget { trust, ..SocketTarget::new(socket_url, Some(token.to_owned())) };
        let (client, mut events) = connect(target, config);
        let forwarder = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                on_event(event);
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
