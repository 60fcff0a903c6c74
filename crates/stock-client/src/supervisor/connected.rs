//! One open connection: catch up first (live events wait behind it, at most
//! `catch_up_timeout`), then pass events on; probe the server and watch for silence.

use super::lifecycle::{Ended, Supervisor};
use super::stats::Stats;
use crate::link::{Link, LinkSignal};
use serde_json::Value;
use stock_protocol::CatchUpRequest;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant, MissedTickBehavior};

/// Live events that arrive while a catch-up is under way wait here, so the embedder sees
/// the catch-up first. Open until the catch-up is done or its deadline passes.
struct CatchUpGate {
    deadline: Option<Instant>,
    held_back: Vec<(String, Vec<Value>)>,
    timeout: Duration,
}

impl CatchUpGate {
    fn open_until(timeout: Duration) -> Self {
        CatchUpGate { deadline: Some(Instant::now() + timeout), held_back: Vec::new(), timeout }
    }

    fn is_open(&self) -> bool {
        self.deadline.is_some()
    }

    /// Keeps `event` back while a catch-up is under way, else hands it back.
    fn hold(&mut self, event: (String, Vec<Value>)) -> Option<(String, Vec<Value>)> {
        if self.is_open() {
            self.held_back.push(event);
            None
        } else {
            Some(event)
        }
    }

    /// Another page of the catch-up is coming: it gets its own timeout.
    fn extend(&mut self) {
        if self.is_open() {
            self.deadline = Some(Instant::now() + self.timeout);
        }
    }

    /// Ends the wait; returns what was held back, in order (nothing if it had ended).
    fn close(&mut self) -> Vec<(String, Vec<Value>)> {
        self.deadline = None;
        std::mem::take(&mut self.held_back)
    }

    async fn expired(&self) {
        match self.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
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
        link.request_catch_up(self.outbox.catch_up_request());
        link.probe();
        let mut gate = CatchUpGate::open_until(self.config.catch_up_timeout);
        let mut liveness =
            Liveness { answers_probes: false, last_life: Instant::now(), watchdog: self.config.watchdog };
        let mut probes =
            tokio::time::interval_at(Instant::now() + self.config.probe_interval, self.config.probe_interval);
        probes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                signal = rx.recv() => {
                    let Some(signal) = signal else { return Ended::Lost("connection lost".into()) };
                    if let Some(ended) = self.on_signal(signal, link, &mut gate, &mut liveness) {
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
                _ = probes.tick() => {
                    link.probe();
                    if self.outbox.resync_needed && !gate.is_open() && self.outbox.has_room() {
                        self.outbox.resync_needed = false;
                        link.request_catch_up(CatchUpRequest::default());
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
        liveness: &mut Liveness,
    ) -> Option<Ended> {
        match signal {
            LinkSignal::Event { name, args } => {
                liveness.alive();
                if let Some((name, args)) = gate.hold((name, args)) {
                    self.outbox.deliver(&name, args);
                }
            }
            LinkSignal::Pong => {
                Stats::count(&self.outbox.stats.probes_answered);
                liveness.answers_probes = true;
                liveness.alive();
            }
            LinkSignal::CatchUp(args) => {
                liveness.alive();
                match self.outbox.apply_catch_up(args) {
                    // A paged answer: ask for the rest, live events still held back.
                    Some(next) => {
                        link.request_catch_up(next);
                        gate.extend();
                    }
                    None => self.pass_on(gate.close()),
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

    fn pass_on(&mut self, held_back: Vec<(String, Vec<Value>)>) {
        for (name, args) in held_back {
            self.outbox.deliver(&name, args);
        }
    }
}
