//! The connection state shown to the operator: exactly three words.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where the live feed stands. [`fmt::Display`] gives the exact words the UI shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionState {
    #[serde(rename = "socket connected")]
    Connected,
    #[serde(rename = "socket connecting")]
    Connecting,
    #[serde(rename = "socket offline")]
    Offline,
}

impl ConnectionState {
    /// The words shown in the banner.
    pub const fn words(self) -> &'static str {
        match self {
            ConnectionState::Connected => "socket connected",
            ConnectionState::Connecting => "socket connecting",
            ConnectionState::Offline => "socket offline",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_banner_words() {
        for s in [ConnectionState::Connected, ConnectionState::Connecting, ConnectionState::Offline] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::from(s.words()));
            assert_eq!(s.to_string(), s.words());
        }
        assert_eq!(ConnectionState::Offline.words(), "socket offline");
    }
}
