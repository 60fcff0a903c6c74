//! The body of `POST /broadcast`: parsing and validation.
//!
//! A body holds one event (`{"event", "data", "to"}`) or a batch of them
//! (`{"events": [...]}`, see [`BroadcastBody`]). The `data` object is kept as the exact
//! JSON text that was posted ([`RawValue`]), so clients receive it byte for byte; it is
//! parsed separately only to be checked.

use crate::events::{self, ADD_STOCK};
use crate::snapshot::{StockSnapshot, kind, truncate};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeSet;

/// The longest event name accepted.
pub const MAX_EVENT_NAME_LEN: usize = 128;
/// The most recipients one broadcast may name.
pub const MAX_RECIPIENTS: usize = 100;
/// The most events one batch may carry unless the bridge is configured otherwise.
pub const DEFAULT_BATCH_MAX: usize = 1_000;

/// A broadcast that passed every check.
#[derive(Debug, Clone)]
pub struct BroadcastRequest {
    pub event: String,
    /// The `data` object exactly as posted.
    pub data: Box<RawValue>,
    /// Set for `add_stock`: the typed view of `data`.
    pub snapshot: Option<StockSnapshot>,
    /// Empty: everyone. Otherwise only these rooms (`user:<id>`).
    pub to: Vec<Recipient>,
}

/// A per-user destination, always of the form `user:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recipient(String);

impl Recipient {
    /// The room for user `id`.
    pub fn user(id: impl std::fmt::Display) -> Self {
        Recipient(format!("user:{id}"))
    }

    /// Parses `user:<id>` where id is 1–64 characters of `[A-Za-z0-9_.-]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let valid = s.strip_prefix("user:").is_some_and(|id| {
            !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        });
        if valid {
            Ok(Recipient(s.to_owned()))
        } else {
            Err(format!("to: {:?} is not a recipient of the form \"user:<id>\"", truncate(s)))
        }
    }

    /// The room name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which event names the bridge relays.
#[derive(Debug, Clone)]
pub struct EventPolicy {
    allowed: BTreeSet<String>,
}

impl Default for EventPolicy {
    fn default() -> Self {
        Self::new(events::DEFAULT_ALLOWED.iter().copied()).expect("defaults are valid")
    }
}

impl EventPolicy {
    /// A policy relaying exactly `names`; refuses reserved or malformed names.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut allowed = BTreeSet::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            check_event_name(name)?;
            allowed.insert(name.to_owned());
        }
        if allowed.is_empty() {
            return Err("the list of relayed events is empty".to_owned());
        }
        Ok(EventPolicy { allowed })
    }

    pub fn allows(&self, name: &str) -> bool {
        self.allowed.contains(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }
}

fn check_event_name(name: &str) -> Result<(), String> {
    if events::is_reserved(name) {
        return Err(format!("event {name:?} is reserved by Socket.IO"));
    }
    if name.len() > MAX_EVENT_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!("event {:?} is not a valid event name", truncate(name)));
    }
    Ok(())
}

/// The broadcast was refused; one readable line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid payload: {}", .errors.join("; "))]
pub struct InvalidPayload {
    pub errors: Vec<String>,
}

impl InvalidPayload {
    fn one(e: impl Into<String>) -> Self {
        InvalidPayload { errors: vec![e.into()] }
    }
}

/// What a `POST /broadcast` body holds.
#[derive(Debug, Clone)]
pub enum BroadcastBody {
    /// `{"event", "data", "to"}`: the body Laravel's `testWebSocket` posts.
    One(BroadcastRequest),
    /// `{"events": [{"event", "data", "to"}, ...]}`: relayed in this order.
    Batch(Vec<BroadcastRequest>),
}

/// A body that is refused as a whole: nothing of it is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body itself (or its one event) is wrong.
    #[error(transparent)]
    Invalid(#[from] InvalidPayload),
    /// Some events of a batch are wrong; each is named by its index.
    #[error("Invalid batch: {} of {total} events are invalid", .items.len())]
    InvalidItems { total: usize, items: Vec<ItemError> },
    /// The batch holds more events than the bridge takes at once.
    #[error("a batch holds at most {max} events, got {got}")]
    TooMany { max: usize, got: usize },
}

/// How much one batch may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_events: usize,
    /// The largest event in a batch (as the JSON text of `{"event", "data", "to"}`).
    pub max_event_bytes: usize,
}

/// Why the event at `index` of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemError {
    pub index: usize,
    pub errors: Vec<String>,
}

