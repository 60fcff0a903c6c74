//! The operator's view of the feed, independent of any UI toolkit: the latest snapshot of
//! every product, the connection state and its recent history, the sale mode, whether
//! data may be incomplete, and counters. [`Dashboard::apply`] records each [`ClientEvent`]
//! and says what changed ([`Change`]); [`Dashboard::view`] is everything a UI that just
//! loaded needs (so nothing sent before it listened is lost). How a UI receives changes
//! (its wire format) is the UI's business: the desktop app's is `src-tauri/src/page.rs`.
//!
//! Bounded: at most [`MAX_PRODUCTS`] products (least recently updated dropped first) and
//! [`HISTORY_LEN`] state changes.

use crate::supervisor::{ClientEvent, StateChange};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use stock_protocol::{ConnectionState, RefusalCode};

pub const MAX_PRODUCTS: usize = 50_000;
pub const HISTORY_LEN: usize = 50;

/// One product's latest values, as shown in the banner and the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    pub product_id: i64,
    /// A `name` field, when the back office sends one.
    pub name: Option<String>,
    pub in_stock: i64,
    pub discount_price: f64,
    pub peak_hour_price: f64,
    pub mediboy_offer_price: f64,
    pub sync_at: String,
    pub seq: Option<u64>,
    pub received_at: DateTime<Utc>,
}

/// A data-may-be-incomplete notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapNotice {
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// What one event changed in the [`Dashboard`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    State(StateChange),
    Stock(ProductRow),
    SaleMode(Value),
    Gap(GapNotice),
    GapClosed,
    /// The server refused the session's token (see [`crate::session_ended_text`]).
    SessionEnded(RefusalCode),
}

/// Everything a page needs to draw itself from scratch.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardView {
    pub state: StateChange,
    pub history: Vec<StateChange>,
    pub latest: Option<ProductRow>,
    pub products: Vec<ProductRow>,
    pub sale_mode: Option<Value>,
    pub gap: Option<GapNotice>,
    pub events_received: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The values shown were restored from disk, last known at this time, and are not live
    /// until the first catch-up completes.
    pub last_known: Option<DateTime<Utc>>,
}

/// What is kept on disk between runs (never a token): the products and the sale mode, and
/// when they were last known to be current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastKnown {
    pub saved_at: DateTime<Utc>,
    pub products: Vec<ProductRow>,
    pub sale_mode: Option<Value>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Dashboard {
    products: HashMap<i64, ProductRow>,
    latest: Option<i64>,
    state: StateChange,
    history: VecDeque<StateChange>,
    sale_mode: Option<Value>,
    gap: Option<GapNotice>,
    events_received: u64,
    last_event_at: Option<DateTime<Utc>>,
    last_known: Option<DateTime<Utc>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        let state = StateChange {
            state: ConnectionState::Offline,
            reason: Some("not logged in".into()),
            since: Utc::now(),
            attempt: 0,
        };
        Dashboard {
            products: HashMap::new(),
            latest: None,
            history: VecDeque::from([state.clone()]),
            state,
            sale_mode: None,
            gap: None,
            events_received: 0,
            last_event_at: None,
            last_known: None,
        }
    }
}

