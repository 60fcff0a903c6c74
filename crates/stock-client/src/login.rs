//! Login against the Mediboy REST API (`POST {base}/login`).
//!
//! The answer's token may sit at `token`, `access_token`, `data.token` or
//! `data.access_token`; the user at `user` or `data.user`. Wrong credentials (401/422),
//! an unreachable server, and an unexpected answer are distinct [`LoginError`]s. Every
//! request has a timeout; the password is never logged or echoed in an error.

use crate::trust::Trust;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Path appended to the base URL unless configured otherwise.
pub const DEFAULT_LOGIN_PATH: &str = "/login";
/// Whole-request timeout for a login.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A bearer token: a `secrecy::SecretString` (never printed by `Debug`, zeroized when
/// dropped); `expose_secret()` only to send it.
pub type Token = SecretString;

/// The logged-in user, as the API described them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The id as text (the API may send a number or a string).
    pub id: String,
    pub name: Option<String>,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: Token,
    pub user: Option<User>,
}

/// Why a login failed. `kind()` gives a stable name a UI can match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("wrong email or password{}", server_says(.message))]
    WrongCredentials { message: Option<String> },
    #[error("the server could not be reached: {reason}")]
    Unreachable { reason: String },
    #[error("the server answered {status}{}", server_says(.message))]
    ServerError { status: u16, message: Option<String> },
    #[error("the server's answer was not understood: {reason}")]
    UnexpectedAnswer { reason: String },
    #[error("invalid API address {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{0}")]
    MissingInput(&'static str),
    /// The server's TLS certificate is not trusted (`text` names the host and why).
    #[error("{text}")]
    UntrustedCertificate { text: String },
}

fn server_says(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

impl LoginError {
    /// A stable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            LoginError::WrongCredentials { .. } => "wrong_credentials",
            LoginError::Unreachable { .. } => "unreachable",
            LoginError::ServerError { .. } => "server_error",
            LoginError::UnexpectedAnswer { .. } => "unexpected_answer",
            LoginError::InvalidUrl { .. } => "invalid_url",
            LoginError::MissingInput(_) => "missing_input",
            LoginError::UntrustedCertificate { .. } => "untrusted_certificate",
        }
    }
}

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct LoginTarget {
    pub base_url: String,
    pub path: String,
    pub timeout: Duration,
    /// Which servers are trusted over https.
    pub trust: Trust,
}

impl LoginTarget {
    pub fn new(base_url: impl Into<String>) -> Self {
        LoginTarget {
            base_url: base_url.into(),
            path: DEFAULT_LOGIN_PATH.into(),
            timeout: DEFAULT_LOGIN_TIMEOUT,
            trust: Trust::system(),
        }
    }

    /// The full login URL, checked.
    pub fn url(&self) -> Result<reqwest::Url, LoginError> {
        let joined = format!("{}/{}", self.base_url.trim_end_matches('/'), self.path.trim_start_matches('/'));
        let url = reqwest::Url::parse(&joined)
            .map_err(|e| LoginError::InvalidUrl { url: self.base_url.clone(), reason: e.to_string() })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LoginError::InvalidUrl {
                url: self.base_url.clone(),
                reason: "must start with http:// or https://".into(),
            });
        }
        Ok(url)
    }
}

/// Logs in with `email` and `password`.
pub async fn login(target: &LoginTarget, email: &str, password: &str) -> Result<Session, LoginError> {
    if email.trim().is_empty() {
        return Err(LoginError::MissingInput("enter your email address"));
    }
    if password.is_empty() {
        return Err(LoginError::MissingInput("enter your password"));
    }
    let url = target.url()?;
    let client = target
        .trust
        .http_client()
        .timeout(target.timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(target.timeout))
        .build()
        .map_err(|e| LoginError::Unreachable { reason: e.to_string() })?;
    tracing::info!(url = %url, email, "logging in");
    let response = client
        .post(url.clone())
        .header("accept", "application/json")
        .json(&json!({"email": email.trim(), "password": password}))
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Err(unreachable(url.as_str(), &target.trust, e, target.timeout).await),
        Err(e) => return Err(LoginError::Unreachable { reason: describe(e, target.timeout) }),
    };
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| LoginError::Unreachable { reason: describe(e, target.timeout) })?;
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let message = json.as_ref().and_then(|v| v["message"].as_str()).map(|m| stock_protocol::text::truncate(m, 200));
    match status {
        200..=299 => {
            let json = json.ok_or_else(|| LoginError::UnexpectedAnswer { reason: "the body is not JSON".into() })?;
            session_from(&json)
        }
        401 | 422 => Err(LoginError::WrongCredentials { message }),
        _ => Err(LoginError::ServerError { status, message }),
    }
}

/// Reads the token and user from a 2xx login answer.
pub fn session_from(json: &Value) -> Result<Session, LoginError> {
    let token = [&json["token"], &json["access_token"], &json["data"]["token"], &json["data"]["access_token"]]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
        .ok_or_else(|| LoginError::UnexpectedAnswer {
            reason: "no token at token, access_token, data.token or data.access_token".into(),
        })?;
    let user = [&json["user"], &json["data"]["user"]].into_iter().find_map(|u| {
        let id = stock_protocol::text::user_id(&u["id"])?;
        Some(User { id, name: u["name"].as_str().map(str::to_owned) })
    });
    Ok(Session { token: SecretString::from(token), user })
}

/// A connection that failed: named by its cause (a certificate gets its own kind).
async fn unreachable(url: &str, trust: &Trust, e: reqwest::Error, timeout: Duration) -> LoginError {
    match crate::trust::why_unreachable(url, trust).await {
        Some(why @ crate::trust::Unreachable::Certificate { .. }) => {
            LoginError::UntrustedCertificate { text: why.to_string() }
        }
        Some(why) => LoginError::Unreachable { reason: why.to_string() },
        None => LoginError::Unreachable { reason: describe(e, timeout) },
    }
}

fn describe(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "connection refused or host not found".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_token_and_user_in_every_documented_shape() {
        for body in [
            json!({"token": "t", "user": {"id": 7, "name": "Ann"}}),
            json!({"access_token": "t", "user": {"id": "7", "name": "Ann"}}),
            json!({"data": {"token": "t", "user": {"id": 7, "name": "Ann"}}}),
            json!({"data": {"access_token": "t", "user": {"id": 7, "name": "Ann"}}}),
        ] {
            let s = session_from(&body).unwrap();
            assert_eq!(secrecy::ExposeSecret::expose_secret(&s.token), "t");
            assert_eq!(s.user, Some(User { id: "7".into(), name: Some("Ann".into()) }), "{body}");
        }
        assert!(matches!(session_from(&json!({"user": {"id": 1}})), Err(LoginError::UnexpectedAnswer { .. })));
        assert_eq!(session_from(&json!({"token": "t"})).unwrap().user, None);
    }

    #[test]
    fn token_debug_hides_the_secret() {
        assert!(!format!("{:?}", SecretString::from("abc")).contains("abc"));
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(LoginTarget::new("http://h:1/api/").url().unwrap().as_str(), "http://h:1/api/login");
        assert!(matches!(LoginTarget::new("ftp://h").url(), Err(LoginError::InvalidUrl { .. })));
        assert!(matches!(LoginTarget::new("not a url").url(), Err(LoginError::InvalidUrl { .. })));
    }
}
