//! [`Outbox`]: everything that reaches the embedder passes here. It checks and filters
//! what the link received (malformed, duplicate, stale: [`crate::ledger`]), keeps track of
//! whether data may be missing (the gap), applies catch-up answers, publishes state
//! changes, and hands events over a bounded channel without ever waiting: when the
//! channel is full the event is dropped, counted, reported as a gap, and its product
//! fetched again later (`resync_needed`).

use super::event::{ClientEvent, StateChange};
use super::stats::Stats;
use crate::ledger::Ledger;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use stock_protocol::{CatchUp, CatchUpRequest, ConnectionState, DeliveryMeta, StockSnapshot, events};
use tokio::sync::{mpsc, watch};

pub(super) struct Outbox {
    events: mpsc::Sender<ClientEvent>,
    state: watch::Sender<StateChange>,
    pub(super) stats: Arc<Stats>,
    ledger: Ledger,
    /// Set while updates may be missing.
    pub(super) gap_since: Option<DateTime<Utc>>,
    /// Events were dropped on a full channel: fetch them again when there is room.
    pub(super) resync_needed: bool,
    /// An earlier page of the catch-up in progress said `incomplete`.
    pages_incomplete: bool,
}

impl Outbox {
    pub(super) fn new(events: mpsc::Sender<ClientEvent>, state: watch::Sender<StateChange>, stats: Arc<Stats>) -> Self {
        Outbox {
            events,
            state,
            stats,
            ledger: Ledger::default(),
            gap_since: None,
            resync_needed: false,
            pages_incomplete: false,
        }
    }

    /// Where a catch-up after (re)connecting starts; a new catch-up begins here.
    pub(super) fn catch_up_request(&mut self) -> CatchUpRequest {
        self.pages_incomplete = false;
        let (epoch, after) = self.ledger.position();
        CatchUpRequest { epoch, after }
    }

    /// The connection was lost after having been up: updates may be missed from now.
    pub(super) fn mark_gap(&mut self) {
        self.gap_since.get_or_insert_with(Utc::now);
    }

    /// Whether the embedder's channel is at most half full.
    pub(super) fn has_room(&self) -> bool {
        self.events.capacity() * 2 >= self.events.max_capacity()
    }

    /// Applies one catch-up answer; for a paged one, returns the request for the next page.
    pub(super) fn apply_catch_up(&mut self, args: Vec<Value>) -> Option<CatchUpRequest> {
        let Some(answer) = args.into_iter().next().and_then(|v| serde_json::from_value::<CatchUp>(v).ok()) else {
            tracing::warn!("the server's catch-up answer was not understood");
            return None;
        };
        tracing::debug!(items = answer.items.len(), full = answer.full, "catch-up received");
        for item in answer.items {
            let meta = DeliveryMeta { seq: item.seq, epoch: answer.epoch.clone() };
            self.deliver_stock(item.data, Some(meta));
        }
        self.ledger.advance(&answer.epoch, answer.seq);
        if answer.more {
            self.pages_incomplete |= answer.incomplete;
            return Some(CatchUpRequest { epoch: Some(answer.epoch), after: Some(answer.seq) });
        }
        if std::mem::take(&mut self.pages_incomplete) || answer.incomplete {
            let since = *self.gap_since.get_or_insert_with(Utc::now);
            self.emit(ClientEvent::Gap { since, reason: "the bridge no longer had every missed update".into() });
        } else if self.gap_since.take().is_some() && !self.resync_needed {
            self.emit(ClientEvent::GapClosed);
        }
        None
    }

    /// The catch-up did not answer in time: say data may be missing (if it may).
    pub(super) fn catch_up_missed(&mut self) {
        if let Some(since) = self.gap_since {
            self.emit(ClientEvent::Gap { since, reason: "the server cannot replay missed updates".into() });
        }
    }

    /// One live event from the server.
    pub(super) fn deliver(&mut self, name: &str, args: Vec<Value>) {
        self.stats.event_received();
        let mut args = args.into_iter();
        let Some(payload) = args.next() else {
            Stats::count(&self.stats.malformed);
            tracing::warn!(event = name, "event without payload ignored");
            return;
        };
        match name {
            events::ADD_STOCK => {
                let meta = args.next().and_then(|m| serde_json::from_value::<DeliveryMeta>(m).ok());
                self.deliver_stock(payload, meta);
            }
            events::SALE_MODE => {
                self.emit(ClientEvent::SaleMode(payload));
            }
            _ => {}
        }
    }

    fn deliver_stock(&mut self, raw: Value, meta: Option<DeliveryMeta>) {
        let snapshot = match StockSnapshot::from_value(&raw) {
            Ok(s) => s,
            Err(errors) => {
                Stats::count(&self.stats.malformed);
                tracing::warn!("malformed add_stock ignored: {}", errors.join("; "));
                return;
            }
        };
        if self.ledger.admit(&snapshot, meta.as_ref()).is_err() {
            Stats::count(&self.stats.duplicates_skipped);
            return;
        }
        let product_id = snapshot.product_id;
        if !self.emit(ClientEvent::Stock { snapshot, meta, raw }) {
            // Not shown: forget it, so the next catch-up brings it back.
            self.ledger.forget(product_id);
            self.resync_needed = true;
        }
    }

    /// Hands `event` over without waiting; false if the embedder's channel was full.
    pub(super) fn emit(&mut self, event: ClientEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = Stats::count(&self.stats.events_dropped);
                if self.gap_since.is_none() {
                    self.gap_since = Some(Utc::now());
                    tracing::warn!(dropped, "the embedder is not keeping up: events dropped; a catch-up will follow");
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Publishes a state change (unless it says nothing new).
    pub(super) fn set_state(&mut self, state: ConnectionState, reason: Option<String>, attempt: u32) {
        let change = StateChange { state, reason, since: Utc::now(), attempt };
        let current = self.state.borrow().clone();
        if current.state == change.state && current.reason == change.reason && current.attempt == change.attempt {
            return;
        }
        self.state.send_replace(change.clone());
        self.emit(ClientEvent::State(change));
    }
}