impl BroadcastBody {
    /// Parses and checks a whole body; a batch is checked to its last event before any of
    /// it may be sent, holds 1 to `limits.max_events` events, and none of them is larger
    /// than `limits.max_event_bytes` (what a one-event body may weigh).
    pub fn parse(body: &[u8], policy: &EventPolicy, limits: BatchLimits) -> Result<Self, BodyError> {
        let envelope = Envelope::parse(body, "body")?;
        let Some(events) = envelope.events else {
            return Ok(BroadcastBody::One(BroadcastRequest::from_envelope(envelope, policy)?));
        };
        if envelope.event.is_some() || envelope.data.is_some() || envelope.to.is_some() {
            return Err(
                InvalidPayload::one("a body holds one event (event, data, to) or a batch (events), not both").into()
            );
        }
        let items: Vec<&RawValue> = match serde_json::from_str(events.get()) {
            Ok(items) => items,
            Err(_) => {
                let got = serde_json::from_str::<Value>(events.get()).map_or("invalid JSON", |v| kind(&v));
                return Err(InvalidPayload::one(format!("events must be a list of events, got {got}")).into());
            }
        };
        if items.is_empty() {
            return Err(InvalidPayload::one("events: the batch is empty").into());
        }
        if items.len() > limits.max_events {
            return Err(BodyError::TooMany { max: limits.max_events, got: items.len() });
        }
        let total = items.len();
        let mut requests = Vec::with_capacity(total);
        let mut bad = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let size = item.get().len();
            let parsed = Envelope::parse(item.get().as_bytes(), "the event").and_then(|e| {
                if size > limits.max_event_bytes {
                    return Err(InvalidPayload::one(format!(
                        "the event is {size} bytes; one event may be at most {} bytes (the limit of a one-event body)",
                        limits.max_event_bytes
                    )));
                }
                if e.events.is_some() {
                    return Err(InvalidPayload::one("a batch's event cannot hold a batch (events)"));
                }
                BroadcastRequest::from_envelope(e, policy)
            });
            match parsed {
                Ok(request) => requests.push(request),
                Err(e) => bad.push(ItemError { index, errors: e.errors }),
            }
        }
        if !bad.is_empty() {
            return Err(BodyError::InvalidItems { total, items: bad });
        }
        Ok(BroadcastBody::Batch(requests))
    }

    /// The events in the order they are relayed.
    pub fn into_requests(self) -> Vec<BroadcastRequest> {
        match self {
            BroadcastBody::One(one) => vec![one],
            BroadcastBody::Batch(all) => all,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    event: Option<Value>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(default)]
    to: Option<Value>,
    #[serde(default, borrow)]
    events: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// A JSON object's fields, or one line saying why the text is not one.
    /// `what` names the text in messages ("body", or "the event" inside a batch).
    fn parse(body: &'a [u8], what: &str) -> Result<Self, InvalidPayload> {
        let text = std::str::from_utf8(body)
            .map_err(|e| InvalidPayload::one(format!("{what} is not valid UTF-8 (byte {})", e.valid_up_to())))?;
        if !text.trim_start().starts_with('{') {
            return Err(InvalidPayload::one(format!("{what} is not a valid JSON object: it must start with '{{'")));
        }
        serde_json::from_str(text).map_err(|e| InvalidPayload::one(format!("{what} is not a valid JSON object: {e}")))
    }
}

