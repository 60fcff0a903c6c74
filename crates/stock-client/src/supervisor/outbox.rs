//! [`Outbox`]: everything that reaches the embedder passes here. It checks and filters
//! what the link received (malformed, duplicate, stale: [`crate::ledger`]), keeps track of
//! whether data may be missing (the gap), applies catch-up answers, publishes state
//! changes, and hands events over a bounded channel without ever waiting: when the
//! channel is full the event is dropped, counted, reported as a gap, and its product
//! fetched again later (`resync_needed`).
//!
//! A catch-up is a run of requests ([`CatchUpRun`]): pages follow one another (at most
//! [`MAX_CATCH_UP_PAGES`]), a refusal the bridge names (`catch_up_pending`,
//! `rate_limited`) is asked again after a pause (at most [`MAX_CATCH_UP_RETRIES`] times),
//! and a run that cannot finish is reported as a gap, never as "nothing missing".

use super::event::{ClientEvent, StateChange};
use super::stats::Stats;
use crate::ledger::Ledger;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use stock_protocol::{CatchUpAnswer, CatchUpRequest, ConnectionState, DeliveryMeta, StockSnapshot, events};
use tokio::sync::{mpsc, watch};
use tokio::time::Duration;

pub(super) struct Outbox {
    events: mpsc::Sender<ClientEvent>,
    state: watch::Sender<StateChange>,
    pub(super) stats: Arc<Stats>,
    ledger: Ledger,
    /// Set while updates may be missing.
    pub(super) gap_since: Option<DateTime<Utc>>,
    /// Events were dropped on a full channel: fetch them again when there is room.
    pub(super) resync_needed: bool,
    /// The catch-up under way, if any.
    run: Option<CatchUpRun>,
    /// Where a catch-up left unfinished by a lost connection had got to: the next one
    /// starts there, not at the ledger's position (live events may have passed it).
    resume: Option<CatchUpRequest>,
}

/// Pages one catch-up may take; a server that pages on past that is reported as a gap.
pub const MAX_CATCH_UP_PAGES: u32 = 256;
/// Times a refused catch-up request is asked again before the gap is reported.
pub const MAX_CATCH_UP_RETRIES: u32 = 8;
/// Pause before asking again after the first refusal; doubles, up to [`CATCH_UP_RETRY_MAX`].
pub const CATCH_UP_RETRY_FIRST: Duration = Duration::from_millis(250);
pub const CATCH_UP_RETRY_MAX: Duration = Duration::from_secs(4);

/// The pause before asking again after refusal number `refusals` (1 for the first).
pub fn catch_up_retry_pause(refusals: u32) -> Duration {
    CATCH_UP_RETRY_FIRST.saturating_mul(1 << refusals.saturating_sub(1).min(16)).min(CATCH_UP_RETRY_MAX)
}

/// One catch-up: what was last asked, and how it went so far.
#[derive(Debug, Clone)]
struct CatchUpRun {
    asked: CatchUpRequest,
    pages: u32,
    refusals: u32,
    /// The server answered or refused by code: it speaks catch-up, so not finishing is a gap.
    answered: bool,
    /// An earlier page said `incomplete`.
    incomplete: bool,
}

/// What to do after a catch-up answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CatchUpStep {
    /// Ask for the next page now.
    Next(CatchUpRequest),
    /// The request was refused for now: ask it again after the pause.
    Retry { after: Duration, request: CatchUpRequest },
    /// The catch-up is over (complete, or reported as a gap).
    Done,
}

impl Outbox {
    pub(super) fn new(
        events: mpsc::Sender<ClientEvent>,
        state: watch::Sender<StateChange>,
        stats: Arc<Stats>,
        ledger_products: usize,
    ) -> Self {
        Outbox {
            events,
            state,
            stats,
            ledger: Ledger::with_capacity(ledger_products),
            gap_since: None,
            resync_needed: false,
            run: None,
            resume: None,
        }
    }

    /// Where a catch-up after (re)connecting starts; a new catch-up begins here: where
    /// an unfinished one had got to, else the ledger's position.
    pub(super) fn catch_up_request(&mut self) -> CatchUpRequest {
        let request = self.resume.take().unwrap_or_else(|| {
            let (epoch, after) = self.ledger.position();
            CatchUpRequest { epoch, after }
        });
        self.begin_catch_up(request)
    }

    /// Starts a catch-up run asking `request` (a resync asks for the whole set).
    pub(super) fn begin_catch_up(&mut self, request: CatchUpRequest) -> CatchUpRequest {
        self.run =
            Some(CatchUpRun { asked: request.clone(), pages: 0, refusals: 0, answered: false, incomplete: false });
        request
    }

    /// Whether a catch-up run is under way.
    pub(super) fn is_catching_up(&self) -> bool {
        self.run.is_some()
    }

    /// The connection was lost after having been up: updates may be missed from now.
    pub(super) fn mark_gap(&mut self) {
        self.gap_since.get_or_insert_with(Utc::now);
    }

