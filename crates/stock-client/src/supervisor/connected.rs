//! One open connection: catch up first (live events wait behind it, at most
//! `catch_up_timeout` per page and [`HELD_BACK_MAX_BYTES`] in all), then pass events on;
//! probe the server and watch for silence.

use super::event::ClientEvent;
use super::lifecycle::{Ended, Supervisor};
use super::outbox::CatchUpStep;
use super::stats::Stats;
use crate::link::{Link, LinkSignal};
use serde_json::Value;
use stock_protocol::CatchUpRequest;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant, MissedTickBehavior};

/// Live events held back during a catch-up, at most (their JSON size, estimated). Past
/// it they are dropped and the whole set is fetched again: a server that pages forever
/// cannot grow the client.
pub const HELD_BACK_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Live events that arrive while a catch-up is under way wait here, so the embedder sees
/// the catch-up first. Open until the catch-up is done or its deadline passes.
struct CatchUpGate {
    deadline: Option<Instant>,
    held_back: Vec<(String, Vec<Value>)>,
    held_bytes: usize,
}

/// What holding an event back did.
enum Held {
    /// Not held: the gate is closed, pass it on.
    Pass((String, Vec<Value>)),
    Kept,
    /// Over the bound: everything held back (this event too) was dropped, this many.
    Overflowed(usize),
}

impl CatchUpGate {
    fn open_until(timeout: Duration) -> Self {
        CatchUpGate { deadline: Some(Instant::now() + timeout), held_back: Vec::new(), held_bytes: 0 }
    }

    fn is_open(&self) -> bool {
        self.deadline.is_some()
    }

    /// Keeps `event` back while a catch-up is under way, else hands it back.
    fn hold(&mut self, event: (String, Vec<Value>)) -> Held {
        if !self.is_open() {
            return Held::Pass(event);
        }
        self.held_bytes += event.0.len() + event.1.iter().map(json_size).sum::<usize>();
        self.held_back.push(event);
        if self.held_bytes > HELD_BACK_MAX_BYTES {
            let dropped = self.held_back.len();
            self.held_back = Vec::new();
            self.held_bytes = 0;
            return Held::Overflowed(dropped);
        }
        Held::Kept
    }

    /// Another page (or a retry) of the catch-up is coming: it gets its own timeout.
    fn extend(&mut self, by: Duration) {
        if self.is_open() {
            self.deadline = Some(Instant::now() + by);
        }
    }

    /// Ends the wait; returns what was held back, in order (nothing if it had ended).
    fn close(&mut self) -> Vec<(String, Vec<Value>)> {
        self.deadline = None;
        self.held_bytes = 0;
        std::mem::take(&mut self.held_back)
    }

    async fn expired(&self) {
        match self.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    }
}

/// About the size of `value` written as JSON (without walking strings twice): enough to
/// bound memory, not exact.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 12,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => 2 + map.iter().map(|(k, v)| k.len() + 4 + json_size(v)).sum::<usize>(),
    }
}

/// A refused catch-up request waiting to be asked again.
struct Retry {
    at: Instant,
    request: CatchUpRequest,
}

async fn retry_due(retry: &Option<Retry>) {
    match retry {
        Some(r) => tokio::time::sleep_until(r.at).await,
        None => std::future::pending().await,
    }
}

/// Silence detection: armed once the server has answered a probe (servers that never
/// answer are watched by the Engine.IO ping timeout instead).
struct Liveness {
    answers_probes: bool,
    last_life: Instant,
    watchdog: Duration,
}

impl Liveness {
    fn alive(&mut self) {
        self.last_life = Instant::now();
    }

    async fn silent(&self) {
        if self.answers_probes {
            tokio::time::sleep_until(self.last_life + self.watchdog).await
        } else {
            std::future::pending().await
        }
    }
}

impl Supervisor {
    pub(super) async fn connected(
        &mut self,
        link: &dyn Link,
        rx: &mut mpsc::UnboundedReceiver<LinkSignal>,
        stop: &mut oneshot::Receiver<()>,
    ) -> Ended {
        let ended = self.serve(link, rx, stop).await;
        self.outbox.connection_ended();
        ended
    }