/// Keeps an explicit `null` as present, so it is reported as "not an object".
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl BroadcastRequest {
    /// Parses and checks a one-event `POST /broadcast` body (a batch is refused: see
    /// [`BroadcastBody::parse`]).
    pub fn parse(body: &[u8], policy: &EventPolicy) -> Result<Self, InvalidPayload> {
        let envelope = Envelope::parse(body, "body")?;
        if envelope.events.is_some() {
            return Err(InvalidPayload::one("a batch (events) is not accepted here"));
        }
        Self::from_envelope(envelope, policy)
    }

    fn from_envelope(envelope: Envelope<'_>, policy: &EventPolicy) -> Result<Self, InvalidPayload> {
        let mut errors = Vec::new();
        let event = match envelope.event {
            None | Some(Value::Null) => {
                errors.push("event is missing".to_owned());
                None
            }
            Some(Value::String(name)) if name.is_empty() => {
                errors.push("event is missing".to_owned());
                None
            }
            Some(Value::String(name)) => match check_event_name(&name) {
                Err(e) => {
                    errors.push(e);
                    None
                }
                Ok(()) if !policy.allows(&name) => {
                    errors.push(format!(
                        "event {:?} is not relayed by this bridge (relayed: {})",
                        truncate(&name),
                        policy.names().collect::<Vec<_>>().join(", ")
                    ));
                    None
                }
                Ok(()) => Some(name),
            },
            Some(other) => {
                errors.push(format!("event must be a string, got {}", kind(&other)));
                None
            }
        };

        let data_value = match envelope.data {
            None => {
                errors.push("data is missing".to_owned());
                None
            }
            Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Err(e) => {
                    errors.push(format!("data is not valid JSON: {e}"));
                    None
                }
                Ok(v @ Value::Object(_)) => Some(v),
                Ok(v) => {
                    errors.push(format!("data must be an object, got {}", kind(&v)));
                    None
                }
            },
        };

        let mut snapshot = None;
        if let (Some(ADD_STOCK), Some(value)) = (event.as_deref(), &data_value) {
            match StockSnapshot::from_value(value) {
                Ok(s) => snapshot = Some(s),
                Err(mut e) => errors.append(&mut e),
            }
        }

        let to = match envelope.to {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => collect(Recipient::parse(&s), &mut errors),
            Some(Value::Array(items)) if items.len() > MAX_RECIPIENTS => {
                errors.push(format!("to: at most {MAX_RECIPIENTS} recipients, got {}", items.len()));
                Vec::new()
            }
            Some(Value::Array(items)) if items.is_empty() => {
                errors.push("to: the recipient list is empty".to_owned());
                Vec::new()
            }
            Some(Value::Array(items)) => {
                let mut to = Vec::new();
                for item in &items {
                    match item {
                        Value::String(s) => to.extend(collect(Recipient::parse(s), &mut errors)),
                        other => errors.push(format!("to: each recipient must be a string, got {}", kind(other))),
                    }
                }
                to.sort();
                to.dedup();
                to
            }
            Some(other) => {
                errors.push(format!("to must be a string or a list of strings, got {}", kind(&other)));
                Vec::new()
            }
        };

        if !errors.is_empty() {
            return Err(InvalidPayload { errors });
        }
        Ok(BroadcastRequest {
            event: event.expect("checked above"),
            data: envelope.data.expect("checked above").to_owned(),
            snapshot,
            to,
        })
    }
}

