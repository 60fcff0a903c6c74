//! The live feed while someone is logged in: a [`LiveClient`] and the task that moves its
//! events into the [`Outlet`]. Dropping the [`Feed`] stops both; [`Feed::stop`] also waits
//! for the connection to be torn down. Must be started inside the async runtime.

use crate::outlet::Outlet;
use stock_client::{ClientConfig, ClientEvent, LiveClient, SocketTarget, StatsSnapshot, connect};
use tokio::task::JoinHandle;

pub struct Feed {
    client: Option<LiveClient>,
    forwarder: JoinHandle<()>,
    pub socket_url: String,
}

impl Feed {
    /// Connects to `socket_url` with `token` and forwards everything to `outlet`.
    /// `on_unauthorized` runs once if the server refuses the token.
    pub fn start(
        socket_url: &str,
        token: &str,
        outlet: Outlet,
        on_unauthorized: impl FnOnce() + Send + 'static,
    ) -> Feed {
        let (client, mut events) =
            connect(SocketTarget::new(socket_url, Some(token.to_owned())), ClientConfig::default());
        let forwarder = tokio::spawn(async move {
            let mut on_unauthorized = Some(on_unauthorized);
            while let Some(event) = events.recv().await {
                let refused = matches!(event, ClientEvent::Unauthorized { .. });
                outlet.publish(event);
                if refused && let Some(f) = on_unauthorized.take() {
                    f();
                }
            }
        });
        Feed { client: Some(client), forwarder, socket_url: socket_url.to_owned() }
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
