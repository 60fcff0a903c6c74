//! Client authentication at the Socket.IO handshake (`auth: {"token": ...}`).
//!
//! - `none`: everyone is let in, no one joins a per-user room.
//! - `jwt`: an HS256 JWT whose signature, `exp` and `sub` are checked; `sub` is the user.
//! - `introspect`: the bridge asks the Mediboy API (`GET <url>` with the bearer) who this
//!   is; answers are cached for a while so a reconnect storm does not hit the API.
//!
//! A refusal reaches the client as a CONNECT_ERROR whose message starts with
//! `unauthorized` (bad token: do not retry) or `auth unavailable` (try again later).
//!
//! The user service is protected from floods: a token that cannot be one (too long, or
//! with characters no HTTP header carries) is refused without asking; answers, refusals
//! included, are cached (refusals for [`REFUSAL_CACHE`]) under a digest of the token;
//! concurrent handshakes with the same token share one call; and at most
//! `introspect_concurrency` calls run at once.

use crate::config::ClientAuth;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stock_protocol::RefusalCode;
use stock_protocol::refusal::{EXPIRED_MESSAGE, UNAUTHORIZED_PREFIX, UNAVAILABLE_PREFIX};
use tokio::sync::{OnceCell, Semaphore};

/// Who a connected socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    Anonymous,
    User(String),
}

/// Why a connection was refused. The text is what the client sees; it starts with the
/// prefix [`stock_protocol::refusal`] gives its [`RefusalCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized(&'static str),
    /// The token was good but its `exp` has passed.
    Expired,
    Unavailable(&'static str),
}

impl Refusal {
    /// The stable code clients decide by.
    pub fn code(&self) -> RefusalCode {
        match self {
            Refusal::Unauthorized(_) => RefusalCode::Unauthorized,
            Refusal::Expired => RefusalCode::TokenExpired,
            Refusal::Unavailable(_) => RefusalCode::AuthUnavailable,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::Expired => "token_expired",
            Refusal::Unavailable(_) => "auth_unavailable",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unauthorized(why) => write!(f, "{UNAUTHORIZED_PREFIX}{why}"),
            Refusal::Expired => f.write_str(EXPIRED_MESSAGE),
            Refusal::Unavailable(why) => write!(f, "{UNAVAILABLE_PREFIX}{why}"),
        }
    }
}

type Verdict = Result<ClientIdentity, Refusal>;
type TokenDigest = [u8; 32];

/// Checks handshake tokens according to the configured [`ClientAuth`].
pub struct Verifier {
    mode: ClientAuth,
    http: reqwest::Client,
    /// Answers of the user service, until the instant given.
    cache: Mutex<HashMap<TokenDigest, (Verdict, Instant)>>,
    /// Calls in progress: handshakes with the same token wait for the same answer.
    in_flight: Mutex<HashMap<TokenDigest, Arc<OnceCell<Verdict>>>>,
    calls: Semaphore,
}

/// Tokens remembered by `introspect` at most.
const INTROSPECT_CACHE_MAX: usize = 10_000;
/// How long the user service's "no" (or its being down) is reused.
pub const REFUSAL_CACHE: Duration = Duration::from_secs(30);
const UNAVAILABLE_CACHE: Duration = Duration::from_secs(2);
/// Longest token looked at; longer ones are refused unread.
pub const TOKEN_MAX: usize = 8 * 1024;
/// How long a handshake waits for a free call to the user service.
const CALL_WAIT: Duration = Duration::from_secs(5);
/// Calls to the user service at once unless configured.
pub const DEFAULT_INTROSPECT_CONCURRENCY: usize = 16;

impl Verifier {
    pub fn new(mode: ClientAuth, concurrency: usize) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("static client configuration");
        Verifier {
            mode,
            http,
            cache: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            calls: Semaphore::new(concurrency.max(1)),
        }
    }

    /// True when tokens identify users (`jwt` or `introspect`).
    pub fn identifies_users(&self) -> bool {
        !matches!(self.mode, ClientAuth::None)
    }

    pub async fn verify(&self, token: Option<&str>) -> Result<ClientIdentity, Refusal> {
        if let Some(token) = token {
            if token.len() > TOKEN_MAX {
                return Err(Refusal::Unauthorized("the token is too long"));
            }
            if token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                return Err(Refusal::Unauthorized("the token contains characters no token has"));
            }
        }
        match &self.mode {
            ClientAuth::None => Ok(ClientIdentity::Anonymous),
            ClientAuth::Jwt { secret } => {
                let token = token.ok_or(Refusal::Unauthorized("no token given"))?;
                verify_hs256(token, secret.expose().as_bytes(), chrono::Utc::now().timestamp())
                    .map(ClientIdentity::User)
            }
            ClientAuth::Introspect { url, cache_for } => {
                let token = token.ok_or(Refusal::Unauthorized("no token given"))?;
                self.introspect(url, *cache_for, token).await
            }
        }
    }

    async fn introspect(&self, url: &str, cache_for: Duration, token: &str) -> Result<ClientIdentity, Refusal> {
        use sha2::Digest;
        let digest: TokenDigest = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some((verdict, until)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&digest)
            && *until > now
        {
            return verdict.clone();
        }
        let cell = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).entry(digest).or_default().clone();
        let verdict = cell
            .get_or_init(|| async {
                let verdict = match tokio::time::timeout(CALL_WAIT, self.calls.acquire()).await {
                    Ok(Ok(_call)) => self.ask(url, token).await,
                    _ => Err(Refusal::Unavailable("the user service is busy")),
                };
                let keep = match &verdict {
                    Ok(_) => cache_for,
                    Err(Refusal::Unauthorized(_) | Refusal::Expired) => REFUSAL_CACHE,
                    Err(Refusal::Unavailable(_)) => UNAVAILABLE_CACHE,
                };
                self.remember(digest, verdict.clone(), Instant::now() + keep);
                verdict
            })
            .await
            .clone();
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest);
        verdict
    }

    fn remember(&self, digest: TokenDigest, verdict: Verdict, until: Instant) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= INTROSPECT_CACHE_MAX {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= INTROSPECT_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(digest, (verdict, until));
    }

    async fn ask(&self, url: &str, token: &str) -> Result<ClientIdentity, Refusal> {
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| Refusal::Unavailable("the user service could not be reached"))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Refusal::Unauthorized("the user service does not know this token"));
        }
        if !status.is_success() {
            return Err(Refusal::Unavailable("the user service answered with an error"));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| Refusal::Unavailable("the user service answered something that is not JSON"))?;
        let id = user_id(&body).ok_or(Refusal::Unauthorized("the user service named no user id"))?;
        Ok(ClientIdentity::User(id))
    }
}