impl Dashboard {
    /// Records one event and returns what changed (None for an event that is not about
    /// the view: a request for Diagnostics, which the embedder answers).
    pub fn apply(&mut self, event: ClientEvent) -> Option<Change> {
        Some(match event {
            ClientEvent::State(change) => {
                self.set_state(change.clone());
                Change::State(change)
            }
            ClientEvent::Stock { snapshot, meta, .. } => {
                let now = Utc::now();
                self.events_received += 1;
                self.last_event_at = Some(now);
                let row = ProductRow {
                    product_id: snapshot.product_id,
                    name: snapshot.extra.get("name").and_then(Value::as_str).map(str::to_owned),
                    in_stock: snapshot.in_stock,
                    discount_price: snapshot.discount_price,
                    peak_hour_price: snapshot.peak_hour_price,
                    mediboy_offer_price: snapshot.mediboy_offer_price,
                    sync_at: snapshot.sync_at,
                    seq: meta.map(|m| m.seq),
                    received_at: now,
                };
                if !self.products.contains_key(&row.product_id)
                    && self.products.len() >= MAX_PRODUCTS
                    && let Some(oldest) = self.products.values().min_by_key(|r| r.received_at).map(|r| r.product_id)
                {
                    self.products.remove(&oldest);
                }
                self.products.insert(row.product_id, row.clone());
                self.latest = Some(row.product_id);
                Change::Stock(row)
            }
            ClientEvent::SaleMode(data) => {
                self.events_received += 1;
                self.last_event_at = Some(Utc::now());
                self.sale_mode = Some(data.clone());
                Change::SaleMode(data)
            }
            ClientEvent::Gap { since, reason } => {
                let notice = GapNotice { since: self.gap.as_ref().map_or(since, |g| g.since.min(since)), reason };
                self.gap = Some(notice.clone());
                Change::Gap(notice)
            }
            ClientEvent::GapClosed => {
                self.gap = None;
                // A completed catch-up: whatever was restored from disk is now current.
                self.last_known = None;
                Change::GapClosed
            }
            ClientEvent::Unauthorized { code, .. } => Change::SessionEnded(code),
            ClientEvent::DiagnosticsAsked { .. } => return None,
        })
    }

    /// Products on screen.
    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    /// Records a state that did not come from a client (logged out, not logged in).
    pub fn set_state(&mut self, change: StateChange) {
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        self.state = change;
    }

    /// Forgets everything shown (on logout).
    /// Shows `saved` (from disk) as last known, not live.
    pub fn restore(&mut self, saved: LastKnown) {
        self.latest = saved.products.iter().max_by(|a, b| a.received_at.cmp(&b.received_at)).map(|r| r.product_id);
        self.products = saved.products.into_iter().take(MAX_PRODUCTS).map(|r| (r.product_id, r)).collect();
        self.sale_mode = saved.sale_mode;
        self.last_known = Some(saved.saved_at);
    }

    /// Events received so far (changes whenever the table may have).
    pub fn events_received(&self) -> u64 {
        self.events_received
    }

    /// Since when the values shown are not live (restored from disk), if they are not.
    pub fn last_known(&self) -> Option<DateTime<Utc>> {
        self.last_known
    }

    /// What to keep on disk now, or `None` when there is nothing. The values were current
    /// `now` while connected, else when the connection was lost (or, if they never became
    /// live, when they were saved before).
    pub fn to_keep(&self, now: DateTime<Utc>) -> Option<LastKnown> {
        if self.products.is_empty() && self.sale_mode.is_none() {
            return None;
        }
        let saved_at = match (self.last_known, self.state.state) {
            (Some(before), _) => before,
            (None, ConnectionState::Connected) => now,
            (None, _) => self.state.since,
        };
        let mut products: Vec<ProductRow> = self.products.values().cloned().collect();
        products.sort_by_key(|r| r.product_id);
        Some(LastKnown { saved_at, products, sale_mode: self.sale_mode.clone() })
    }

    pub fn clear(&mut self) {
        *self = Dashboard { history: self.history.clone(), state: self.state.clone(), ..Dashboard::default() };
    }

