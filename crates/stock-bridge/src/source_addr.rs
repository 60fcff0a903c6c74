//! Which address a request comes from: the TCP peer, or, when that peer is one of our
//! reverse proxies (`STOCK_BRIDGE_TRUSTED_PROXIES`), the address the proxy says it
//! forwarded for (`X-Forwarded-For`). From anyone else the header is ignored, so a client
//! cannot pass the allow-list or dodge a rate limit by writing it.
//!
//! The list is read from the right (the entry the nearest proxy added) and the first
//! address that is not itself a trusted proxy is the source. An entry that is not an
//! address, met before that, leaves the source unknown (`None`): the caller fails closed
//! (an allow-list refuses it) rather than taking the proxy itself for the source.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// See the module docs: `None` when a trusted proxy forwarded for something that is not
/// an address.
pub fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let mut source = peer;
    // Several headers are one list, in order. Read lossily: a header holding one byte that
    // is not ASCII (nginx passes it through) was dropped whole, which made the trusted
    // proxy itself the source (issue 22, F10); now only the bad entry is unreadable.
    let values: Vec<String> =
        headers.get_all(FORWARDED_FOR).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let hops: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        source = parse_hop(hop)?;
        if !trusted(&source) {
            return Some(source);
        }
    }
    Some(source)
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:51000`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let h = headers(&["203.0.113.7"]);
        assert_eq!(source_ip(ip("198.51.100.1"), &h, &proxies), Some(ip("198.51.100.1")), "untrusted peer");
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("203.0.113.7")));
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &[]), Some(ip("10.0.0.2")), "no proxies configured");
        assert_eq!(source_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies), Some(ip("10.0.0.2")), "no header");
    }

    #[test]
    fn a_client_cannot_prepend_its_way_in() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        // The client wrote "10.9.9.9" itself; the proxy appended the real address.
        let h = headers(&["10.9.9.9, 203.0.113.7"]);
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("203.0.113.7")));
        // Two proxies of ours in a row, then the client.
        let h = headers(&["203.0.113.7, 10.0.0.3", "10.0.0.4"]);
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("203.0.113.7")));
        // Garbage before the first untrusted entry: the source is unknown, not a proxy.
        let h = headers(&["203.0.113.7, unknown, 10.0.0.3"]);
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), None);
        let h = headers(&["unknown, 203.0.113.7"]);
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("203.0.113.7")), "garbage the client wrote");
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("2001:db8::1")));
    }

    #[test]
    fn a_byte_that_is_not_ascii_does_not_hide_the_real_source() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append(FORWARDED_FOR, axum::http::HeaderValue::from_bytes(b"\xff, 203.0.113.7").unwrap());
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), Some(ip("203.0.113.7")), "not the proxy");
        let mut h = HeaderMap::new();
        h.append(FORWARDED_FOR, axum::http::HeaderValue::from_bytes(b"203.0.113.7, \xff").unwrap());
        assert_eq!(source_ip(ip("10.0.0.2"), &h, &proxies), None, "fails closed, not the proxy");
    }
}
