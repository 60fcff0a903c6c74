//! What the till tells the bridge about itself ([`TillReport`] over `stock:health`), so
//! support staff can see why it is offline without touching it.
//!
//! The supervisor notes what happens (connections lost, failed attempts, probes answered,
//! gaps), the embedder says what it shows ([`Shown`]), and a report goes out when a
//! connection opens, when something changes, and at least every [`REPORT_EVERY`]; never
//! more often than [`REPORT_MIN_INTERVAL`]. Texts are the client's own reasons, fitted to
//! the protocol's bounds; none of them carries a token or a header.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use stock_protocol::till::{LONG_TEXT_MAX, REPORT_EVERY, REPORT_MIN_INTERVAL, SHORT_TEXT_MAX};
use stock_protocol::{ConnectionState, TillDisconnect, TillLastError, TillReport};
use tokio::time::Instant;

/// What the embedder shows, for the report (set by [`crate::LiveClient::set_shown`]).
/// The product count goes out with the next report; notifications turned on or off are
/// a change reported at once.
#[derive(Debug, Default)]
pub struct Shown {
    products: AtomicU32,
    notifications: AtomicBool,
    changed: AtomicBool,
}

impl Shown {
    pub fn set(&self, products: usize, notifications: bool) {
        self.products.store(u32::try_from(products).unwrap_or(u32::MAX), Ordering::Relaxed);
        if self.notifications.swap(notifications, Ordering::Relaxed) != notifications {
            self.changed.store(true, Ordering::Relaxed);
        }
    }

    fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::Relaxed)
    }
}

/// Connection losses remembered (for the counts of the last hour and day) at most.
const LOSSES_KEPT: usize = 1024;

/// See the module docs.
pub(super) struct Health {
    pub(super) shown: std::sync::Arc<Shown>,
    losses: VecDeque<DateTime<Utc>>,
    last_disconnect: Option<TillDisconnect>,
    last_error: Option<TillLastError>,
    rtt_ms: Option<u32>,
    clock_offset_ms: Option<i64>,
    probe_sent: Option<(Instant, DateTime<Utc>)>,
    gaps: u32,
    gap_open: bool,
    sent_at: Option<Instant>,
    changed: bool,
}

impl Health {
    pub(super) fn new(shown: std::sync::Arc<Shown>) -> Self {
        Health {
            shown,
            losses: VecDeque::new(),
            last_disconnect: None,
            last_error: None,
            rtt_ms: None,
            clock_offset_ms: None,
            probe_sent: None,
            gaps: 0,
            gap_open: false,
            sent_at: None,
            changed: true,
        }
    }

    /// An open connection was lost, for `reason` (with a refusal code when there was one).
    pub(super) fn lost(&mut self, reason: &str, code: Option<&str>) {
        let now = Utc::now();
        if self.losses.len() == LOSSES_KEPT {
            self.losses.pop_front();
        }
        self.losses.push_back(now);
        self.last_disconnect = Some(TillDisconnect {
            reason: TillReport::fit(reason, LONG_TEXT_MAX),
            code: code.map(|c| TillReport::fit(c, SHORT_TEXT_MAX)),
            at: now,
        });
        self.changed = true;
    }

    /// Something went wrong (`kind`: `connect`, `refused`, `catch_up`…).
    pub(super) fn error(&mut self, kind: &str, text: &str) {
        self.last_error = Some(TillLastError {
            kind: TillReport::fit(kind, SHORT_TEXT_MAX),
            text: TillReport::fit(text, LONG_TEXT_MAX),
            at: Utc::now(),
        });
        self.changed = true;
    }

    pub(super) fn probe_sent(&mut self) {
        self.probe_sent = Some((Instant::now(), Utc::now()));
    }