    pub fn view(&self) -> DashboardView {
        let mut products: Vec<ProductRow> = self.products.values().cloned().collect();
        products.sort_by_key(|r| r.product_id);
        DashboardView {
            state: self.state.clone(),
            history: self.history.iter().cloned().collect(),
            latest: self.latest.and_then(|id| self.products.get(&id).cloned()),
            products,
            sale_mode: self.sale_mode.clone(),
            gap: self.gap.clone(),
            events_received: self.events_received,
            last_event_at: self.last_event_at,
            last_known: self.last_known,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stock_protocol::{DeliveryMeta, StockSnapshot};

    fn stock(product: i64, in_stock: i64) -> ClientEvent {
        let raw = json!({"product_id": product, "in_stock": in_stock, "discount_price": 1.5, "peak_hour_price": 2,
            "mediboy_offer_price": 1, "sync_at": "2024-01-01T00:00:00Z", "name": "Napa"});
        ClientEvent::Stock {
            snapshot: StockSnapshot::from_value(&raw).unwrap(),
            meta: Some(DeliveryMeta { seq: 9, epoch: "e".into() }),
            raw,
        }
    }

    #[test]
    fn keeps_the_latest_per_product_and_the_banner_row() {
        let mut d = Dashboard::default();
        d.apply(stock(2, 5));
        d.apply(stock(1, 7));
        let update = d.apply(stock(2, 0)).unwrap();
        let Change::Stock(row) = &update else { panic!() };
        assert_eq!((row.product_id, row.in_stock, row.name.as_deref(), row.seq), (2, 0, Some("Napa"), Some(9)));
        let view = d.view();
        assert_eq!(view.products.iter().map(|r| (r.product_id, r.in_stock)).collect::<Vec<_>>(), vec![(1, 7), (2, 0)]);
        assert_eq!(view.latest.unwrap().product_id, 2);
        assert_eq!(view.events_received, 3);
        assert_eq!(row.discount_price, 1.5);
    }

    #[test]
    fn restored_values_are_not_live_until_a_catch_up_completes() {
        let mut d = Dashboard::default();
        assert_eq!(d.to_keep(Utc::now()), None, "nothing to keep");
        d.apply(stock(1, 7));
        d.apply(ClientEvent::SaleMode(json!({"mode": "peak_hour"})));
        let went_offline = d.view().state.since;
        // Not connected: the values were current when the connection was lost.
        let kept = d.to_keep(Utc::now()).unwrap();
        assert_eq!(kept.saved_at, went_offline);
        let connected = StateChange { state: ConnectionState::Connected, reason: None, since: Utc::now(), attempt: 0 };
        d.apply(ClientEvent::State(connected));
        let now = Utc::now();
        let kept = d.to_keep(now).unwrap();
        assert_eq!(kept.saved_at, now, "connected: current until now");
        // Round trip through JSON, as on disk.
        let kept: LastKnown = serde_json::from_value(serde_json::to_value(&kept).unwrap()).unwrap();

        let mut next = Dashboard::default();
        next.restore(kept.clone());
        let view = next.view();
        assert_eq!(view.last_known, Some(now));
        assert_eq!(view.products, kept.products);
        assert_eq!(view.latest.unwrap().product_id, 1);
        assert_eq!(view.sale_mode, Some(json!({"mode": "peak_hour"})));
        // Saved again before becoming live: still "last known" at the first time.
        assert_eq!(next.to_keep(Utc::now()).unwrap().saved_at, now);
        next.apply(ClientEvent::Gap { since: now, reason: "r".into() });
        assert_eq!(next.view().last_known, Some(now), "a gap is not a completed catch-up");
        next.apply(ClientEvent::GapClosed);
        assert_eq!(next.view().last_known, None);
    }

    #[test]
    fn state_history_is_bounded() {
        let mut d = Dashboard::default();
        for i in 0..(HISTORY_LEN as u32 + 10) {
            let s = StateChange { state: ConnectionState::Connecting, reason: None, since: Utc::now(), attempt: i };
            d.apply(ClientEvent::State(s));
        }
        let view = d.view();
        assert_eq!(view.history.len(), HISTORY_LEN);
        assert_eq!(view.history.last().unwrap().attempt, HISTORY_LEN as u32 + 9, "the newest are kept");
    }

    #[test]
    fn gaps_keep_their_earliest_start_until_closed() {
        let mut d = Dashboard::default();
        let t1 = Utc::now() - chrono::Duration::minutes(5);
        d.apply(ClientEvent::Gap { since: t1, reason: "a".into() });
        d.apply(ClientEvent::Gap { since: Utc::now(), reason: "b".into() });
        assert_eq!(d.view().gap.unwrap().since, t1);
        d.apply(ClientEvent::GapClosed);
        assert!(d.view().gap.is_none());
    }
}
