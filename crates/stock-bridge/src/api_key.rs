//! The back office's API key: kept as a `secrecy::SecretString` (never printed by `Debug`,
//! zeroized when dropped) and compared without telling anything through timing — both
//! the key and the presented value are hashed (SHA-256) and the fixed-size digests
//! compared in constant time, so neither the key's length nor a matching prefix shows.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// See the module docs.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(SecretString::from(key.into()))
    }

    /// Its length in characters (to refuse short keys at start).
    pub fn chars(&self) -> usize {
        self.0.expose_secret().chars().count()
    }

    /// True when both are the same key (a configuration check, not a request's).
    pub fn same_as(&self, other: &ApiKey) -> bool {
        self.matches(other.0.expose_secret().as_bytes())
    }

    /// True when `presented` is the key (see the module docs).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = Sha256::digest(self.0.expose_secret().as_bytes());
        let theirs = Sha256::digest(presented);
        ours.ct_eq(&theirs).into()
    }
}

impl From<SecretString> for ApiKey {
    fn from(key: SecretString) -> Self {
        ApiKey(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_matches_exactly() {
        let key = ApiKey::new("top-secret-value");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(key.matches(b"top-secret-value"));
        for wrong in [&b"top-secret-valuX"[..], b"top", b"", b"top-secret-value-and-more"] {
            assert!(!key.matches(wrong));
        }
        assert_eq!(key.chars(), 16);
    }
}
