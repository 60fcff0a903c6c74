//! [`Tap`]: one TCP connection's written bytes, counted by the [`CountedStream`] every
//! accepted connection is wrapped in, and a way to end that connection.

use futures_util::task::AtomicWaker;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One TCP connection seen from outside its stream: the bytes the kernel accepted so far,
/// and a way to end it (a refused handshake's transport is closed at once).
#[derive(Clone, Default, Debug)]
pub struct Tap(pub(super) Arc<TapState>);

#[derive(Default, Debug)]
pub(super) struct TapState {
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

    pub(super) fn add(&self, n: usize) {
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