fn collect(r: Result<Recipient, String>, errors: &mut Vec<String>) -> Vec<Recipient> {
    match r {
        Ok(r) => vec![r],
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event":"add_stock","data":{"product_id":5486,"in_stock":10,"discount_price":120,"peak_hour_price":140,"mediboy_offer_price":90,"sync_at":"2024-01-01T00:00:00.000Z","note":"x"}}"#;

    fn parse(body: &str) -> Result<BroadcastRequest, InvalidPayload> {
        BroadcastRequest::parse(body.as_bytes(), &EventPolicy::default())
    }

    #[test]
    fn keeps_data_byte_for_byte() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.event, "add_stock");
        assert!(r.data.get().starts_with(r#"{"product_id":5486,"#));
        assert!(r.data.get().ends_with(r#""note":"x"}"#));
        assert_eq!(r.snapshot.unwrap().product_id, 5486);
        assert!(r.to.is_empty());
    }

    #[test]
    fn refuses_reserved_unknown_and_missing_events() {
        for (body, want) in [
            (r#"{"event":"connect","data":{}}"#, "event \"connect\" is reserved by Socket.IO"),
            (r#"{"event":"disconnecting","data":{}}"#, "event \"disconnecting\" is reserved by Socket.IO"),
            (
                r#"{"event":"shutdown","data":{}}"#,
                "event \"shutdown\" is not relayed by this bridge (relayed: add_stock, sale_mode)",
            ),
            (r#"{"data":{}}"#, "event is missing"),
            (r#"{"event":"","data":{}}"#, "event is missing"),
            (r#"{"event":7,"data":{}}"#, "event must be a string, got a number"),
        ] {
            assert_eq!(parse(body).unwrap_err().errors, vec![want.to_owned()], "{body}");
        }
    }

    #[test]
    fn data_must_be_an_object() {
        for (body, want) in [
            (r#"{"event":"sale_mode","data":[1,2]}"#, "data must be an object, got an array"),
            (r#"{"event":"sale_mode","data":"x"}"#, "data must be an object, got a string"),
            (r#"{"event":"sale_mode","data":null}"#, "data must be an object, got null"),
            (r#"{"event":"sale_mode"}"#, "data is missing"),
        ] {
            assert_eq!(parse(body).unwrap_err().errors, vec![want.to_owned()], "{body}");
        }
        assert!(parse(r#"{"event":"sale_mode","data":{"mode":"peak"}}"#).is_ok());
    }

    #[test]
    fn malformed_bodies_get_one_clear_line() {
        assert!(
            BroadcastRequest::parse(b"{\"event\":\"\xff\"}", &EventPolicy::default()).unwrap_err().errors[0]
                .starts_with("body is not valid UTF-8")
        );
        assert!(parse("not json").unwrap_err().errors[0].starts_with("body is not a valid JSON object"));
        assert!(parse("[1]").unwrap_err().errors[0].starts_with("body is not a valid JSON object"));
        let deep = format!(r#"{{"event":"sale_mode","data":{{"a":{}1{}}}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).is_err());
        let huge = r#"{"event":"sale_mode","data":{"a":1e400}}"#;
        assert!(parse(huge).is_err());
    }

    #[test]
    fn recipients() {
        let base = r#""event":"sale_mode","data":{"mode":"peak"}"#;
        let r = parse(&format!(r#"{{{base},"to":"user:42"}}"#)).unwrap();
        assert_eq!(r.to, vec![Recipient::user(42)]);
        let r = parse(&format!(r#"{{{base},"to":["user:2","user:1","user:2"]}}"#)).unwrap();
        assert_eq!(r.to, vec![Recipient::user(1), Recipient::user(2)]);
        for (to, want) in [
            (r#""42""#, "to: \"42\" is not a recipient of the form \"user:<id>\""),
            ("[]", "to: the recipient list is empty"),
            ("[1]", "to: each recipient must be a string, got a number"),
            ("{}", "to must be a string or a list of strings, got an object"),
        ] {
            assert_eq!(parse(&format!(r#"{{{base},"to":{to}}}"#)).unwrap_err().errors, vec![want.to_owned()]);
        }
    }

    fn parse_body(body: &str, max: usize) -> Result<BroadcastBody, BodyError> {
        BroadcastBody::parse(
            body.as_bytes(),
            &EventPolicy::default(),
            BatchLimits { max_events: max, max_event_bytes: 1000 },
        )
    }

    #[test]
    fn a_batch_keeps_its_order_and_each_event_byte_for_byte() {
        let sale = r#"{"event":"sale_mode","data":{"mode":"peak"},"to":"user:7"}"#;
        let body = format!(r#"{{"events":[{GOOD}, {sale},{GOOD}]}}"#);
        let BroadcastBody::Batch(all) = parse_body(&body, 3).unwrap() else { panic!("a batch") };
        assert_eq!(all.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(), ["add_stock", "sale_mode", "add_stock"]);
        assert_eq!(all[1].to, vec![Recipient::user(7)]);
        assert!(all[2].data.get().ends_with(r#""note":"x"}"#));
        assert!(matches!(parse_body(GOOD, 3).unwrap(), BroadcastBody::One(_)), "the old body is unchanged");
    }

    #[test]
    fn a_batch_names_each_bad_event_by_index() {
        let body = format!(
            r#"{{"events":[{GOOD},{{"event":"add_stock","data":{{"product_id":1}}}},7,{GOOD},{{"events":[]}}]}}"#
        );
        let BodyError::InvalidItems { total, items } = parse_body(&body, 10).unwrap_err() else { panic!() };
        assert_eq!(total, 5);
        assert_eq!(items.iter().map(|i| i.index).collect::<Vec<_>>(), [1, 2, 4]);
        assert!(items[0].errors.iter().any(|e| e.contains("in_stock")), "{:?}", items[0]);
        assert_eq!(items[1].errors, ["the event is not a valid JSON object: it must start with '{'"]);
        assert_eq!(items[2].errors[0], "a batch's event cannot hold a batch (events)");
    }

    #[test]
    fn a_batch_is_bounded_and_not_mixed() {
        let body = format!(r#"{{"events":[{GOOD},{GOOD},{GOOD}]}}"#);
        assert_eq!(parse_body(&body, 2).unwrap_err(), BodyError::TooMany { max: 2, got: 3 });
        let one = |e: BodyError| match e {
            BodyError::Invalid(p) => p.errors[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(one(parse_body(r#"{"events":[]}"#, 2).unwrap_err()), "events: the batch is empty");
        assert_eq!(
            one(parse_body(r#"{"events":{}}"#, 2).unwrap_err()),
            "events must be a list of events, got an object"
        );
        let mixed = format!(r#"{{"event":"sale_mode","events":[{GOOD}]}}"#);
        assert!(one(parse_body(&mixed, 2).unwrap_err()).contains("not both"));
        assert!(parse(&format!(r#"{{"events":[{GOOD}]}}"#)).is_err(), "one-event parsing refuses a batch");
        let big = format!(r#"{{"events":[{{"event":"sale_mode","data":{{"note":"{}"}}}}]}}"#, "x".repeat(1000));
        let BodyError::InvalidItems { items, .. } = parse_body(&big, 2).unwrap_err() else { panic!() };
        assert!(items[0].errors[0].contains("at most 1000 bytes"), "{items:?}");
    }

    #[test]
    fn policy_refuses_reserved_names() {
        assert!(EventPolicy::new(["add_stock", "connect"]).is_err());
        assert!(EventPolicy::new([" "]).is_err());
        let p = EventPolicy::new(["add_stock", "price_list"]).unwrap();
        assert!(p.allows("price_list") && !p.allows("sale_mode"));
    }
}