    /// A probe was answered, with the bridge's clock when it says it.
    pub(super) fn pong(&mut self, server_now_ms: Option<i64>) {
        let Some((sent, sent_wall)) = self.probe_sent.take() else { return };
        let rtt = sent.elapsed();
        self.rtt_ms = Some(u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX));
        if let Some(server_now) = server_now_ms {
            // The bridge read its clock about halfway: our clock then, minus its.
            let ours = sent_wall.timestamp_millis() + (rtt.as_millis() / 2) as i64;
            self.clock_offset_ms = Some(ours - server_now);
        }
    }

    /// Whether data may be missing now (a change is reported; a new gap is counted).
    pub(super) fn gap(&mut self, open: bool) {
        if open != self.gap_open {
            if open {
                self.gaps = self.gaps.saturating_add(1);
            }
            self.gap_open = open;
            self.changed = true;
        }
    }

    /// True when a report should go out now.
    pub(super) fn due(&mut self) -> bool {
        if self.shown.take_changed() {
            self.changed = true;
        }
        match self.sent_at {
            None => true,
            Some(at) => {
                let since = at.elapsed();
                since >= REPORT_EVERY || (self.changed && since >= REPORT_MIN_INTERVAL)
            }
        }
    }

    /// The report to send now (and it counts as sent).
    pub(super) fn report(&mut self, since: DateTime<Utc>, last_seq: Option<u64>) -> TillReport {
        let now = Utc::now();
        let within = |span: chrono::Duration| self.losses.iter().filter(|at| now - **at <= span).count();
        let report = TillReport {
            state: ConnectionState::Connected,
            since,
            reconnects_1h: u32::try_from(within(chrono::Duration::hours(1))).unwrap_or(u32::MAX),
            reconnects_24h: u32::try_from(within(chrono::Duration::hours(24))).unwrap_or(u32::MAX),
            last_disconnect: self.last_disconnect.clone(),
            last_seq,
            gaps: self.gaps,
            gap_open: self.gap_open,
            rtt_ms: self.rtt_ms,
            clock_offset_ms: self.clock_offset_ms,
            notifications: self.shown.notifications.load(Ordering::Relaxed),
            products: self.shown.products.load(Ordering::Relaxed),
            last_error: self.last_error.clone(),
            sent_at: now,
        };
        while self.losses.front().is_some_and(|at| now - *at > chrono::Duration::hours(24)) {
            self.losses.pop_front();
        }
        self.sent_at = Some(Instant::now());
        self.changed = false;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn reports_go_out_at_once_then_on_change_and_at_least_every_30_s() {
        let mut health = Health::new(Arc::new(Shown::default()));
        assert!(health.due(), "the first report goes out at once");
        health.report(Utc::now(), None);
        assert!(!health.due());
        health.gap(true);
        assert!(!health.due(), "a change waits for the minimum interval");
        tokio::time::advance(REPORT_MIN_INTERVAL).await;
        assert!(health.due());
        let report = health.report(Utc::now(), Some(7));
        assert_eq!((report.gaps, report.gap_open, report.last_seq), (1, true, Some(7)));
        tokio::time::advance(REPORT_EVERY - Duration::from_millis(1)).await;
        assert!(!health.due(), "nothing changed");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(health.due(), "every 30 s all the same");
    }

    #[tokio::test(start_paused = true)]
    async fn losses_are_counted_and_texts_fit_the_protocol() {
        let shown = Arc::new(Shown::default());
        shown.set(120, true);
        let mut health = Health::new(shown);
        health.lost(&"x".repeat(1000), Some("token_expired"));
        health.lost("server closed the connection", None);
        health.error("connect", "could not connect:\u{1b}[31m refused");
        health.probe_sent();
        tokio::time::advance(Duration::from_millis(40)).await;
        health.pong(Some(Utc::now().timestamp_millis() - 1000));
        let report = health.report(Utc::now(), None);
        assert_eq!((report.reconnects_1h, report.reconnects_24h), (2, 2));
        assert_eq!(report.last_disconnect.as_ref().unwrap().reason, "server closed the connection");
        assert_eq!((report.products, report.notifications), (120, true));
        assert_eq!(report.rtt_ms, Some(40));
        assert!(report.clock_offset_ms.unwrap() > 900, "{:?}", report.clock_offset_ms);
        assert!(report.check().is_ok(), "fits the protocol's bounds");
        let bytes = serde_json::to_vec(&report).unwrap();
        assert!(TillReport::parse(&bytes).is_ok(), "the bridge takes it");
    }
}
