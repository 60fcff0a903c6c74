//! [`CommandError`]: what a command's failure looks like to the page, `{kind, message}`,
//! so the page matches on `kind` and shows `message`.

use crate::outlet::PullError;
use serde::Serialize;
use stock_client::LoginError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Stable: `wrong_credentials`, `unreachable`, `server_error`, `unexpected_answer`,
    /// `invalid_url`, `missing_input`, `invalid_settings`, `not_logged_in`, `storage`,
    /// `superseded`.
    pub kind: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        CommandError { kind, message: message.into() }
    }
}

impl From<LoginError> for CommandError {
    fn from(e: LoginError) -> Self {
        CommandError::new(e.kind(), e.to_string())
    }
}

impl From<PullError> for CommandError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::Superseded => CommandError::new("superseded", e.to_string()),
        }
    }
}
