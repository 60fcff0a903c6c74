//! [`CommandError`]: what a command's failure looks like to the page, `{kind, message}`,
//! so the page matches on `kind` and shows `message`.
//!
//! [`ErrorKind`] is the contract: the page's `ERROR_TEXT` (in `ui/app.js`) names every
//! kind, and a test here fails when the two lists differ.

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
    MissingInput,
    InvalidSettings,
    NotLoggedIn,
    Storage,
    /// A newer page has subscribed: this one's updates go there.
    Superseded,
}

impl ErrorKind {
    /// Every kind, for the contract test.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::WrongCredentials,
        ErrorKind::Unreachable,
        ErrorKind::ServerError,
        ErrorKind::UnexpectedAnswer,
        ErrorKind::InvalidUrl,
        ErrorKind::MissingInput,
        ErrorKind::InvalidSettings,
        ErrorKind::NotLoggedIn,
        ErrorKind::Storage,
        ErrorKind::Superseded,
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
    use std::collections::BTreeSet;

    /// The keys of `const ERROR_TEXT = { ... };` in the page's source.
    fn page_kinds() -> BTreeSet<String> {
        let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/app.js")).unwrap();
        let start = page.find("const ERROR_TEXT = {").expect("the page has its ERROR_TEXT table");
        let body = &page[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
        body.lines()
            .filter_map(|line| {
                let key = line.trim().split(':').next()?.trim();
                (!key.is_empty() && !key.starts_with("//")).then(|| key.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_page_knows_every_error_kind_and_no_other() {
        let ours: BTreeSet<String> =
            ErrorKind::ALL.iter().map(|k| serde_json::to_value(k).unwrap().as_str().unwrap().to_owned()).collect();
        assert_eq!(page_kinds(), ours, "ui/app.js ERROR_TEXT and ErrorKind differ");
    }

    #[test]
    fn a_command_error_is_kind_and_message() {
        let e = CommandError::new(ErrorKind::NotLoggedIn, "sign in first");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "not_logged_in", "message": "sign in first"})
        );
    }
}
