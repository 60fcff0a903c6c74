//! A request body that must arrive whole before a deadline.
//!
//! hyper times out a request's head, not its body: a long-polling POST to a live
//! Engine.IO session whose body dripped (a byte now and then, or nothing after the head)
//! was never ended, and outlived its session; such sessions need no credentials, since
//! Engine.IO's handshake comes before Socket.IO's CONNECT (issue 22, F2: 500 of 500 held
//! for 40 s on one session that had expired at 10 s). [`BodyDeadline`] fails the body once
//! its deadline passes, so the request is answered with an error and its connection freed.

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// `Incoming`, failed with [`BodyTooSlow`] once `deadline` has passed before its end.
pub struct BodyDeadline {
    inner: Incoming,
    /// When it must have ended, and how long it was given (for the error).
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
}

/// The body did not arrive whole within its time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive whole within {0:?}")]
pub struct BodyTooSlow(pub Duration);

impl BodyDeadline {
    /// With `within: None`, the body may take as long as it likes (as before).
    pub fn new(inner: Incoming, within: Option<Duration>) -> Self {
        BodyDeadline { inner, deadline: within.map(|d| (Box::pin(tokio::time::sleep(d)), d)) }
    }
}

impl Body for BodyDeadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some((deadline, within)) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            let within = *within;
            this.deadline = None;
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow(within)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
