//! [`CommandError`]: what a command's failure looks like to the page, `{kind, message}`,
//! so the page matches on `kind` and shows `message`.
//!
//! [`ErrorKind`] is the contract: `ErrorKind::ALL` goes into the page samples
//! (`crate::page`'s test), and the browser tests fail when the page's `ERROR_TEXT`
//! (`ui/errors.js`) names another list.

use crate::outlet::PullError;
use serde::Serialize;
use stock_client::LoginError;

/// What went wrong, as the page matches it (serialized in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    WrongCredentials,
    Unreachable,
    ServerError,
    UnexpectedAnswer,
    InvalidUrl,
    /// The server's TLS certificate is not trusted (the message names the host and why).
    UntrustedCertificate,
    MissingInput,
    InvalidSettings,
    NotLoggedIn,
    Storage,
    /// "Remember me" was asked for where no credential store answers.
    RememberUnavailable,
    /// A newer page has subscribed: this one's updates go there.
    Superseded,
    /// An update action while no update address is set.
    UpdatesOff,
}

impl ErrorKind {
    /// Every kind, for the contract test.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::WrongCredentials,
        ErrorKind::Unreachable,
        ErrorKind::ServerError,
        ErrorKind::UnexpectedAnswer,
        ErrorKind::InvalidUrl,
        ErrorKind::UntrustedCertificate,
        ErrorKind::MissingInput,
        ErrorKind::InvalidSettings,
        ErrorKind::NotLoggedIn,
        ErrorKind::Storage,
        ErrorKind::RememberUnavailable,
        ErrorKind::Superseded,
        ErrorKind::UpdatesOff,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError { kind, message: message.into() }
    }
}

impl From<LoginError> for CommandError {
    fn from(e: LoginError) -> Self {
        let kind = match &e {
            LoginError::WrongCredentials { .. } => ErrorKind::WrongCredentials,
            LoginError::Unreachable { .. } => ErrorKind::Unreachable,
            LoginError::ServerError { .. } => ErrorKind::ServerError,
            LoginError::UnexpectedAnswer { .. } => ErrorKind::UnexpectedAnswer,
            LoginError::InvalidUrl { .. } => ErrorKind::InvalidUrl,
            LoginError::MissingInput(_) => ErrorKind::MissingInput,
            LoginError::UntrustedCertificate { .. } => ErrorKind::UntrustedCertificate,
        };
        CommandError::new(kind, e.to_string())
    }
}

impl From<PullError> for CommandError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::Superseded => CommandError::new(ErrorKind::Superseded, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_error_is_kind_and_message() {
        let e = CommandError::new(ErrorKind::NotLoggedIn, "sign in first");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "not_logged_in", "message": "sign in first"})
        );
    }
}
