//! Who may open a Socket.IO connection: [`ClientAuth`] (the configured way), the
//! [`Verifier`] that applies it at the handshake (`auth: {"token": ...}`) and to
//! `GET /snapshot`'s client tokens, and the [`Refusal`] a client is sent.
//!
//! # Layout
//! - This file: the modes, the verifier (introspection with its cache), refusals.
//! - [`jwt`]: JWT policies (HS256, RS256, ES256) with the `jsonwebtoken` crate.
//!
//! - `none`: everyone is let in, no one joins a per-user room.
//! - `jwt`: a JWT checked by [`super::jwt::JwtPolicy`] (HS256, RS256 or ES256; `exp`
//!   required); `sub` is the user.
//! - `introspect`: the bridge asks the Mediboy API (`GET <url>` with the bearer) who this
//!   is; answers are cached for a while so a reconnect storm does not hit the API.
//!
//! A refusal reaches the client as a CONNECT_ERROR whose data carries its code
//! (`unauthorized`, `token_expired`: sign in again; `auth_unavailable`: try again later).
//!
//! The user service is protected from floods: a token that cannot be one (too long, or
//! with characters no HTTP header carries) is refused without asking; answers, refusals
//! included, are cached (refusals for [`REFUSAL_CACHE`]) under a digest of the token;
//! concurrent handshakes with the same token share one call; and at most
//! `introspect_concurrency` calls run at once.

pub mod jwt;

use jwt::{JwtKeyError, JwtPolicy, JwtRules};
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

    /// Its code as written on the wire (the metric label too).
    pub fn label(&self) -> &'static str {
        self.code().as_str()
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

/// A [`Refusal`] as socketioxide sends it: its `Display` is the CONNECT_ERROR body, a
/// [`stock_protocol::ConnectErrorBody`] in JSON (sent as is thanks to the patched parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRefusal(pub Refusal);

impl fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = stock_protocol::ConnectErrorBody::new(self.0.code(), self.0.to_string());
        f.write_str(&serde_json::to_string(&body).map_err(|_| fmt::Error)?)
    }
}

/// Who may open a Socket.IO connection, and how their user id is learned.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// Anyone may connect; no one joins a per-user room.
    #[default]
    None,
    /// A JWT in `auth.token` whose `sub` is the user id (see [`JwtPolicy`]).
    Jwt(Box<JwtPolicy>),
    /// The bridge asks the Mediboy API who the bearer is.
    Introspect { url: String, cache_for: Duration },
}

impl ClientAuth {
    /// HS256 with `secret` and the default rules (the demo, tests).
    pub fn jwt_hs256(secret: &str) -> Result<Self, JwtKeyError> {
        JwtPolicy::hs256(secret.as_bytes(), &JwtRules { leeway: jwt::DEFAULT_LEEWAY, ..JwtRules::default() })
            .map(|p| ClientAuth::Jwt(Box::new(p)))
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
        self.verify_until(token).await.map(|(identity, _)| identity)
    }

    /// [`Self::verify`], and until when the token is good, when it says (a JWT's `exp`
    /// plus the leeway): a socket is closed then, so a reconnect is refused `token_expired`.
    pub async fn verify_until(
        &self,
        token: Option<&str>,
    ) -> Result<(ClientIdentity, Option<std::time::SystemTime>), Refusal> {
        if let Some(token) = token {
            if token.len() > TOKEN_MAX {
                return Err(Refusal::Unauthorized("the token is too long"));
            }
            if token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                return Err(Refusal::Unauthorized("the token contains characters no token has"));
            }
        }
        match &self.mode {
            ClientAuth::None => Ok((ClientIdentity::Anonymous, None)),
            ClientAuth::Jwt(policy) => {
                let token = token.ok_or(Refusal::Unauthorized("no token given"))?;
                let subject = policy.verify_subject(token)?;
                Ok((ClientIdentity::User(subject.user), Some(subject.valid_until)))
            }
            ClientAuth::Introspect { url, cache_for } => {
                let token = token.ok_or(Refusal::Unauthorized("no token given"))?;
                Ok((self.introspect(url, *cache_for, token).await?, None))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_refusal_reads_back_as_its_own_code() {
        for refusal in [Refusal::Unauthorized("x"), Refusal::Expired, Refusal::Unavailable("y")] {
            // Old servers' shape (message only): by the exact prefix.
            let read =
                stock_protocol::Refused::from_data(&serde_json::json!({"message": refusal.to_string()}).to_string());
            assert_eq!(read.code, Some(refusal.code()), "{refusal}");
            assert_eq!(serde_json::to_value(refusal.code()).unwrap(), refusal.label());
            // What the bridge sends: by the code, message unchanged.
            let sent = ConnectRefusal(refusal.clone()).to_string();
            let read = stock_protocol::Refused::from_data(&sent);
            assert_eq!((read.code, read.message), (Some(refusal.code()), refusal.to_string()), "{sent}");
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
