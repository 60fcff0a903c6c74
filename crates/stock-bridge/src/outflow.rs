//! What one client costs the bridge: bytes queued for it, whether it is being dropped for
//! slowness, its catch-up in flight and its rate of client-sent events.
//!
//! socketioxide bounds each socket's queue in packets only. To bound it in bytes too, every
//! TCP connection the bridge accepts is wrapped in a [`CountedStream`] that counts the bytes
//! the kernel took ([`Tap`]); an [`Outflow`] counts the WebSocket frame bytes the bridge
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

use futures_util::task::AtomicWaker;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::io;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One TCP connection seen from outside its stream: the bytes the kernel accepted so far,
/// and a way to end it (a refused handshake's transport is closed at once).
#[derive(Clone, Default, Debug)]
pub struct Tap(Arc<TapState>);

#[derive(Default, Debug)]
struct TapState {
    written: AtomicU64,
    /// Writes the kernel took (each a syscall): what coalescing saves is seen here.
    writes: AtomicU64,
    closing: AtomicBool,
    reader: AtomicWaker,
}

impl Tap {
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }

    /// Writes the kernel took on this connection.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.written.fetch_add(n as u64, Ordering::Relaxed);
        self.0.writes.fetch_add(1, Ordering::Relaxed);
        WRITES.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` bytes left for a long-polling session (no write of its own: it shares the
    /// connection's).
    pub fn delivered(&self, n: u64) {
        self.0.written.fetch_add(n, Ordering::Relaxed);
    }

    /// Ends the connection: its reader sees the end of the stream, so whoever serves it
    /// (hyper, the WebSocket transport) closes it.
    pub fn close(&self) {
        self.0.closing.store(true, Ordering::Release);
        self.0.reader.wake();
    }

    fn is_closing(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }
}

/// Taps by Engine.IO session id: WebSocket upgrades whose Socket.IO CONNECT has not
/// arrived yet, or long-polling sockets' own. An entry holds its tap weakly: it is gone
/// when its connection (or socket) is. Only successful upgrades and connected sockets are
/// kept, so there are never more live entries than connections and sockets; dead ones are
/// swept whenever the map has grown.
#[derive(Default, Debug)]
pub struct SessionTaps {
    taps: Mutex<HashMap<String, Weak<TapState>>>,
    /// Sweep dead entries when the map reaches this size (doubles while they are all alive).
    sweep_at: std::sync::atomic::AtomicUsize,
}

/// Whether an Engine.IO request's query asks for the WebSocket transport
/// (`?EIO=4&transport=websocket...`): a session opened on it, or an upgrade to it.
pub fn asks_for_websocket(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "transport=websocket"))
}

/// Entries before the first sweep of [`SessionTaps`].
const UPGRADE_SWEEP_AT: usize = 1024;

impl SessionTaps {
    /// Session `sid`'s tap is `tap`.
    pub fn remember(&self, sid: &str, tap: &Tap) {
        let mut taps = self.taps.lock().unwrap_or_else(|e| e.into_inner());
        taps.insert(sid.to_owned(), Arc::downgrade(&tap.0));
        let sweep_at = self.sweep_at.load(Ordering::Relaxed).max(UPGRADE_SWEEP_AT);
        if taps.len() >= sweep_at {
            taps.retain(|_, tap| tap.strong_count() > 0);
            let next = if taps.len() * 2 > sweep_at { sweep_at * 2 } else { sweep_at };
            self.sweep_at.store(next, Ordering::Relaxed);
        }
    }

    /// The tap of `sid`'s WebSocket, if it upgraded before its CONNECT (taken: asked once).
    pub fn take(&self, sid: &str) -> Option<Tap> {
        let mut taps = self.taps.lock().unwrap_or_else(|e| e.into_inner());
        taps.remove(sid)?.upgrade().map(Tap)
    }

    /// The tap of `sid`, left in place.
    pub fn get(&self, sid: &str) -> Option<Tap> {
        let taps = self.taps.lock().unwrap_or_else(|e| e.into_inner());
        taps.get(sid)?.upgrade().map(Tap)
    }

    pub fn len(&self) -> usize {
        self.taps.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes to client connections since the process started (`/metrics` reports it beside
/// the deliveries: writes per delivery below 1 means bursts left coalesced).
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes to all connections the bridge accepted, so far.
pub fn writes_total() -> u64 {
    WRITES.load(Ordering::Relaxed)
}

/// A connection that counts what it writes into its [`Tap`].
pub struct CountedStream<S> {
    inner: S,
    tap: Tap,
}

impl<S> CountedStream<S> {
    pub fn new(inner: S) -> Self {
        CountedStream { inner, tap: Tap::default() }
    }

    pub fn tap(&self) -> Tap {
        self.tap.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.tap.0.reader.register(cx.waker());
        if self.tap.is_closing() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.tap.add(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.tap.add(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a long-polling answer's body into its session's tap as it is written: each
/// packet (they are separated by 0x1e) as the WebSocket frame it would have been.
#[derive(Debug)]
pub struct PollCount {
    tap: Tap,
    /// Bytes of the packet being read so far.
    packet: usize,
}

/// Engine.IO's long-polling packet separator.
const RECORD_SEPARATOR: u8 = 0x1e;

impl PollCount {
    pub fn new(tap: Tap) -> Self {
        PollCount { tap, packet: 0 }
    }

    /// The next piece of the body.
    pub fn count(&mut self, chunk: &[u8]) {
        for piece in chunk.split_inclusive(|b| *b == RECORD_SEPARATOR) {
            match piece.strip_suffix(&[RECORD_SEPARATOR]) {
                Some(end) => {
                    self.tap.delivered(ws_frame_len(self.packet + end.len()));
                    self.packet = 0;
                }
                None => self.packet += piece.len(),
            }
        }
    }

    /// The body ended: its last packet is complete.
    pub fn end(&mut self) {
        if self.packet > 0 {
            self.tap.delivered(ws_frame_len(self.packet));
            self.packet = 0;
        }
    }
}

/// A response whose body, when it answers a long-polling GET, is counted into its
/// session's tap ([`PollCount`]); any other passes unchanged.
pub struct CountedAnswer {
    inner: axum::body::Body,
    count: Option<PollCount>,
}

impl CountedAnswer {
    pub fn new(inner: axum::body::Body, count: Option<PollCount>) -> Self {
        CountedAnswer { inner, count }
    }
}

impl Drop for CountedAnswer {
    fn drop(&mut self) {
        if let Some(count) = self.count.as_mut() {
            count.end();
        }
    }
}

impl hyper::body::Body for CountedAnswer {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(count) = this.count.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        count.count(data);
                    }
                    // hyper stops polling a body of known length once it has it all.
                    if this.inner.is_end_stream() {
                        count.end();
                    }
                }
                Poll::Ready(None) => count.end(),
                _ => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Size on the wire of a WebSocket text frame from the server (unmasked) carrying `payload` bytes.
pub fn ws_frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (payload + header) as u64
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
pub struct Outflow {
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
    /// The socket is in the audience: broadcasts reach it (a catch-up waits for this).
    joined: AtomicBool,
    joined_signal: tokio::sync::Notify,
}

impl Outflow {
    /// `events_per_second` client-sent events, bursts of twice that.
    pub fn new(events_per_second: NonZeroU32) -> Self {
        let burst = events_per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
        Outflow {
            tap: OnceLock::new(),
            polling: OnceLock::new(),
            emitted: AtomicU64::new(0),
            doomed: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            catch_up_mark: AtomicU64::new(0),
            limiter: RateLimiter::direct(Quota::per_second(events_per_second).allow_burst(burst)),
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
        Ok(CatchUpTurn { outflow: self.clone() })
    }
}

/// A catch-up in flight for one socket; dropping it ends the turn.
pub struct CatchUpTurn {
    outflow: Arc<Outflow>,
}

impl CatchUpTurn {
    /// Books the answer's `frame` bytes: the next catch-up waits until they have left.
    pub fn answered(self, frame: u64) {
        self.outflow.book(frame);
        let mark = self.outflow.emitted.load(Ordering::Relaxed);
        self.outflow.catch_up_mark.store(mark, Ordering::Relaxed);
    }
}

impl Drop for CatchUpTurn {
    fn drop(&mut self) {
        self.outflow.catching_up.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> NonZeroU32 {
        NonZeroU32::new(5).unwrap()
    }

    #[test]
    fn frame_sizes_follow_the_websocket_header_lengths() {
        assert_eq!(ws_frame_len(0), 2);
        assert_eq!(ws_frame_len(125), 127);
        assert_eq!(ws_frame_len(126), 130);
        assert_eq!(ws_frame_len(65_535), 65_539);
        assert_eq!(ws_frame_len(65_536), 65_546);
    }

    #[test]
    fn queued_bytes_are_what_was_handed_over_minus_what_was_written() {
        let tap = Tap::default();
        tap.add(500); // before the socket was attached: not this socket's
        let o = Outflow::new(rate());
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
        let o = Arc::new(Outflow::new(rate()));
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

    #[test]
    fn an_upgrade_before_connect_is_kept_until_taken_and_only_while_its_connection_lives() {
        let upgrades = SessionTaps::default();
        let tap = Tap::default();
        upgrades.remember("a", &tap);
        tap.add(7);
        let taken = upgrades.take("a").expect("kept");
        assert_eq!(taken.written(), 7, "the same connection");
        assert!(upgrades.take("a").is_none(), "taken once");

        let gone = Tap::default();
        upgrades.remember("b", &gone);
        drop(gone);
        assert!(upgrades.take("b").is_none(), "its connection closed");

        // Dead entries do not pile up.
        let live = Tap::default();
        upgrades.remember("live", &live);
        for i in 0..10 * UPGRADE_SWEEP_AT {
            upgrades.remember(&format!("dead{i}"), &Tap::default());
        }
        assert!(upgrades.len() <= UPGRADE_SWEEP_AT, "swept: {}", upgrades.len());
        assert!(upgrades.take("live").is_some(), "a live one survives the sweeps");
    }

    #[tokio::test]
    async fn a_catch_up_waits_until_its_socket_has_joined() {
        let o = Arc::new(Outflow::new(rate()));
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
        let o = Outflow::new(rate());
        let admitted = (0..100).filter(|_| o.admit_event().is_ok()).count();
        assert!((10..=11).contains(&admitted), "burst of twice the rate, got {admitted}");
    }

    #[test]
    fn a_poll_answer_counts_as_the_frames_its_packets_would_have_been() {
        let tap = Tap::default();
        let mut count = PollCount::new(tap.clone());
        // "42[...]" split across two body frames, then a ping, then the end of the body.
        count.count(b"42[\"a\",");
        assert_eq!(tap.written(), 0, "a packet counts once it is whole");
        count.count(b"1]\x1e2");
        assert_eq!(tap.written(), ws_frame_len(9));
        count.end();
        count.end();
        assert_eq!(tap.written(), ws_frame_len(9) + ws_frame_len(1), "the last packet, once");
        assert_eq!(tap.writes(), 0, "no write of its own");
    }
}
