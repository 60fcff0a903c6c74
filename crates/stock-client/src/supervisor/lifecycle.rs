//! The state machine across connections: connect with a timeout, hand the open
//! connection to [`super::connected`], back off after a loss, stop for good on a final
//! refusal or when told to.

use super::config::ClientConfig;
use super::event::ClientEvent;
use super::health::Health;
use super::outbox::Outbox;
use crate::link::{Connector, Link, LinkSignal};
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Duration;
use stock_protocol::{ConnectionState, RefusalCode, Refused};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub(super) struct Supervisor {
    pub(super) connector: Arc<dyn Connector>,
    pub(super) config: ClientConfig,
    pub(super) outbox: Outbox,
    pub(super) rng: StdRng,
    pub(super) health: Health,
    pub(super) commands: mpsc::Receiver<super::Command>,
}

/// How a connection attempt ended.
enum Opening {
    Opened,
    Refused(Refused),
    Failed(String),
    TimedOut,
    Stop,
}

/// How an open connection ended.
pub(super) enum Ended {
    Lost(String),
    Unauthorized(Refused),
    Stop,
}

impl Supervisor {
    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut attempt: u32 = 0;
        let mut reason: Option<String> = None;
        let mut ever_connected = false;
        loop {
            self.outbox.set_state(ConnectionState::Connecting, reason.clone(), attempt);
            super::Stats::count(&self.outbox.stats.attempts);
            let (tx, mut rx) = mpsc::unbounded_channel();
            let link = self.connector.connect(tx);
            let opening = tokio::select! {
                o = wait_open(&mut rx, self.config.attempt_timeout) => o,
                _ = &mut stop => Opening::Stop,
            };
            let lost = match opening {
                Opening::Opened => {
                    attempt = 0;
                    self.outbox.set_state(ConnectionState::Connected, None, 0);
                    let ended = self.connected(link.as_ref(), &mut rx, &mut stop).await;
                    ever_connected = true;
                    match ended {
                        Ended::Lost(why) => {
                            self.health.lost(&why, None);
                            why
                        }
                        Ended::Unauthorized(refusal) => {
                            drop(link);
                            return self.refused(refusal, stop).await;
                        }
                        Ended::Stop => return self.stopped(link),
                    }
                }
                Opening::Refused(refusal) if refusal.is_final() => {
                    drop(link);
                    return self.refused(refusal, stop).await;
                }
                Opening::Refused(refusal) => {
                    let why = format!("refused: {}", refusal.message);
                    self.health.error("refused", &why);
                    why
                }
                Opening::Failed(message) => {
                    self.health.error("connect", &message);
                    message
                }
                Opening::TimedOut => {
                    let why = format!("no answer within {} s", self.config.attempt_timeout.as_secs_f64());
                    self.health.error("connect", &why);
                    why
                }
                Opening::Stop => return self.stopped(link),
            };
            drop(link);
            if ever_connected {
                self.outbox.mark_gap();
            }
            tracing::info!(attempt, "socket offline: {lost}");
            self.outbox.set_state(ConnectionState::Offline, Some(lost.clone()), attempt);
            reason = Some(lost);
            let delay = self.config.backoff.delay(attempt, &mut self.rng);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut stop => {
                    self.outbox.set_state(ConnectionState::Offline, Some("stopped".into()), attempt);
                    return;
                }
            }
        }
    }

    fn stopped(&mut self, link: Box<dyn Link>) {
        drop(link);
        self.outbox.set_state(ConnectionState::Offline, Some("stopped".into()), 0);
    }

    async fn refused(&mut self, refusal: Refused, stop: oneshot::Receiver<()>) {
        let Refused { code, message } = refusal;
        tracing::warn!("socket offline: the server refused our credentials ({message})");
        // Every final refusal reads `unauthorized` in the state (the session was refused);
        // which code it was travels in the typed event. A server that sends no code
        // refused with the `unauthorized` prefix.
        self.outbox.set_state(ConnectionState::Offline, Some(RefusalCode::Unauthorized.as_str().into()), 0);
        let code = code.unwrap_or(RefusalCode::Unauthorized);
        self.outbox.emit(ClientEvent::Unauthorized { code, message });
        // No retrying with credentials the server refused: wait to be stopped.
        let _ = stop.await;
    }
}

async fn wait_open(rx: &mut mpsc::UnboundedReceiver<LinkSignal>, timeout: Duration) -> Opening {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Opening::TimedOut,
            Ok(None) => return Opening::Failed("connection lost".into()),
            Ok(Some(LinkSignal::Opened)) => return Opening::Opened,
            Ok(Some(LinkSignal::Refused(m))) => return Opening::Refused(m),
            Ok(Some(LinkSignal::Failed(m))) => return Opening::Failed(m),
            Ok(Some(LinkSignal::Closed)) => return Opening::Failed("server closed the connection".into()),
            Ok(Some(_)) => {}
        }
    }
}
