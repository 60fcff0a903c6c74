//! A long-polling socket's bytes: the answers to its GETs, counted packet by packet as the
//! WebSocket frames they would have been ([`PollCount`]), into its session's own tap.

use super::frame::ws_frame_len;
use super::tap::Tap;
use std::pin::Pin;
use std::task::{Context, Poll};

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

#[cfg(test)]
mod tests {
    use super::*;

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