/// The user id in `{"id":..}`, `{"data":{"id":..}}`, `{"user":{"id":..}}` or `{"data":{"user":{"id":..}}}`.
fn user_id(body: &Value) -> Option<String> {
    let candidates = [&body["id"], &body["data"]["id"], &body["user"]["id"], &body["data"]["user"]["id"]];
    candidates.into_iter().find_map(stock_protocol::text::user_id)
}

/// Verifies an HS256 JWT and returns its `sub`.
pub fn verify_hs256(token: &str, secret: &[u8], now: i64) -> Result<String, Refusal> {
    const BAD: Refusal = Refusal::Unauthorized("the token is not a valid JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| BAD)?).map_err(|_| BAD)?;
    if header["alg"] != "HS256" {
        return Err(Refusal::Unauthorized("the token is not signed with HS256"));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| BAD)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| BAD)?;
    mac.update(&token.as_bytes()[..header_and_payload_len(token)]);
    mac.verify_slice(&signature).map_err(|_| Refusal::Unauthorized("the token signature is wrong"))?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| BAD)?).map_err(|_| BAD)?;
    if let Some(exp) = claims.get("exp") {
        match exp.as_i64() {
            Some(exp) if exp > now => {}
            _ => return Err(Refusal::Expired),
        }
    }
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now) {
        return Err(Refusal::Unauthorized("the token is not valid yet"));
    }
    stock_protocol::text::user_id(&claims["sub"]).ok_or(Refusal::Unauthorized("the token names no subject"))
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

/// Signs `claims` as an HS256 JWT (used by tests and by `stock-bridge demo`).
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length works");
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef-secret";

    #[test]
    fn accepts_a_valid_token_and_reads_sub() {
        let t = sign_hs256(&json!({"sub": 42, "exp": 2000}), SECRET);
        assert_eq!(verify_hs256(&t, SECRET, 1000), Ok("42".into()));
        let t = sign_hs256(&json!({"sub": "u-7"}), SECRET);
        assert_eq!(verify_hs256(&t, SECRET, 1000), Ok("u-7".into()));
    }

    #[test]
    fn refuses_forged_expired_and_malformed_tokens() {
        let t = sign_hs256(&json!({"sub": 42, "exp": 2000}), SECRET);
        assert_eq!(
            verify_hs256(&t, b"another-secret-entirely", 1000),
            Err(Refusal::Unauthorized("the token signature is wrong"))
        );
        assert_eq!(verify_hs256(&t, SECRET, 2000), Err(Refusal::Expired));
        // Payload swapped for another user, signature kept.
        let forged_payload = URL_SAFE_NO_PAD.encode(json!({"sub": 1, "exp": 2000}).to_string());
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify_hs256(&forged, SECRET, 1000), Err(Refusal::Unauthorized("the token signature is wrong")));
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(verify_hs256(bad, SECRET, 1000).is_err(), "{bad}");
        }
        let none_alg = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), forged_payload);
        assert_eq!(
            verify_hs256(&none_alg, SECRET, 1000),
            Err(Refusal::Unauthorized("the token is not signed with HS256"))
        );
        let no_sub = sign_hs256(&json!({"exp": 2000}), SECRET);
        assert_eq!(verify_hs256(&no_sub, SECRET, 1000), Err(Refusal::Unauthorized("the token names no subject")));
    }

    #[test]
    fn every_refusal_reads_back_as_its_own_code() {
        for refusal in [Refusal::Unauthorized("x"), Refusal::Expired, Refusal::Unavailable("y")] {
            let read =
                stock_protocol::Refused::from_data(&serde_json::json!({"message": refusal.to_string()}).to_string());
            assert_eq!(read.code, Some(refusal.code()), "{refusal}");
            assert_eq!(serde_json::to_value(refusal.code()).unwrap(), refusal.label());
        }
    }

    #[test]
    fn finds_user_ids_in_the_documented_shapes() {
        assert_eq!(user_id(&json!({"id": 5})), Some("5".into()));
        assert_eq!(user_id(&json!({"data": {"id": "7"}})), Some("7".into()));
        assert_eq!(user_id(&json!({"data": {"user": {"id": 9}}})), Some("9".into()));
        assert_eq!(user_id(&json!({"name": "x"})), None);
    }
}
