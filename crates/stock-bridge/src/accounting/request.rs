//! What the accounting takes from one Socket.IO request before it is served, and does with
//! its answer ([`SocketRequest`]): an upgrade Engine.IO accepts attaches its connection's
//! tap to its socket ([`attach_upgrade`]); a long-polling GET's answer is counted into its
//! session's tap ([`PollCount`]).

use super::poll::{CountedAnswer, PollCount};
use super::sessions::{SessionTaps, poll_sid, upgrade_sid};
use super::tap::Tap;
use socketioxide::SocketIo;
use socketioxide::socket::Sid;

/// See the module docs.
pub struct SocketRequest {
    /// The session this request asks to upgrade to WebSocket.
    upgrade: Option<String>,
    /// The long-polling session whose answer this is.
    poll: Option<PollCount>,
}

impl SocketRequest {
    /// Reads `req` (a request under `/socket.io`): long-polling sessions' taps are in `polls`.
    pub fn read<B>(req: &hyper::Request<B>, polls: &SessionTaps) -> Self {
        let query = req.uri().query();
        let upgrade = upgrade_sid(query).map(str::to_owned);
        let poll = if req.method() == hyper::Method::GET {
            poll_sid(query).and_then(|sid| polls.get(sid)).map(PollCount::new)
        } else {
            None
        };
        SocketRequest { upgrade, poll }
    }

    /// The request was answered with `status` on `tap`'s connection: only an upgrade
    /// Engine.IO accepted (one per connection) is attached; a poll's body is counted as it
    /// leaves.
    pub fn answered(
        self,
        status: hyper::StatusCode,
        body: axum::body::Body,
        io: &SocketIo,
        upgrades: &SessionTaps,
        tap: &Tap,
    ) -> CountedAnswer {
        if let Some(sid) = self.upgrade
            && status == hyper::StatusCode::SWITCHING_PROTOCOLS
        {
            attach_upgrade(io, upgrades, &sid, tap);
        }
        CountedAnswer::new(body, self.poll)
    }
}

/// Session `sid` upgraded to WebSocket on `tap`'s connection: its socket's bytes are
/// counted there from now on, or from its CONNECT when that has not come yet (`upgrades`
/// keeps the tap until then).
pub fn attach_upgrade(io: &SocketIo, upgrades: &SessionTaps, sid: &str, tap: &Tap) {
    let socket = sid.parse::<Sid>().ok().and_then(|sid| io.get_socket(sid));
    match socket.as_ref().and_then(super::account) {
        Some(account) => account.attach(tap),
        None => upgrades.remember(sid, tap),
    }
}

/// A request that is not under `/socket.io`, or not on the public listener: nothing to count.
pub fn passthrough(body: axum::body::Body) -> CountedAnswer {
    CountedAnswer::new(body, None)
}
