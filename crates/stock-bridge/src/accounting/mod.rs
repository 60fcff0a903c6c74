//! What one client costs the bridge: bytes queued for it, whether it is being dropped for
//! slowness, its catch-up in flight and its rate of client-sent events.
//!
//! socketioxide bounds each socket's queue in packets only. To bound it in bytes too, every
//! TCP connection the bridge accepts is wrapped in a [`CountedStream`] that counts the bytes
//! the kernel took ([`Tap`]); an [`Account`] counts the WebSocket frame bytes the bridge
//! handed to socketioxide for that socket. The difference is what still waits in our
//! process for that client. Frame sizes are counted exactly for broadcasts and as a lower
//! bound for acknowledgements, and the transport writes a few bytes of its own (pings), so
//! the estimate can only err low, by a few bytes per minute: it never cuts a client that
//! is keeping up.
//!
//! A socket's WebSocket is not always the connection that opened its session: a client
//! that starts on long-polling upgrades on a new connection, either after its Socket.IO
//! CONNECT (socket.io-client: the socket exists, the tap is attached at once) or before it
//! (rust_socketio: no socket yet, so [`SessionTaps`] keeps the tap until the CONNECT).
//!
//! A long-polling socket has no single TCP connection: its tap is its session's own,
//! kept by session id ([`SessionTaps`] again), and counts what the answers to its GETs
//! carry, packet by packet, as the WebSocket frames those packets would have been
//! ([`PollCount`]), so the same budget holds on either transport. It was bounded in
//! packets only: three sessions that POSTed pongs and never polled held 475 MiB (issue 22,
//! F13). When such a socket upgrades, its WebSocket's tap takes over.
//!
//! No lock here is ever held across a call out of this module.

//!
//! # Layout
//! - This file: [`Account`], one socket's; [`account`] finds it; [`Refused`].
//! - [`tap`]: [`Tap`] and [`CountedStream`], a connection's bytes.
//! - [`sessions`]: [`SessionTaps`] and the Engine.IO query parameters taps are found by.
//! - [`poll`]: [`PollCount`] and [`CountedAnswer`], a long-polling session's bytes.
//! - [`request`]: [`SocketRequest`], what one Socket.IO request and its answer are
//!   counted as (an upgrade attached to its socket, a poll's answer counted).
//! - [`frame`]: frame sizes, derived in this one place.

pub mod frame;
pub mod poll;
pub mod request;
pub mod sessions;
pub mod tap;

pub use frame::{ack_frame_len, event_frame_len, ws_frame_len};
pub use poll::{CountedAnswer, PollCount};
pub use request::SocketRequest;
pub use sessions::{SessionTaps, asks_for_websocket};
pub use tap::{CountedStream, Tap, writes_total};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use socketioxide::extract::SocketRef;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The socket's account (set when it connected).
pub fn account(socket: &SocketRef) -> Option<Arc<Account>> {
    socket.extensions.get::<Arc<Account>>()
}

/// Why a client-sent event was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// More client events than the per-socket rate allows.
    RateLimited,
    /// A catch-up is still being answered or its answer has not left yet.
    CatchUpPending,
}

/// A tap, and where it and the account stood when it was attached.
#[derive(Debug)]
struct Meter {
    tap: Tap,
    written_at: u64,
    emitted_at: u64,
}

impl Meter {
    fn written(&self) -> u64 {
        self.tap.written().saturating_sub(self.written_at)
    }
}

/// One socket's account. Lives in the socket's extensions and goes with it.
#[derive(Debug)]
pub struct Account {
    /// Its WebSocket's connection.
    tap: OnceLock<Meter>,
    /// Its long-polling session, until it has a WebSocket.
    polling: OnceLock<Meter>,
    /// Frame bytes handed to socketioxide while metered.
    emitted: AtomicU64,
    /// Found too slow: nothing more is queued to it while it is being disconnected.
    doomed: AtomicBool,
    /// A catch-up is being computed.
    catching_up: AtomicBool,
    /// `emitted` after the last catch-up answer: another one waits until this has left.
    catch_up_mark: AtomicU64,
    limiter: DefaultDirectRateLimiter,
    /// Events delivered to it, and the highest sequence among them (for the fleet view).
    delivered: AtomicU64,
    last_seq: AtomicU64,
    /// It is being closed because its token expired.
    token_expired: AtomicBool,
    /// The socket is in the audience: broadcasts reach it (a catch-up waits for this).
    joined: AtomicBool,
    joined_signal: tokio::sync::Notify,
}

