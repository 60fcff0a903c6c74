//! Wire types shared by the bridge, the client core and the desktop app.
//!
//! This crate owns the shapes that cross process boundaries and their validation:
//! nothing here does I/O, knows tokio or Tauri.
//!
//! # Layout
//! - [`events`]: event names (`add_stock`, `sale_mode`, the reserved Socket.IO names, our
//!   namespaced control events).
//! - [`snapshot`]: [`StockSnapshot`], the `add_stock` payload, and its field checks.
//! - [`broadcast`]: [`BroadcastRequest`], the body of `POST /broadcast`, parsed and validated.
//! - [`state`]: [`ConnectionState`], the three words the operator sees.
//! - [`text`]: quoting input in errors, reading a user id.
//! - [`delivery`]: [`DeliveryMeta`], the sequence/epoch travelling beside a payload, and
//!   the catch-up request/answer shapes.
//! - [`refusal`]: [`RefusalCode`], why a handshake was refused, as bridge and clients read it.
//! - [`till`]: what a till says about itself ([`TillIdentity`], [`TillReport`]) and how
//!   the fleet view names its states ([`FleetStatus`], [`EndReason`]).

pub mod broadcast;
pub mod delivery;
pub mod events;
pub mod refusal;
pub mod snapshot;
pub mod state;
pub mod text;
pub mod till;

pub use broadcast::{
    BatchLimits, BodyError, BroadcastBody, BroadcastRequest, EventPolicy, InvalidPayload, ItemError, Recipient,
};
pub use delivery::{
    CatchUp, CatchUpAnswer, CatchUpRequest, ControlRefusal, ControlRefusalCode, ControlRefusalDetail, DeliveryMeta,
};
pub use refusal::{ConnectErrorBody, RefusalCode, Refused};
pub use snapshot::StockSnapshot;
pub use state::ConnectionState;
pub use till::{
    DiagnosticsAnswer, DiagnosticsAsk, EndReason, FleetStatus, TillApp, TillDisconnect, TillError, TillIdentity,
    TillLastError, TillReport,
};
