//! Who may call the back-office routes, decided here once, as extractors:
//! - [`Source`]: the address a request is from (`X-Forwarded-For` from trusted proxies
//!   only), refused 403 when `STOCK_BRIDGE_ALLOW_SOURCES` does not hold it;
//! - [`BackOffice`]: the API key (`Authorization: Bearer` or `X-API-Key`, compared in
//!   constant time), or a verified client certificate where `STOCK_BRIDGE_ADMIN_AUTH=mtls`
//!   says that is enough; refused 401. With no key configured anyone passes (the bridge
//!   then listens on loopback only, or was told `--insecure-no-auth`).
//!
//! Handlers take them as `Result<_, ApiError>` where a refusal must be counted or a second
//! way in tried (a client token on `GET /snapshot`).

use super::error::ApiError;
use crate::config::{AdminConfig, BridgeConfig};
use crate::source_addr::source_ip;
use crate::state::Bridge;
use crate::tls::VerifiedClient;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The address a request is from, allowed by `STOCK_BRIDGE_ALLOW_SOURCES` (None when it
/// cannot be told: an in-process caller, or a forwarded entry that is not an address,
/// which an allow-list refuses).
#[derive(Debug, Clone, Copy)]
pub struct Source(pub Option<IpAddr>);

impl FromRequestParts<Arc<Bridge>> for Source {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, bridge: &Arc<Bridge>) -> Result<Self, ApiError> {
        let config = &bridge.config;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .and_then(|c| source_ip(c.0.ip(), &parts.headers, &config.trusted_proxies));
        if !config.allow_sources.is_empty()
            && !peer.is_some_and(|ip| config.allow_sources.iter().any(|net| net.contains(&ip)))
        {
            return Err(ApiError::Forbidden);
        }
        Ok(Source(peer))
    }
}

/// A caller that presented the API key, or a certificate that suffices (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct BackOffice;

impl FromRequestParts<Arc<Bridge>> for BackOffice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, bridge: &Arc<Bridge>) -> Result<Self, ApiError> {
        let config = &bridge.config;
        match &config.api_key {
            None => Ok(BackOffice),
            Some(_) if certificate_suffices(config, &parts.extensions) => Ok(BackOffice),
            Some(key) if presented_key(&parts.headers).is_some_and(|k| key.matches(k)) => Ok(BackOffice),
            Some(_) => Err(ApiError::Unauthorized),
        }
    }
}

/// True when the request came with a verified client certificate over the back-office
/// listener and `STOCK_BRIDGE_ADMIN_AUTH=mtls` says that is enough without the key.
fn certificate_suffices(config: &BridgeConfig, extensions: &axum::http::Extensions) -> bool {
    config.admin.as_ref().is_some_and(AdminConfig::certificate_suffices) && extensions.get::<VerifiedClient>().is_some()
}

/// The key from `X-API-Key: <key>` or `Authorization: Bearer <key>`.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    match headers.get("x-api-key") {
        Some(v) => Some(v.as_bytes()),
        None => bearer(headers),
    }
}

/// The credentials of `Authorization: Bearer <credentials>` (scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let auth = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at(auth.iter().position(|b| *b == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_key_is_read_from_either_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bEaReR  k1 "));
        assert_eq!(presented_key(&headers), Some(&b"k1"[..]));
        headers.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(presented_key(&headers), Some(&b"k2"[..]), "X-API-Key first");
        headers.remove("x-api-key");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic k1"));
        assert_eq!(presented_key(&headers), None);
    }
}
