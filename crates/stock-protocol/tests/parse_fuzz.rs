//! Property tests (run briefly in CI) for the broadcast body parser: whatever arrives, it
//! answers Ok or a list of readable errors, never panics, and keeps valid data byte for byte.

use proptest::prelude::*;
use serde_json::{Value, json};
use stock_protocol::{BroadcastRequest, EventPolicy};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_readable(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = BroadcastRequest::parse(&body, &EventPolicy::default()) {
            prop_assert!(!e.errors.is_empty());
            prop_assert!(e.errors.iter().all(|line| !line.is_empty() && line.len() < 400));
        }
    }

    #[test]
    fn arbitrary_json_envelopes_never_panic(event in json_value(), data in json_value(), to in json_value()) {
        let body = json!({"event": event, "data": data, "to": to}).to_string();
        let _ = BroadcastRequest::parse(body.as_bytes(), &EventPolicy::default());
    }

    #[test]
    fn valid_add_stock_with_any_extra_fields_is_kept_exactly(
        product_id in any::<i64>(), in_stock in any::<i64>(),
        prices in prop::array::uniform3(0.0f64..1e9),
        extra in prop::collection::btree_map("x_[a-z]{1,6}", json_value(), 0..4),
    ) {
        let mut data = json!({"product_id": product_id, "in_stock": in_stock, "discount_price": prices[0],
            "peak_hour_price": prices[1], "mediboy_offer_price": prices[2], "sync_at": "2024-01-01T00:00:00.000Z"});
        for (k, v) in extra { data[k] = v; }
        let text = data.to_string();
        let body = format!(r#"{{"event":"add_stock","data":{text}}}"#);
        let parsed = BroadcastRequest::parse(body.as_bytes(), &EventPolicy::default()).unwrap();
        prop_assert_eq!(parsed.data.get(), text.as_str());
        prop_assert_eq!(parsed.snapshot.unwrap().product_id, product_id);
    }
}
