//! The `add_stock` payload: one product's stock and prices at a moment.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A product's stock and prices as the back office sent them.
///
/// Unknown fields are kept in `extra` and written back out unchanged, so a payload
/// survives a parse/serialize round trip with every field it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockSnapshot {
    pub product_id: i64,
    pub in_stock: i64,
    pub discount_price: f64,
    pub peak_hour_price: f64,
    pub mediboy_offer_price: f64,
    /// RFC 3339 timestamp, kept as sent.
    pub sync_at: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StockSnapshot {
    /// Checks `data` against the `add_stock` contract and returns it typed, or one
    /// readable line per problem (all problems, not only the first).
    pub fn from_value(data: &Value) -> Result<Self, Vec<String>> {
        let Some(obj) = data.as_object() else {
            return Err(vec![format!("data must be an object, got {}", kind(data))]);
        };
        let mut errors = Vec::new();
        let product_id = integer(obj, "product_id", &mut errors);
        let in_stock = integer(obj, "in_stock", &mut errors);
        let discount_price = price(obj, "discount_price", &mut errors);
        let peak_hour_price = price(obj, "peak_hour_price", &mut errors);
        let mediboy_offer_price = price(obj, "mediboy_offer_price", &mut errors);
        let sync_at = match obj.get("sync_at") {
            None => {
                errors.push("data.sync_at is missing".to_owned());
                None
            }
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(_) => Some(s.clone()),
                Err(_) => {
                    errors.push(format!("data.sync_at must be an RFC 3339 timestamp, got {:?}", truncate(s)));
                    None
                }
            },
            Some(other) => {
                errors.push(format!("data.sync_at must be an RFC 3339 string, got {}", kind(other)));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let extra = obj
            .iter()
            .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(StockSnapshot {
            product_id: product_id.unwrap_or_default(),
            in_stock: in_stock.unwrap_or_default(),
            discount_price: discount_price.unwrap_or_default(),
            peak_hour_price: peak_hour_price.unwrap_or_default(),
            mediboy_offer_price: mediboy_offer_price.unwrap_or_default(),
            sync_at: sync_at.unwrap_or_default(),
            extra,
        })
    }

    /// `sync_at` as a timestamp (always parses for a validated snapshot).
    pub fn synced_at(&self) -> Option<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(&self.sync_at).ok()
    }
}

/// The six fields every `add_stock` carries.
pub const KNOWN_FIELDS: [&str; 6] =
    ["product_id", "in_stock", "discount_price", "peak_hour_price", "mediboy_offer_price", "sync_at"];

fn integer(obj: &Map<String, Value>, field: &str, errors: &mut Vec<String>) -> Option<i64> {
    match obj.get(field) {
        None => errors.push(format!("data.{field} is missing")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => return Some(v),
            None => errors.push(format!("data.{field} must be an integer, got {n}")),
        },
        Some(other) => errors.push(format!("data.{field} must be an integer, got {}", kind(other))),
    }
    None
}

fn price(obj: &Map<String, Value>, field: &str, errors: &mut Vec<String>) -> Option<f64> {
    match obj.get(field) {
        None => errors.push(format!("data.{field} is missing")),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v >= 0.0 && v.is_finite() => return Some(v),
            _ => errors.push(format!("data.{field} must be a non-negative number, got {n}")),
        },
        Some(other) => errors.push(format!("data.{field} must be a number, got {}", kind(other))),
    }
    None
}

/// A JSON type name for error texts.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Caps echoed input in error texts.
pub(crate) fn truncate(s: &str) -> String {
    crate::text::truncate(s, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"product_id":5486,"in_stock":10,"discount_price":120,"peak_hour_price":140.5,
               "mediboy_offer_price":90,"sync_at":"2024-01-01T00:00:00.000Z"})
    }

    #[test]
    fn accepts_the_documented_example_and_keeps_extra_fields() {
        let mut v = valid();
        v["batch"] = json!({"lot": "A1"});
        let s = StockSnapshot::from_value(&v).unwrap();
        assert_eq!(s.product_id, 5486);
        assert_eq!(s.peak_hour_price, 140.5);
        assert_eq!(s.extra["batch"], json!({"lot": "A1"}));
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["batch"], v["batch"]);
        assert_eq!(back["sync_at"], v["sync_at"]);
    }

    #[test]
    fn reports_every_wrong_field_readably() {
        let v = json!({"product_id":"5486","in_stock":1.5,"discount_price":-1,
                       "mediboy_offer_price":"9","sync_at":"yesterday"});
        let errors = StockSnapshot::from_value(&v).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "data.product_id must be an integer, got a string",
                "data.in_stock must be an integer, got 1.5",
                "data.discount_price must be a non-negative number, got -1",
                "data.peak_hour_price is missing",
                "data.mediboy_offer_price must be a number, got a string",
                "data.sync_at must be an RFC 3339 timestamp, got \"yesterday\"",
            ]
        );
    }

    #[test]
    fn refuses_non_objects_and_huge_integers() {
        assert_eq!(StockSnapshot::from_value(&json!([1])).unwrap_err(), vec!["data must be an object, got an array"]);
        let mut v = valid();
        v["product_id"] = serde_json::from_str("123456789012345678901234567890").unwrap();
        assert!(StockSnapshot::from_value(&v).unwrap_err()[0].starts_with("data.product_id must be an integer"));
    }
}
