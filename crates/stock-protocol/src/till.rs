//! What a till says about itself to the bridge, and what support staff read back.
//!
//! - [`TillIdentity`]: who it is, in the handshake's `auth.till` (`{till_id, name, app,
//!   version, os}`); a client that sends none is "unidentified".
//! - [`TillReport`]: its health, in one small event ([`crate::events::HEALTH`], at most
//!   [`REPORT_MAX_BYTES`]), on every change and at least every [`REPORT_EVERY`].
//! - [`DiagnosticsAsk`] / [`DiagnosticsAnswer`]: support pulls a till's full Diagnostics
//!   text through the bridge ([`crate::events::DIAGNOSTICS`], answered with
//!   [`crate::events::DIAGNOSTICS_ANSWER`]).
//! - [`FleetStatus`], [`EndReason`]: a till as the bridge's fleet view sees it.
//!
//! Every text field is bounded, and checked when read ([`TillIdentity::from_auth`],
//! [`TillReport::parse`]): a report that breaks a rule is refused whole, naming the rule.
//! No field may carry a token or a header: the client builds its texts from its own
//! errors, which never include them.

use crate::ConnectionState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Largest health report accepted, as sent (JSON).
pub const REPORT_MAX_BYTES: usize = 2 * 1024;
/// A till reports at least this often while connected (and on every change).
pub const REPORT_EVERY: Duration = Duration::from_secs(30);
/// A till sends at most one report per this interval (changes in between are gathered).
pub const REPORT_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// Longest till id, in characters (`[A-Za-z0-9._:-]`).
pub const TILL_ID_MAX: usize = 64;
/// Longest till name, in characters ("Dhanmondi, counter 2").
pub const TILL_NAME_MAX: usize = 80;
/// Longest short text (version, os, codes, error kinds).
pub const SHORT_TEXT_MAX: usize = 64;
/// Longest reason or error text.
pub const LONG_TEXT_MAX: usize = 300;
/// Largest Diagnostics text a till may answer with.
pub const DIAGNOSTICS_MAX_BYTES: usize = 64 * 1024;

/// Which program a till runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TillApp {
    /// The desktop app.
    Desktop,
    /// `stock-watch`, in a terminal.
    Terminal,
}

/// Who a till is (the handshake's `auth.till`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillIdentity {
    /// Random and stable (kept in the till's store); not a secret.
    pub till_id: String,
    /// What the operator or installer called it; may be empty.
    #[serde(default)]
    pub name: String,
    pub app: TillApp,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub os: String,
}

/// A field that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TillError {
    #[error("the report is {0} bytes; at most {REPORT_MAX_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the report is not valid: {0}")]
    Invalid(String),
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("till_id must be 1 to {TILL_ID_MAX} characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")]
    BadTillId,
    #[error("{0} holds a control character")]
    ControlCharacter(&'static str),
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), TillError> {
    if text.chars().count() > max {
        return Err(TillError::TooLong { field, max });
    }
    if text.chars().any(char::is_control) {
        return Err(TillError::ControlCharacter(field));
    }
    Ok(())
}

/// True when `id` is a till id (also what the fleet's URLs accept).
pub fn is_till_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= TILL_ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl TillIdentity {
    /// Checks every field's rule.
    pub fn check(&self) -> Result<(), TillError> {
        if !is_till_id(&self.till_id) {
            return Err(TillError::BadTillId);
        }
        check_text("name", &self.name, TILL_NAME_MAX)?;
        check_text("version", &self.version, SHORT_TEXT_MAX)?;
        check_text("os", &self.os, SHORT_TEXT_MAX)
    }

    /// The till in a handshake's `auth` object: None when there is none (an old client),
    /// an error when there is one that breaks a rule.
    pub fn from_auth(auth: Option<&Value>) -> Result<Option<TillIdentity>, TillError> {
        let Some(till) = auth.and_then(|a| a.get("till")).filter(|t| !t.is_null()) else { return Ok(None) };
        let identity: TillIdentity =
            serde_json::from_value(till.clone()).map_err(|e| TillError::Invalid(e.to_string()))?;
        identity.check()?;
        Ok(Some(identity))
    }
}

/// How the till last lost its connection, as it saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillDisconnect {
    pub reason: String,
    /// A refusal code (`unauthorized`, `token_expired`) or certificate problem, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub at: DateTime<Utc>,
}