    /// Whether the embedder's channel is at most half full.
    pub(super) fn has_room(&self) -> bool {
        self.events.capacity() * 2 >= self.events.max_capacity()
    }

    /// Applies one catch-up answer and says what to ask next.
    pub(super) fn apply_catch_up(&mut self, args: Vec<Value>) -> CatchUpStep {
        let mut run = self.run.take().unwrap_or_else(|| CatchUpRun {
            asked: CatchUpRequest::default(),
            pages: 0,
            refusals: 0,
            answered: false,
            incomplete: false,
        });
        run.answered = true;
        let answer = args.into_iter().next().and_then(|v| serde_json::from_value::<CatchUpAnswer>(v).ok());
        let page = match answer {
            None => {
                self.catch_up_failed("the server's catch-up answer was not understood");
                return CatchUpStep::Done;
            }
            Some(CatchUpAnswer::Refused(refusal)) => {
                run.refusals += 1;
                if run.refusals > MAX_CATCH_UP_RETRIES {
                    tracing::warn!(code = ?refusal.error.code, "catch-up refused {} times: {}", run.refusals, refusal.error.message);
                    self.catch_up_failed("the server kept refusing to replay missed updates; trying again later");
                    self.resync_needed = true;
                    return CatchUpStep::Done;
                }
                tracing::debug!(code = ?refusal.error.code, attempt = run.refusals, "catch-up refused for now; asking again");
                let after = catch_up_retry_pause(run.refusals);
                let request = run.asked.clone();
                self.run = Some(run);
                return CatchUpStep::Retry { after, request };
            }
            Some(CatchUpAnswer::Page(page)) => page,
        };
        tracing::debug!(items = page.items.len(), full = page.full, more = page.more, "catch-up received");
        run.pages += 1;
        run.refusals = 0;
        for item in page.items {
            let meta = DeliveryMeta { seq: item.seq, epoch: page.epoch.clone() };
            self.deliver_stock(item.data, Some(meta));
        }
        self.ledger.advance(&page.epoch, page.seq);
        run.incomplete |= page.incomplete;
        if page.more {
            if run.pages >= MAX_CATCH_UP_PAGES {
                self.catch_up_failed("the server's catch-up did not end");
                return CatchUpStep::Done;
            }
            run.asked = CatchUpRequest { epoch: Some(page.epoch), after: Some(page.seq) };
            let next = run.asked.clone();
            self.run = Some(run);
            return CatchUpStep::Next(next);
        }
        if run.incomplete {
            let since = *self.gap_since.get_or_insert_with(Utc::now);
            self.emit(ClientEvent::Gap { since, reason: "the bridge no longer had every missed update".into() });
        } else if self.gap_since.is_some() && !self.resync_needed {
            self.gap_since = None;
            self.emit(ClientEvent::GapClosed);
        }
        CatchUpStep::Done
    }

    /// A catch-up the server speaks could not finish: products may be missing from now on
    /// (until a later catch-up completes).
    fn catch_up_failed(&mut self, reason: &str) {
        self.run = None;
        tracing::warn!("catch-up incomplete: {reason}");
        let since = *self.gap_since.get_or_insert_with(Utc::now);
        self.emit(ClientEvent::Gap { since, reason: reason.into() });
    }

    /// The catch-up did not answer in time: say data may be missing (if it may). A server
    /// that has answered part of it, or refused it by code, may have more than was shown.
    pub(super) fn catch_up_missed(&mut self) {
        if self.run.as_ref().is_some_and(|run| run.answered) {
            let since = *self.gap_since.get_or_insert_with(Utc::now);
            self.emit(ClientEvent::Gap { since, reason: "the server's catch-up is not finished yet".into() });
        } else if let Some(since) = self.gap_since {
            self.emit(ClientEvent::Gap { since, reason: "the server cannot replay missed updates".into() });
        }
    }

    /// The connection ended: a catch-up under way is abandoned. The next connection asks
    /// again from where it had got to (live events passed after its timeout must not move
    /// that on), and the gap stays until one completes.
    pub(super) fn connection_ended(&mut self) {
        if let Some(run) = self.run.take() {
            if run.answered {
                self.gap_since.get_or_insert_with(Utc::now);
            }
            self.resume = Some(run.asked);
        }
    }

    /// Live events were dropped (held back past their bound): fetch everything again.
    pub(super) fn held_back_overflowed(&mut self, dropped: usize) {
        self.stats.events_dropped.fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(dropped, "too many live events while catching up: dropped, the whole set is fetched again");
        self.resync_needed = true;
        let since = *self.gap_since.get_or_insert_with(Utc::now);
        self.emit(ClientEvent::Gap {
            since,
            reason: "too many updates arrived during the catch-up; fetching again".into(),
        });
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

    /// When the current state began.
    pub(super) fn state_since(&self) -> DateTime<Utc> {
        self.state.borrow().since
    }

    /// The sequence of the last `add_stock` handed over (None before the first).
    pub(super) fn last_seq(&self) -> Option<u64> {
        self.ledger.position().1
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
