//! JWT verification for `--client-auth jwt`, with the `jsonwebtoken` crate.
//!
//! [`JwtPolicy`] holds the key and the rules, built once from the configuration:
//! - HS256 with a shared secret (`STOCK_BRIDGE_JWT_SECRET`), or RS256 / ES256 with a
//!   public key (`STOCK_BRIDGE_JWT_PUBLIC_KEY`, a PEM file; Laravel Passport's
//!   `oauth-public.key` is RS256). Exactly that algorithm is accepted: a token whose
//!   header names another (`none`, or HS256 signed with the public key's bytes) is refused.
//! - `exp` is required and must be an integer; `nbf`, when present, must be an integer and
//!   is honoured; both with a leeway (`STOCK_BRIDGE_JWT_LEEWAY_SECS`, default 60).
//! - Optional issuer and audience (`STOCK_BRIDGE_JWT_ISSUER`, `STOCK_BRIDGE_JWT_AUDIENCE`).
//! - `sub` is the user: a non-empty string or an integer (not `42.0`, not an object).
//! - Tokens over [`super::TOKEN_MAX`] are refused before this is called.

use super::Refusal;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// How much clock difference between the token's issuer and the bridge is forgiven.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The checks besides the signature.
#[derive(Debug, Clone, Default)]
pub struct JwtRules {
    pub leeway: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error("the JWT secret must be at least {min} characters long")]
    SecretTooShort { min: usize },
    #[error("not a PEM RSA or EC (P-256) public key: {0}")]
    NotAPublicKey(String),
    #[error("the key cannot be used: {0}")]
    Unusable(String),
}

/// What a good token says: its user, and until when it may be used (the second after
/// `exp` plus the leeway): a socket it opened is closed then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSubject {
    pub user: String,
    pub valid_until: std::time::SystemTime,
}

/// The shortest HS256 secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// See the module docs.
#[derive(Clone)]
pub struct JwtPolicy {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtPolicy").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

impl JwtPolicy {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], rules: &JwtRules) -> Result<Self, JwtKeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(JwtKeyError::SecretTooShort { min: MIN_SECRET_LEN });
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| JwtKeyError::Unusable(e.to_string()))?;
        Ok(Self::with(key, Algorithm::HS256, rules))
    }

    /// RS256 (an RSA public key) or ES256 (an EC P-256 public key), from PEM.
    pub fn public_key(pem: &[u8], rules: &JwtRules) -> Result<Self, JwtKeyError> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::with(key, Algorithm::RS256, rules));
        }
        match DecodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(Self::with(key, Algorithm::ES256, rules)),
            Err(e) => Err(JwtKeyError::NotAPublicKey(e.to_string())),
        }
    }

    fn with(key: DecodingKey, algorithm: Algorithm, rules: &JwtRules) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = rules.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &rules.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &rules.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        JwtPolicy { key, validation }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.validation.algorithms[0]
    }

    /// Verifies `token` and returns its `sub`.
    pub fn verify(&self, token: &str) -> Result<String, Refusal> {
        self.verify_subject(token).map(|subject| subject.user)
    }

    /// Verifies `token`: its `sub`, and when it stops being good.
    pub fn verify_subject(&self, token: &str) -> Result<JwtSubject, Refusal> {
        let data = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation).map_err(|e| refusal(e.kind()))?;
        let claims = data.claims;
        // The library reads `exp`/`nbf` leniently; a token must write them as whole seconds.
        if !claims["exp"].is_i64() && !claims["exp"].is_u64() {
            return Err(Refusal::Unauthorized("the token's exp is not a whole number of seconds"));
        }
        if let Some(nbf) = claims.get("nbf")
            && !nbf.is_i64()
            && !nbf.is_u64()
        {
            return Err(Refusal::Unauthorized("the token's nbf is not a whole number of seconds"));
        }
        let user = match &claims["sub"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::Null => return Err(Refusal::Unauthorized("the token names no subject")),
            _ => return Err(Refusal::Unauthorized("the token's subject is not a user id")),
        };
        // Checked above to be a whole number. The library refuses it from the second after
        // exp + leeway (`exp < now - leeway`, in whole seconds): a reconnect then is refused.
        let exp = claims["exp"].as_u64().unwrap_or(0);
        let valid_until = std::time::UNIX_EPOCH
            .checked_add(Duration::from_secs(exp.saturating_add(self.validation.leeway).saturating_add(1)))
            .unwrap_or(std::time::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)));
        Ok(JwtSubject { user, valid_until })
    }
}