/// The till's last error, by kind and text (never a token, never a header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillLastError {
    pub kind: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A till's health, as it reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TillReport {
    pub state: ConnectionState,
    pub since: DateTime<Utc>,
    /// Connections lost in the last hour and the last 24 hours.
    pub reconnects_1h: u32,
    pub reconnects_24h: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_disconnect: Option<TillDisconnect>,
    /// The sequence of the last `add_stock` it drew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Catch-ups that could not close their gap, since it started.
    pub gaps: u32,
    /// True while it shows "data may be incomplete".
    #[serde(default)]
    pub gap_open: bool,
    /// Round-trip time of its last answered probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u32>,
    /// Its clock minus the bridge's, measured with the probes (positive: the till is ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    pub notifications: bool,
    /// Products on its screen.
    pub products: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TillLastError>,
    pub sent_at: DateTime<Utc>,
}

impl TillReport {
    /// Reads a report as sent: refused whole when too large, not a report, or a text
    /// field breaks its rule.
    pub fn parse(bytes: &[u8]) -> Result<TillReport, TillError> {
        if bytes.len() > REPORT_MAX_BYTES {
            return Err(TillError::TooLarge(bytes.len()));
        }
        let report: TillReport = serde_json::from_slice(bytes).map_err(|e| TillError::Invalid(e.to_string()))?;
        report.check()?;
        Ok(report)
    }

    /// Checks every text field's rule.
    pub fn check(&self) -> Result<(), TillError> {
        if let Some(d) = &self.last_disconnect {
            check_text("last_disconnect.reason", &d.reason, LONG_TEXT_MAX)?;
            if let Some(code) = &d.code {
                check_text("last_disconnect.code", code, SHORT_TEXT_MAX)?;
            }
        }
        if let Some(e) = &self.last_error {
            check_text("last_error.kind", &e.kind, SHORT_TEXT_MAX)?;
            check_text("last_error.text", &e.text, LONG_TEXT_MAX)?;
        }
        Ok(())
    }

    /// `text` cut to `max` characters (the client shortens its texts to fit the rules).
    pub fn fit(text: &str, max: usize) -> String {
        text.chars().filter(|c| !c.is_control()).take(max).collect()
    }
}

/// Bridge → till: "send your Diagnostics text", for request `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticsAsk {
    pub id: String,
}

/// Till → bridge: the Diagnostics text (what its Copy button gives) for request `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticsAnswer {
    pub id: String,
    pub text: String,
}

/// Where a till stands in the fleet view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FleetStatus {
    /// Connected to a bridge node now.
    Online,
    /// Not connected (see its end reason).
    Offline,
    /// Its last handshake was refused (a bad or expired token).
    Refused,
    /// Cut by the bridge for reading too slowly; it reconnects and catches up.
    Cut,
}

impl FleetStatus {
    pub const ALL: [FleetStatus; 4] =
        [FleetStatus::Online, FleetStatus::Offline, FleetStatus::Refused, FleetStatus::Cut];

    pub fn as_str(self) -> &'static str {
        match self {
            FleetStatus::Online => "online",
            FleetStatus::Offline => "offline",
            FleetStatus::Refused => "refused",
            FleetStatus::Cut => "cut",
        }
    }
}

/// Why a till's connection ended, as the bridge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No pong within the ping timeout: the line went silent.
    PingTimeout,
    /// The till closed its connection (or its transport broke).
    TransportClosed,
    /// Cut for reading too slowly.
    CutTooSlow,
    /// Its token expired while connected.
    TokenExpired,
    /// Its handshake was refused.
    Refused,
    /// The bridge stopped (a restart).
    BridgeStopped,
    /// The bridge node it was connected to stopped answering (cluster mode: its lease ran out).
    BridgeNodeLost,
    /// Anything else the transport reported.
    Other,
}

