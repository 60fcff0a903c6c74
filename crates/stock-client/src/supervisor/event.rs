//! What the embedder receives: [`ClientEvent`]s, among them every [`StateChange`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use stock_protocol::{ConnectionState, DeliveryMeta, RefusalCode, StockSnapshot};

/// The state and why, since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    pub state: ConnectionState,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
    /// Connection attempts since the last successful connection.
    pub attempt: u32,
}

/// What the embedder receives.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    State(StateChange),
    /// A new `add_stock`; `raw` is the payload exactly as received.
    Stock {
        snapshot: StockSnapshot,
        meta: Option<DeliveryMeta>,
        raw: Value,
    },
    /// A `sale_mode` payload.
    SaleMode(Value),
    /// Updates since `since` may be missing; shown until [`ClientEvent::GapClosed`].
    Gap {
        since: DateTime<Utc>,
        reason: String,
    },
    /// A catch-up closed the last gap.
    GapClosed,
    /// The server refused our credentials; the supervisor has stopped trying.
    Unauthorized {
        /// Unauthorized or token expired.
        code: RefusalCode,
        message: String,
    },
    /// Support asked, through the bridge, for this till's Diagnostics text: answer with
    /// [`crate::LiveClient::answer_diagnostics`] and this `id`.
    DiagnosticsAsked {
        id: String,
    },
}