fn refusal(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::ExpiredSignature => Refusal::Expired,
        ErrorKind::ImmatureSignature => Refusal::Unauthorized("the token is not valid yet"),
        ErrorKind::InvalidSignature => Refusal::Unauthorized("the token signature is wrong"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            Refusal::Unauthorized("the token is not signed with the configured algorithm")
        }
        ErrorKind::InvalidIssuer => Refusal::Unauthorized("the token is from another issuer"),
        ErrorKind::InvalidAudience => Refusal::Unauthorized("the token is for another audience"),
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => {
            Refusal::Unauthorized("the token has no expiry (exp)")
        }
        ErrorKind::MissingRequiredClaim(_) => Refusal::Unauthorized("the token lacks a required claim"),
        _ => Refusal::Unauthorized("the token is not a valid JWT"),
    }
}

/// Signs `claims` as an HS256 JWT (the demo's login, and tests). Panics on an empty secret.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret).expect("a non-empty HS256 secret");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("JSON claims always encode")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef-secret";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn hs(rules: JwtRules) -> JwtPolicy {
        JwtPolicy::hs256(SECRET, &rules).unwrap()
    }

    fn default_rules() -> JwtRules {
        JwtRules { leeway: DEFAULT_LEEWAY, ..JwtRules::default() }
    }

    #[test]
    fn a_table_of_hs256_tokens_and_their_outcomes() {
        let p = hs(default_rules());
        let n = now();
        let unauthorized = |why| Err(Refusal::Unauthorized(why));
        let cases: Vec<(&str, Value, Result<String, Refusal>)> = vec![
            ("valid, integer sub", json!({"sub": 42, "exp": n + 600}), Ok("42".into())),
            ("valid, string sub", json!({"sub": "u-7", "exp": n + 600}), Ok("u-7".into())),
            ("no exp", json!({"sub": 42}), unauthorized("the token has no expiry (exp)")),
            ("expired beyond the leeway", json!({"sub": 42, "exp": n - 120}), Err(Refusal::Expired)),
            ("expired within the leeway", json!({"sub": 42, "exp": n - 30}), Ok("42".into())),
            (
                "nbf in the future",
                json!({"sub": 42, "exp": n + 600, "nbf": n + 300}),
                unauthorized("the token is not valid yet"),
            ),
            ("nbf within the leeway", json!({"sub": 42, "exp": n + 600, "nbf": n + 30}), Ok("42".into())),
            (
                "nbf as a string",
                json!({"sub": 42, "exp": n + 600, "nbf": (n + 300).to_string()}),
                Err(Refusal::Unauthorized("x")),
            ),
            (
                "nbf as a float",
                json!({"sub": 42, "exp": n + 600, "nbf": (n + 300) as f64 + 0.5}),
                Err(Refusal::Unauthorized("x")),
            ),
            ("exp as a string", json!({"sub": 42, "exp": (n + 600).to_string()}), Err(Refusal::Unauthorized("x"))),
            ("sub 42.0", json!({"sub": 42.0, "exp": n + 600}), unauthorized("the token's subject is not a user id")),
            ("sub an object", json!({"sub": {"id": 1}, "exp": n + 600}), Err(Refusal::Unauthorized("x"))),
            ("sub empty", json!({"sub": "", "exp": n + 600}), unauthorized("the token's subject is not a user id")),
            ("no sub", json!({"exp": n + 600}), unauthorized("the token names no subject")),
        ];
        for (name, claims, want) in cases {
            let got = p.verify(&sign_hs256(&claims, SECRET));
            match (&want, &got) {
                // Any refusal as unauthorized (the exact words come from the library).
                (Err(Refusal::Unauthorized("x")), Err(Refusal::Unauthorized(_))) => {}
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let p = hs(JwtRules { issuer: Some("mediboy".into()), audience: Some("tills".into()), ..default_rules() });
        let n = now();
        let ok = json!({"sub": 1, "exp": n + 60, "iss": "mediboy", "aud": "tills"});
        assert_eq!(p.verify(&sign_hs256(&ok, SECRET)), Ok("1".into()));
        let wrong_iss = json!({"sub": 1, "exp": n + 60, "iss": "other", "aud": "tills"});
        assert_eq!(
            p.verify(&sign_hs256(&wrong_iss, SECRET)),
            Err(Refusal::Unauthorized("the token is from another issuer"))
        );
        let wrong_aud = json!({"sub": 1, "exp": n + 60, "iss": "mediboy", "aud": "other"});
        assert_eq!(
            p.verify(&sign_hs256(&wrong_aud, SECRET)),
            Err(Refusal::Unauthorized("the token is for another audience"))
        );
        // Without configured ones, a token carrying them is fine.
        assert_eq!(hs(default_rules()).verify(&sign_hs256(&wrong_aud, SECRET)), Ok("1".into()));
    }

    #[test]
    fn forged_and_algorithm_swapped_tokens_are_refused() {
        let p = hs(default_rules());
        let n = now();
        let t = sign_hs256(&json!({"sub": 42, "exp": n + 600}), b"another-secret-entirely");
        assert_eq!(p.verify(&t), Err(Refusal::Unauthorized("the token signature is wrong")));
        // alg: none, with the payload of a valid token.
        let valid = sign_hs256(&json!({"sub": 42, "exp": n + 600}), SECRET);
        let payload = valid.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(p.verify(&none), Err(Refusal::Unauthorized(_))));
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(p.verify(bad).is_err(), "{bad}");
        }
        assert!(matches!(JwtPolicy::hs256(b"short", &default_rules()), Err(JwtKeyError::SecretTooShort { .. })));
    }

    #[test]
    fn random_bytes_never_panic_the_verifier() {
        use proptest::prelude::*;
        let p = hs(default_rules());
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..600))| {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(p.verify(&text).is_err());
        });
        proptest!(|(parts in proptest::collection::vec("[A-Za-z0-9_-]{0,40}", 3))| {
            let _ = p.verify(&parts.join("."));
        });
    }
}