impl EndReason {
    /// Its name on the wire and in metrics (`ping_timeout`, …).
    pub fn label(self) -> &'static str {
        match self {
            EndReason::PingTimeout => "ping_timeout",
            EndReason::TransportClosed => "transport_closed",
            EndReason::CutTooSlow => "cut_too_slow",
            EndReason::TokenExpired => "token_expired",
            EndReason::Refused => "refused",
            EndReason::BridgeStopped => "bridge_stopped",
            EndReason::BridgeNodeLost => "bridge_node_lost",
            EndReason::Other => "other",
        }
    }

    /// What support staff read.
    pub fn text(self) -> &'static str {
        match self {
            EndReason::PingTimeout => "ping timeout: the line went silent",
            EndReason::TransportClosed => "transport closed: the till closed it",
            EndReason::CutTooSlow => "cut as too slow (it reads slower than updates arrive)",
            EndReason::TokenExpired => "its sign-in expired",
            EndReason::Refused => "refused at the handshake",
            EndReason::BridgeStopped => "the bridge stopped",
            EndReason::BridgeNodeLost => "bridge node lost",
            EndReason::Other => "the connection ended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_end_reasons_label_is_its_wire_name() {
        use EndReason::*;
        for reason in
            [PingTimeout, TransportClosed, CutTooSlow, TokenExpired, Refused, BridgeStopped, BridgeNodeLost, Other]
        {
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(reason.label()));
        }
    }

    fn report() -> Value {
        json!({"state": "socket connected", "since": "2026-12-06T08:00:00Z", "reconnects_1h": 1,
            "reconnects_24h": 3, "gaps": 0, "notifications": true, "products": 120,
            "sent_at": "2026-12-06T08:00:30Z"})
    }

    #[test]
    fn a_report_reads_back_as_sent() {
        let read = TillReport::parse(report().to_string().as_bytes()).unwrap();
        assert_eq!(read.state, ConnectionState::Connected);
        assert_eq!((read.reconnects_1h, read.products), (1, 120));
        let again = TillReport::parse(serde_json::to_string(&read).unwrap().as_bytes()).unwrap();
        assert_eq!(again, read);
    }

    #[test]
    fn a_report_that_breaks_a_rule_is_refused_naming_it() {
        let big = json!({"last_error": {"kind": "x", "text": "y".repeat(3000), "at": "2026-12-06T08:00:00Z"}});
        let mut too_big = report();
        too_big.as_object_mut().unwrap().extend(big.as_object().unwrap().clone());
        assert!(matches!(TillReport::parse(too_big.to_string().as_bytes()), Err(TillError::TooLarge(_))));
        let mut wrong_type = report();
        wrong_type["products"] = json!("many");
        assert!(matches!(TillReport::parse(wrong_type.to_string().as_bytes()), Err(TillError::Invalid(_))));
        let mut long = report();
        long["last_error"] = json!({"kind": "k".repeat(65), "text": "t", "at": "2026-12-06T08:00:00Z"});
        let err = TillReport::parse(long.to_string().as_bytes()).unwrap_err();
        assert_eq!(err, TillError::TooLong { field: "last_error.kind", max: SHORT_TEXT_MAX });
        assert!(TillReport::parse(b"[1,2]").is_err());
        assert!(TillReport::parse(b"").is_err());
    }

    #[test]
    fn identities_are_checked_and_an_absent_one_is_no_identity() {
        let good = json!({"token": "t", "till": {"till_id": "a1-b2", "name": "Dhanmondi, counter 2", "app": "desktop",
            "version": "0.1.0", "os": "windows"}});
        let identity = TillIdentity::from_auth(Some(&good)).unwrap().unwrap();
        assert_eq!((identity.till_id.as_str(), identity.app), ("a1-b2", TillApp::Desktop));
        assert_eq!(TillIdentity::from_auth(Some(&json!({"token": "t"}))), Ok(None));
        assert_eq!(TillIdentity::from_auth(None), Ok(None));
        for (bad, why) in [
            (json!({"till": {"till_id": "", "app": "desktop"}}), "empty id"),
            (json!({"till": {"till_id": "a/b", "app": "desktop"}}), "slash in id"),
            (json!({"till": {"till_id": "a", "app": "phone"}}), "unknown app"),
            (json!({"till": {"till_id": "a", "app": "desktop", "name": "n".repeat(81)}}), "long name"),
            (json!({"till": {"till_id": "a", "app": "desktop", "name": "a\u{7}b"}}), "control character"),
            (json!({"till": "a"}), "not an object"),
        ] {
            assert!(TillIdentity::from_auth(Some(&bad)).is_err(), "{why}");
        }
    }

    #[test]
    fn a_till_name_that_is_markup_is_just_text_here() {
        let auth = json!({"till": {"till_id": "x", "app": "terminal", "name": "<img src=x onerror=alert(1)>"}});
        let identity = TillIdentity::from_auth(Some(&auth)).unwrap().unwrap();
        assert_eq!(identity.name, "<img src=x onerror=alert(1)>", "kept as typed; the page escapes it");
    }

    #[test]
    fn texts_are_fitted_to_their_rule() {
        assert_eq!(TillReport::fit("a\u{1b}[31mbc", 3), "a[3");
        assert_eq!(TillReport::fit("héllo", 10), "héllo");
    }
}