    async fn serve(
        &mut self,
        link: &dyn Link,
        rx: &mut mpsc::UnboundedReceiver<LinkSignal>,
        stop: &mut oneshot::Receiver<()>,
    ) -> Ended {
        link.request_catch_up(self.outbox.catch_up_request());
        link.probe();
        self.health.probe_sent();
        self.report(link);
        let mut gate = CatchUpGate::open_until(self.config.catch_up_timeout);
        let mut retry: Option<Retry> = None;
        let mut liveness =
            Liveness { answers_probes: false, last_life: Instant::now(), watchdog: self.config.watchdog };
        let mut probes =
            tokio::time::interval_at(Instant::now() + self.config.probe_interval, self.config.probe_interval);
        probes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                signal = rx.recv() => {
                    let Some(signal) = signal else { return Ended::Lost("connection lost".into()) };
                    if let Some(ended) = self.on_signal(signal, link, &mut gate, &mut retry, &mut liveness) {
                        return ended;
                    }
                }
                _ = liveness.silent() => {
                    return Ended::Lost(format!("no answer for {} s", self.config.watchdog.as_secs_f64()));
                }
                _ = gate.expired() => {
                    self.outbox.catch_up_missed();
                    self.pass_on(gate.close());
                }
                _ = retry_due(&retry) => {
                    if let Some(Retry { request, .. }) = retry.take() {
                        link.request_catch_up(request);
                    }
                }
                command = self.commands.recv() => match command {
                    Some(super::Command::Answer(answer)) => link.answer_diagnostics(answer),
                    None => {}
                },
                _ = probes.tick() => {
                    link.probe();
                    self.health.probe_sent();
                    self.health.gap(self.outbox.gap_since.is_some());
                    if self.health.due() {
                        self.report(link);
                    }
                    if self.outbox.resync_needed && !gate.is_open() && !self.outbox.is_catching_up() && self.outbox.has_room() {
                        self.outbox.resync_needed = false;
                        link.request_catch_up(self.outbox.begin_catch_up(CatchUpRequest::default()));
                    }
                }
                _ = &mut *stop => return Ended::Stop,
            }
        }
    }

    /// One signal from the link; `Some` when it ends the connection.
    fn on_signal(
        &mut self,
        signal: LinkSignal,
        link: &dyn Link,
        gate: &mut CatchUpGate,
        retry: &mut Option<Retry>,
        liveness: &mut Liveness,
    ) -> Option<Ended> {
        match signal {
            LinkSignal::Event { name, args } => {
                liveness.alive();
                match gate.hold((name, args)) {
                    Held::Pass((name, args)) => self.outbox.deliver(&name, args),
                    Held::Kept => {}
                    Held::Overflowed(dropped) => self.outbox.held_back_overflowed(dropped),
                }
            }
            LinkSignal::Pong { server_now_ms } => {
                Stats::count(&self.outbox.stats.probes_answered);
                self.health.pong(server_now_ms);
                liveness.answers_probes = true;
                liveness.alive();
            }
            LinkSignal::DiagnosticsAsked(id) => {
                liveness.alive();
                self.outbox.emit(ClientEvent::DiagnosticsAsked { id });
            }
            LinkSignal::CatchUp(args) => {
                liveness.alive();
                match self.outbox.apply_catch_up(args) {
                    // A paged answer: ask for the rest, live events still held back.
                    CatchUpStep::Next(next) => {
                        link.request_catch_up(next);
                        gate.extend(self.config.catch_up_timeout);
                    }
                    CatchUpStep::Retry { after, request } => {
                        *retry = Some(Retry { at: Instant::now() + after, request });
                        gate.extend(after + self.config.catch_up_timeout);
                    }
                    CatchUpStep::Done => self.pass_on(gate.close()),
                }
            }
            LinkSignal::Failed(why) => return Some(Ended::Lost(why)),
            LinkSignal::Closed => return Some(Ended::Lost("server closed the connection".into())),
            LinkSignal::Refused(r) if r.is_final() => return Some(Ended::Unauthorized(r)),
            LinkSignal::Refused(r) => return Some(Ended::Lost(format!("refused: {}", r.message))),
            LinkSignal::Opened => {}
        }
        None
    }

    /// Sends the till's health report now.
    fn report(&mut self, link: &dyn Link) {
        self.health.gap(self.outbox.gap_since.is_some());
        let since = self.outbox.state_since();
        let report = self.health.report(since, self.outbox.last_seq());
        link.report(&report);
    }

    fn pass_on(&mut self, held_back: Vec<(String, Vec<Value>)>) {
        for (name, args) in held_back {
            self.outbox.deliver(&name, args);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_size_estimate_is_close_to_the_json_length() {
        let v = json!({"product_id": 5486, "in_stock": 10, "discount_price": 120.5, "note": "x".repeat(1000),
            "list": [1, 2, 3], "ok": true, "none": null});
        let exact = serde_json::to_string(&v).unwrap().len();
        let estimate = json_size(&v);
        assert!(estimate >= exact && estimate < exact * 2, "estimate {estimate}, exact {exact}");
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_held_back_is_bounded_in_bytes() {
        let mut gate = CatchUpGate::open_until(Duration::from_secs(3));
        let event = || ("add_stock".to_owned(), vec![json!({"note": "x".repeat(64 * 1024)})]);
        let mut kept = 0;
        let dropped = loop {
            match gate.hold(event()) {
                Held::Kept => kept += 1,
                Held::Overflowed(dropped) => break dropped,
                Held::Pass(_) => panic!("the gate is open"),
            }
            assert!(kept < 1_000, "never overflowed");
        };
        assert_eq!(dropped, kept + 1, "all that was held, this one too");
        assert!(gate.close().is_empty(), "nothing left after an overflow");
        assert!(matches!(gate.hold(event()), Held::Pass(_)), "a closed gate passes events on");
    }
}
