//! Event names on the wire.
//!
//! Application events keep the names the back office already uses (`add_stock`,
//! `sale_mode`); events this product adds are namespaced with `stock:` so they can never
//! collide with a back-office event.

/// A stock and price snapshot of one product.
pub const ADD_STOCK: &str = "add_stock";
/// The back office switched pricing modes.
pub const SALE_MODE: &str = "sale_mode";
/// Client → bridge liveness probe; the bridge acknowledges it at once.
pub const PING: &str = "stock:ping";
/// Client → bridge: "send me everything newer than this" (acknowledged with a [`crate::CatchUp`]).
pub const CATCH_UP: &str = "stock:catch_up";

/// Client → bridge: the till's health report (a [`crate::TillReport`]).
pub const HEALTH: &str = "stock:health";
/// Bridge → client: support asks for the till's Diagnostics text (a [`crate::DiagnosticsAsk`]).
pub const DIAGNOSTICS: &str = "stock:diagnostics";
/// Client → bridge: the Diagnostics text asked for (a [`crate::DiagnosticsAnswer`]).
pub const DIAGNOSTICS_ANSWER: &str = "stock:diagnostics_answer";

/// Names Socket.IO reserves; a broadcast may never use them.
pub const RESERVED: [&str; 6] =
    ["connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"];

/// Events relayed when nothing else is configured.
pub const DEFAULT_ALLOWED: [&str; 2] = [ADD_STOCK, SALE_MODE];

/// Is `name` one of Socket.IO's reserved event names?
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}