impl Account {
    /// `events_per_second` client-sent events, bursts of twice that.
    pub fn new(events_per_second: NonZeroU32) -> Self {
        let burst = events_per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
        Account {
            tap: OnceLock::new(),
            polling: OnceLock::new(),
            emitted: AtomicU64::new(0),
            doomed: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            catch_up_mark: AtomicU64::new(0),
            limiter: RateLimiter::direct(Quota::per_second(events_per_second).allow_burst(burst)),
            delivered: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            token_expired: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            joined_signal: tokio::sync::Notify::new(),
        }
    }

    /// Counts from now on what `tap`'s connection writes (the socket's WebSocket). Only
    /// the first call counts: a socket has at most one WebSocket.
    pub fn attach(&self, tap: &Tap) {
        let _ = self.tap.set(self.meter_for(tap));
    }

    /// Counts what `tap`, its long-polling session's, carries, until a WebSocket is attached.
    pub fn attach_polling(&self, tap: &Tap) {
        let _ = self.polling.set(self.meter_for(tap));
    }

    fn meter_for(&self, tap: &Tap) -> Meter {
        Meter { tap: tap.clone(), written_at: tap.written(), emitted_at: self.emitted.load(Ordering::Relaxed) }
    }

    fn meter(&self) -> Option<&Meter> {
        self.tap.get().or_else(|| self.polling.get())
    }

    /// Writes its WebSocket's connection took since it was attached (None without one).
    pub fn writes(&self) -> Option<u64> {
        self.tap.get().map(|meter| meter.tap.writes())
    }

    pub fn is_metered(&self) -> bool {
        self.meter().is_some()
    }

    /// Bytes handed over for this client that have not left yet (None when not metered).
    pub fn queued(&self) -> Option<u64> {
        let meter = self.meter()?;
        let emitted = self.emitted.load(Ordering::Relaxed).saturating_sub(meter.emitted_at);
        Some(emitted.saturating_sub(meter.written()))
    }

    /// Books `frame` bytes unless that would take the queue over `budget`. A frame is
    /// always accepted on an empty queue, whatever its size.
    pub fn reserve(&self, frame: u64, budget: u64) -> bool {
        if let Some(queued) = self.queued() {
            if queued > 0 && queued + frame > budget {
                return false;
            }
            self.emitted.fetch_add(frame, Ordering::Relaxed);
        }
        true
    }

    /// Books `frame` bytes whatever the budget (answers the client asked for).
    pub fn book(&self, frame: u64) {
        if self.is_metered() {
            self.emitted.fetch_add(frame, Ordering::Relaxed);
        }
    }

    pub fn doom(&self) {
        self.doomed.store(true, Ordering::Relaxed);
    }

    pub fn is_doomed(&self) -> bool {
        self.doomed.load(Ordering::Relaxed)
    }