#[cfg(test)]
mod public_key_tests {
    //! RS256 and ES256 with key pairs generated here by `openssl` (no key is committed).
    use super::*;
    use serde_json::json;

    /// (private PEM, public PEM) from `openssl genpkey` with `args`.
    fn key_pair(args: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.pem");
        let public = dir.path().join("public.pem");
        let run = |cmd: &mut std::process::Command| {
            let out = cmd.output().expect("openssl must be installed");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        run(std::process::Command::new("openssl").arg("genpkey").args(args).arg("-out").arg(&private));
        run(std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public));
        (std::fs::read(private).unwrap(), std::fs::read(public).unwrap())
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
    }

    #[test]
    fn rs256_and_es256_tokens_are_verified_with_the_public_key_and_nothing_else() {
        let rules = JwtRules { leeway: DEFAULT_LEEWAY, ..JwtRules::default() };
        let claims = json!({"sub": 42, "exp": chrono::Utc::now().timestamp() + 600});
        let (rsa_private, rsa_public) = key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        let rs = JwtPolicy::public_key(&rsa_public, &rules).unwrap();
        assert_eq!(rs.algorithm(), Algorithm::RS256);
        let rsa_key = EncodingKey::from_rsa_pem(&rsa_private).unwrap();
        assert_eq!(rs.verify(&sign(Algorithm::RS256, &rsa_key, &claims)), Ok("42".into()));
        // The classic confusion: HS256 "signed" with the public key's PEM bytes.
        let confused = sign_hs256(&claims, &rsa_public);
        assert_eq!(
            rs.verify(&confused),
            Err(Refusal::Unauthorized("the token is not signed with the configured algorithm"))
        );
        // Another key pair's signature.
        let (other_private, _) = key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        let other = EncodingKey::from_rsa_pem(&other_private).unwrap();
        assert_eq!(
            rs.verify(&sign(Algorithm::RS256, &other, &claims)),
            Err(Refusal::Unauthorized("the token signature is wrong"))
        );

        let (ec_private, ec_public) = key_pair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        let es = JwtPolicy::public_key(&ec_public, &rules).unwrap();
        assert_eq!(es.algorithm(), Algorithm::ES256);
        let ec_key = EncodingKey::from_ec_pem(&ec_private).unwrap();
        assert_eq!(es.verify(&sign(Algorithm::ES256, &ec_key, &claims)), Ok("42".into()));
        assert!(es.verify(&sign(Algorithm::RS256, &rsa_key, &claims)).is_err(), "RS256 refused where ES256 is set");

        assert!(matches!(JwtPolicy::public_key(b"not a pem", &rules), Err(JwtKeyError::NotAPublicKey(_))));
    }
}
