//! Why the bridge refused a Socket.IO handshake, as both sides read it.
//!
//! A refusal is a CONNECT_ERROR whose body is a [`ConnectErrorBody`]:
//! `{"message": "...", "data": {"code": ..., "message": ...}}` — the shape the JavaScript
//! server writes for `next(err)` with `err.data`, so socket.io-client shows the code as
//! `err.data.code`. (socketioxide needs a small patch to send it:
//! `patches/socketioxide-parser-common/PATCH.md`.) The message always starts with a fixed
//! prefix so old clients keep working. Clients decide by [`RefusalCode`]: by the code when
//! present, else by the exact prefix — never by searching the text for words.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The bridge's stable reason for a refused handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The token is not one the bridge accepts: sign in again.
    Unauthorized,
    /// The token was good but has expired: sign in again.
    TokenExpired,
    /// The bridge could not check the token now (user service down, too many attempts):
    /// try again later.
    AuthUnavailable,
}

/// Prefix of every `unauthorized` and `token_expired` message.
pub const UNAUTHORIZED_PREFIX: &str = "unauthorized: ";
/// Prefix of every `auth_unavailable` message.
pub const UNAVAILABLE_PREFIX: &str = "auth unavailable: ";
/// The whole message of a `token_expired` refusal.
pub const EXPIRED_MESSAGE: &str = "unauthorized: the token has expired";

impl RefusalCode {
    /// The code as it is written on the wire (`unauthorized`, `token_expired`,
    /// `auth_unavailable`): metric labels and the state's reason use it too.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Unauthorized => "unauthorized",
            RefusalCode::TokenExpired => "token_expired",
            RefusalCode::AuthUnavailable => "auth_unavailable",
        }
    }

    /// True when retrying with the same credentials cannot help.
    pub fn is_final(self) -> bool {
        !matches!(self, RefusalCode::AuthUnavailable)
    }

    /// The message prefix this code is written with.
    pub fn prefix(self) -> &'static str {
        match self {
            RefusalCode::Unauthorized | RefusalCode::TokenExpired => UNAUTHORIZED_PREFIX,
            RefusalCode::AuthUnavailable => UNAVAILABLE_PREFIX,
        }
    }

    /// The code of a refusal message from a server that sends no code (exact prefixes).
    pub fn of_message(message: &str) -> Option<Self> {
        if message == EXPIRED_MESSAGE {
            Some(RefusalCode::TokenExpired)
        } else if message.starts_with(UNAUTHORIZED_PREFIX) {
            Some(RefusalCode::Unauthorized)
        } else if message.starts_with(UNAVAILABLE_PREFIX) {
            Some(RefusalCode::AuthUnavailable)
        } else {
            None
        }
    }
}

/// What the bridge writes in a CONNECT_ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectErrorBody {
    /// The text with its prefix (what every client shows).
    pub message: String,
    /// socket.io-client's `err.data`.
    pub data: RefusalData,
}

/// The structured part of a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalData {
    pub code: RefusalCode,
    pub message: String,
}

impl ConnectErrorBody {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        let message = message.into();
        ConnectErrorBody { data: RefusalData { code, message: message.clone() }, message }
    }
}

/// A CONNECT_ERROR as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// None when the server's refusal follows no known contract (it is then retried).
    pub code: Option<RefusalCode>,
    pub message: String,
}

impl Refused {
    /// Reads a CONNECT_ERROR's data: a [`ConnectErrorBody`], `{"code", "message"}`,
    /// `{"message"}`, a bare string, or anything else (kept as text).
    pub fn from_data(data: &str) -> Self {
        let (code, message) = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(o)) => {
                let message = o.get("message").and_then(Value::as_str).unwrap_or(data).to_owned();
                let code = o
                    .get("code")
                    .or_else(|| o.get("data")?.get("code"))
                    .cloned()
                    .and_then(|c| serde_json::from_value(c).ok());
                (code, message)
            }
            Ok(Value::String(s)) => (None, s),
            _ => (None, data.to_owned()),
        };
        let code = code.or_else(|| RefusalCode::of_message(&message));
        Refused { code, message }
    }

    /// True when retrying with the same credentials cannot help.
    pub fn is_final(&self) -> bool {
        self.code.is_some_and(RefusalCode::is_final)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_the_code_field_first_then_the_exact_prefix() {
        let coded = Refused::from_data(r#"{"code":"token_expired","message":"whatever"}"#);
        assert_eq!(coded.code, Some(RefusalCode::TokenExpired));
        assert_eq!(coded.message, "whatever");
        let r = Refused::from_data(r#"{"message":"unauthorized: the token signature is wrong"}"#);
        assert_eq!(r.code, Some(RefusalCode::Unauthorized));
        assert!(r.is_final());
        assert_eq!(
            Refused::from_data(&format!(r#"{{"message":"{EXPIRED_MESSAGE}"}}"#)).code,
            Some(RefusalCode::TokenExpired)
        );
    }

    #[test]
    fn what_the_bridge_writes_reads_back_as_its_code() {
        for code in [RefusalCode::Unauthorized, RefusalCode::TokenExpired, RefusalCode::AuthUnavailable] {
            let body = ConnectErrorBody::new(code, format!("{}the reason", code.prefix()));
            let wire = serde_json::to_string(&body).unwrap();
            let read = Refused::from_data(&wire);
            assert_eq!((read.code, read.message.as_str()), (Some(code), body.message.as_str()), "{wire}");
        }
        // A code the message's prefix would contradict: the code wins.
        let body = ConnectErrorBody::new(RefusalCode::AuthUnavailable, "unauthorized: looks final but is not");
        assert!(!Refused::from_data(&serde_json::to_string(&body).unwrap()).is_final());
    }

    #[test]
    fn a_retryable_message_that_mentions_a_token_is_not_final() {
        for data in [
            r#"{"message":"auth unavailable: the token service is down"}"#,
            r#"{"message":"invalid token bucket state, try again"}"#,
            r#""jwt verifier restarting""#,
            "garbage with the word unauthorized inside",
        ] {
            assert!(!Refused::from_data(data).is_final(), "{data}");
        }
    }

    #[test]
    fn the_wire_names_of_the_codes_are_stable() {
        let names: Vec<String> = [RefusalCode::Unauthorized, RefusalCode::TokenExpired, RefusalCode::AuthUnavailable]
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        assert_eq!(names, [r#""unauthorized""#, r#""token_expired""#, r#""auth_unavailable""#]);
        for code in [RefusalCode::Unauthorized, RefusalCode::TokenExpired, RefusalCode::AuthUnavailable] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str()),
                "as_str is the wire name"
            );
        }
    }
}
