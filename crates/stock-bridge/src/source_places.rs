//! Who may take one of the back-office listener's places, decided at accept.
//!
//! The back office's 256 places were taken before any certificate or key was checked:
//! 300 idle TCP connections locked the back office out until the handshake timeout
//! (issue 22, F9). Now, before a connection costs anything:
//! - with `STOCK_BRIDGE_ALLOW_SOURCES`, a peer outside it (and not one of
//!   `STOCK_BRIDGE_TRUSTED_PROXIES`, whose requests are checked by their
//!   `X-Forwarded-For` later) is closed at once;
//! - one source address holds at most [`ADMIN_PLACES_PER_SOURCE`] connections (a
//!   trusted proxy, which carries everyone's, only the listener's cap);
//! - the TLS handshake and the first request have [`ADMIN_HANDSHAKE_TIMEOUT`] at most.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Back-office connections one source address may hold open at once.
pub const ADMIN_PLACES_PER_SOURCE: usize = 32;

/// Longest a back-office connection may take for its TLS handshake, and again for its
/// first byte (a back office on the LAN needs milliseconds).
pub const ADMIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceRefusal {
    #[error("not in STOCK_BRIDGE_ALLOW_SOURCES")]
    NotAllowed,
    #[error("this address already holds {ADMIN_PLACES_PER_SOURCE} back-office connections")]
    TooMany,
}

impl SourceRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            SourceRefusal::NotAllowed => "source_not_allowed",
            SourceRefusal::TooMany => "source_over_capacity",
        }
    }
}

/// The open back-office connections per source address.
#[derive(Debug, Default)]
pub struct SourcePlaces {
    allow: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A source's place, given back when dropped.
#[derive(Debug)]
pub struct SourcePlace {
    ip: Option<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl SourcePlaces {
    pub fn new(allow: &[IpNet], trusted_proxies: &[IpNet]) -> Self {
        SourcePlaces { allow: allow.to_vec(), trusted_proxies: trusted_proxies.to_vec(), open: Arc::default() }
    }

    /// A place for a connection from `peer`, or why there is none.
    pub fn admit(&self, peer: IpAddr) -> Result<SourcePlace, SourceRefusal> {
        let within = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&peer));
        if within(&self.trusted_proxies) {
            return Ok(SourcePlace { ip: None, open: self.open.clone() });
        }
        if !self.allow.is_empty() && !within(&self.allow) {
            return Err(SourceRefusal::NotAllowed);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= ADMIN_PLACES_PER_SOURCE {
            return Err(SourceRefusal::TooMany);
        }
        *count += 1;
        Ok(SourcePlace { ip: Some(peer), open: self.open.clone() })
    }

    /// Source addresses holding a connection now.
    pub fn sources(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for SourcePlace {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn places_are_counted_per_source_and_given_back() {
        let places = SourcePlaces::new(&[], &["10.0.0.1/32".parse().unwrap()]);
        let held: Vec<_> = (0..ADMIN_PLACES_PER_SOURCE).map(|_| places.admit(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(places.admit(ip("192.0.2.1")).unwrap_err(), SourceRefusal::TooMany);
        let other = places.admit(ip("192.0.2.2")).expect("another source is not affected");
        let proxied: Vec<_> = (0..100).map(|_| places.admit(ip("10.0.0.1")).unwrap()).collect();
        drop(held);
        assert_eq!(places.sources(), 1, "given back, and forgotten at zero");
        assert!(places.admit(ip("192.0.2.1")).is_ok());
        drop((other, proxied));
    }

    #[test]
    fn an_allow_list_refuses_others_but_not_a_trusted_proxy() {
        let places = SourcePlaces::new(&["203.0.113.0/24".parse().unwrap()], &["10.0.0.1/32".parse().unwrap()]);
        assert_eq!(places.admit(ip("198.51.100.9")).unwrap_err(), SourceRefusal::NotAllowed);
        assert!(places.admit(ip("203.0.113.7")).is_ok());
        assert!(places.admit(ip("10.0.0.1")).is_ok(), "its requests are checked by X-Forwarded-For");
    }
}
