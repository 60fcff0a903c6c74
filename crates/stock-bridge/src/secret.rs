//! A string that never prints itself: API keys, JWT secrets, tokens.

use std::fmt;

/// Holds a secret; `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for comparing or sending; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Compares in constant time (for equal lengths) so timing tells nothing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == candidate.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn never_prints_and_compares_exactly() {
        let s = Secret::new("top-secret-value");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert!(s.matches(b"top-secret-value"));
        assert!(!s.matches(b"top-secret-valuX"));
        assert!(!s.matches(b"top"));
    }
}
