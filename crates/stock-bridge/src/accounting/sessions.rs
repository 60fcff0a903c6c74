//! Which session a connection's bytes belong to: [`SessionTaps`] keeps taps by Engine.IO
//! session id (a WebSocket upgrade that came before its socket's CONNECT, a long-polling
//! socket's own tap), and the few Engine.IO query parameters this is decided by.

use super::tap::{Tap, TapState};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

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

/// The session a request belongs to, read from its Engine.IO query
/// (`?EIO=4&transport=...&sid=...`).
fn query_sid(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("sid="))
}

/// The session of a long-polling socket upgrading to WebSocket (`?transport=websocket&sid=...`).
pub fn upgrade_sid(query: Option<&str>) -> Option<&str> {
    let query = query?;
    if !asks_for_websocket(Some(query)) {
        return None;
    }
    query_sid(query)
}

/// The session of a long-polling request (`?EIO=4&transport=polling&sid=...`).
pub fn poll_sid(query: Option<&str>) -> Option<&str> {
    let query = query?;
    if !query.split('&').any(|pair| pair == "transport=polling") {
        return None;
    }
    query_sid(query)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
