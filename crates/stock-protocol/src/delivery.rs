//! What travels beside a payload so a client can catch up after being offline.
//!
//! Live `add_stock` events carry the unchanged payload as their first argument and a
//! [`DeliveryMeta`] as the second; clients that read only the first keep working.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sequence number of a relayed snapshot and the epoch of the bridge memory it came from.
/// A new epoch means every earlier sequence number is meaningless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMeta {
    pub seq: u64,
    pub epoch: String,
}

/// Client → bridge: the last position the client has seen (`None` when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUpRequest {
    pub epoch: Option<String>,
    pub after: Option<u64>,
}

/// Bridge → client: the latest snapshot of every product changed after the requested
/// position (or all of them when `full`), oldest first, and the position to resume from.
///
/// `D` is how a payload is held: the bridge sends the bytes it was posted
/// (`Arc<RawValue>`, never parsed again), clients read a [`Value`]. One type, so the two
/// sides cannot drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "D: serde::de::DeserializeOwned"))]
pub struct CatchUp<D = Value> {
    pub epoch: String,
    /// Highest sequence number the bridge has assigned.
    pub seq: u64,
    /// True when the answer is the whole current set (epoch changed or position too old).
    pub full: bool,
    /// True when the bridge could not vouch that nothing is missing (its cache evicted
    /// entries newer than the requested position).
    pub incomplete: bool,
    pub items: Vec<CatchUpItem<D>>,
    /// True when the answer was cut to keep it small: `seq` is then the last item's, and
    /// the client asks again from there for the rest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

impl CatchUpRequest {
    /// The position to answer from, given the bridge's `epoch` and highest `seq`: None
    /// when the client's position means nothing here (another epoch, or ahead of us), so
    /// it gets the whole set.
    pub fn resume_after(&self, epoch: &str, seq: u64) -> Option<u64> {
        match (&self.epoch, self.after) {
            (Some(e), Some(after)) if e == epoch && after <= seq => Some(after),
            _ => None,
        }
    }
}

/// Why the bridge did not serve a control event a client sent (`stock:catch_up`,
/// `stock:ping`, `stock:health`). The first two are passing: the client asks again a
/// little later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRefusalCode {
    /// More client events than the per-connection rate allows.
    RateLimited,
    /// A catch-up for this connection is still being answered, or its answer has not left.
    CatchUpPending,
    /// A health report that breaks a rule of [`crate::TillReport`] (too large, wrong types).
    InvalidReport,
    /// A health report from a connection that did not say which till it is.
    NotIdentified,
    /// The bridge could not read what was missed just now (its store, e.g. Redis, did not
    /// answer in time): ask again shortly.
    StoreUnavailable,
    /// A code this client does not know (a newer bridge).
    #[serde(other)]
    Other,
}

/// The acknowledgement of a control event that was not served:
/// `{"error": {"code": "catch_up_pending", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefusal {
    pub error: ControlRefusalDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefusalDetail {
    pub code: ControlRefusalCode,
    pub message: String,
}

impl ControlRefusal {
    pub fn new(code: ControlRefusalCode, message: impl Into<String>) -> Self {
        ControlRefusal { error: ControlRefusalDetail { code, message: message.into() } }
    }
}

/// Bridge → client: the acknowledgement of a `stock:catch_up`, a page or a refusal.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, bound(deserialize = "D: serde::de::DeserializeOwned"))]
pub enum CatchUpAnswer<D = Value> {
    Refused(ControlRefusal),
    Page(CatchUp<D>),
}

/// One entry of a [`CatchUp`]: a payload exactly as it was posted, and its sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "D: serde::de::DeserializeOwned"))]
pub struct CatchUpItem<D = Value> {
    pub seq: u64,
    pub data: D,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;
    use std::sync::Arc;

    #[test]
    fn the_bridge_form_reads_back_as_the_client_form() {
        let raw: Arc<RawValue> = RawValue::from_string(r#"{"product_id":5,"zz":1,"aa":[2]}"#.into()).unwrap().into();
        let sent = CatchUp {
            epoch: "e".into(),
            seq: 9,
            full: false,
            incomplete: true,
            items: vec![CatchUpItem { seq: 9, data: raw.clone() }],
            more: true,
        };
        let wire = serde_json::to_string(&sent).unwrap();
        assert!(wire.contains(raw.get()), "the payload travels byte for byte: {wire}");
        let read: CatchUp = serde_json::from_str(&wire).unwrap();
        assert_eq!((read.seq, read.incomplete, read.more), (9, true, true));
        assert_eq!(read.items[0].data, serde_json::from_str::<Value>(raw.get()).unwrap());
        let answer: CatchUpAnswer = serde_json::from_str(&wire).unwrap();
        assert!(matches!(answer, CatchUpAnswer::Page(CatchUp { seq: 9, .. })));
    }

    #[test]
    fn a_refusal_reads_back_by_its_code_and_unknown_codes_are_still_refusals() {
        for code in
            [ControlRefusalCode::RateLimited, ControlRefusalCode::CatchUpPending, ControlRefusalCode::StoreUnavailable]
        {
            let wire = serde_json::to_string(&ControlRefusal::new(code, "wait")).unwrap();
            let answer: CatchUpAnswer = serde_json::from_str(&wire).unwrap();
            assert_eq!(answer, CatchUpAnswer::Refused(ControlRefusal::new(code, "wait")), "{wire}");
        }
        assert_eq!(
            serde_json::to_string(&ControlRefusal::new(ControlRefusalCode::CatchUpPending, "m")).unwrap(),
            r#"{"error":{"code":"catch_up_pending","message":"m"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ControlRefusal::new(ControlRefusalCode::StoreUnavailable, "m")).unwrap(),
            r#"{"error":{"code":"store_unavailable","message":"m"}}"#
        );
        let newer: CatchUpAnswer = serde_json::from_str(r#"{"error":{"code":"busy","message":"m"}}"#).unwrap();
        assert!(matches!(newer, CatchUpAnswer::Refused(r) if r.error.code == ControlRefusalCode::Other));
        assert!(serde_json::from_str::<CatchUpAnswer>(r#"{"nonsense":1}"#).is_err());
    }
}