    /// An event was delivered to it (with its sequence, when it has one).
    pub fn note_delivery(&self, seq: Option<u64>) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(seq) = seq {
            self.last_seq.fetch_max(seq, Ordering::Relaxed);
        }
    }

    /// Everything up to `seq` counts as delivered (the position it joined at).
    pub fn note_latest(&self, seq: u64) {
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Events delivered to it so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// The highest sequence delivered to it (or that it joined at).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    /// It is being closed because its token expired.
    pub fn mark_token_expired(&self) {
        self.token_expired.store(true, Ordering::Relaxed);
    }

    pub fn token_expired(&self) -> bool {
        self.token_expired.load(Ordering::Relaxed)
    }

    /// The socket has joined the audience.
    pub fn mark_joined(&self) {
        self.joined.store(true, Ordering::Release);
        self.joined_signal.notify_waiters();
    }

    /// Resolves once the socket has joined the audience.
    pub async fn joined(&self) {
        loop {
            // Created before the check: a `notify_waiters` in between still wakes it.
            let signalled = self.joined_signal.notified();
            if self.joined.load(Ordering::Acquire) {
                return;
            }
            signalled.await;
        }
    }

    /// Admits one client-sent event, or says why not.
    pub fn admit_event(&self) -> Result<(), Refused> {
        self.limiter.check().map_err(|_| Refused::RateLimited)
    }

    /// Starts a catch-up unless one is being computed or the last answer has not left.
    /// The returned guard ends it; [`CatchUpTurn::answered`] records the answer's size.
    pub fn begin_catch_up(self: &Arc<Self>) -> Result<CatchUpTurn, Refused> {
        if let Some(meter) = self.meter() {
            let answer_end = self.catch_up_mark.load(Ordering::Relaxed).saturating_sub(meter.emitted_at);
            if meter.written() < answer_end {
                return Err(Refused::CatchUpPending);
            }
        }
        if self.catching_up.swap(true, Ordering::AcqRel) {
            return Err(Refused::CatchUpPending);
        }
        Ok(CatchUpTurn { account: self.clone() })
    }
}

/// A catch-up in flight for one socket; dropping it ends the turn.
pub struct CatchUpTurn {
    account: Arc<Account>,
}

impl CatchUpTurn {
    /// Books the answer's `frame` bytes: the next catch-up waits until they have left.
    pub fn answered(self, frame: u64) {
        self.account.book(frame);
        let mark = self.account.emitted.load(Ordering::Relaxed);
        self.account.catch_up_mark.store(mark, Ordering::Relaxed);
    }
}

impl Drop for CatchUpTurn {
    fn drop(&mut self) {
        self.account.catching_up.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> NonZeroU32 {
        NonZeroU32::new(5).unwrap()
    }

    #[test]
    fn queued_bytes_are_what_was_handed_over_minus_what_was_written() {
        let tap = Tap::default();
        tap.add(500); // before the socket was attached: not this socket's
        let o = Account::new(rate());
        assert_eq!(o.queued(), None);
        assert!(o.reserve(10_000, 100), "unmetered sockets are bounded elsewhere");
        o.attach(&tap);
        assert_eq!(o.queued(), Some(0));
        assert!(o.reserve(60, 100));
        assert!(!o.reserve(60, 100), "over the budget");
        tap.add(50);
        assert_eq!(o.queued(), Some(10));
        assert!(o.reserve(60, 100));
        tap.add(70);
        assert_eq!(o.queued(), Some(0));
        assert!(o.reserve(1_000, 100), "an empty queue takes any one frame");
    }

    #[test]
    fn one_catch_up_at_a_time_until_its_answer_has_left() {
        let tap = Tap::default();
        let o = Arc::new(Account::new(rate()));
        o.attach(&tap);
        let turn = o.begin_catch_up().unwrap();
        assert_eq!(o.begin_catch_up().err(), Some(Refused::CatchUpPending), "still computing");
        turn.answered(1_000);
        assert_eq!(o.begin_catch_up().err(), Some(Refused::CatchUpPending), "answer not written yet");
        tap.add(999);
        assert_eq!(o.begin_catch_up().err(), Some(Refused::CatchUpPending));
        tap.add(1);
        let turn = o.begin_catch_up().expect("the answer left");
        drop(turn);
        assert!(o.begin_catch_up().is_ok(), "a turn that answered nothing ends when dropped");
    }

    #[tokio::test]
    async fn a_catch_up_waits_until_its_socket_has_joined() {
        let o = Arc::new(Account::new(rate()));
        let waiting = tokio::spawn({
            let o = o.clone();
            async move { o.joined().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "not joined yet");
        o.mark_joined();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.expect("woken").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), o.joined()).await.expect("joined stays joined");
    }

    #[test]
    fn client_events_are_rate_limited() {
        let o = Account::new(rate());
        let admitted = (0..100).filter(|_| o.admit_event().is_ok()).count();
        assert!((10..=11).contains(&admitted), "burst of twice the rate, got {admitted}");
    }
}
