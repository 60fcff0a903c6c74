//! Property test (run briefly in CI) for the catch-up merge: whatever mix of duplicated,
//! reordered and replayed deliveries arrives, what is passed on per product only moves
//! forward, and ends at the newest value delivered.

use proptest::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use stock_client::ledger::Ledger;
use stock_protocol::{DeliveryMeta, StockSnapshot};

fn snapshot(product: i64, seq: u64) -> StockSnapshot {
    StockSnapshot::from_value(&json!({"product_id": product, "in_stock": seq, "discount_price": 1,
        "peak_hour_price": 1, "mediboy_offer_price": 1, "sync_at": "2024-01-01T00:00:00Z"}))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn passed_on_values_only_move_forward(
        // (product, seq) pairs in delivery order: duplicates and any order allowed.
        deliveries in prop::collection::vec((0i64..8, 1u64..60), 0..200),
    ) {
        let mut ledger = Ledger::default();
        let mut shown: HashMap<i64, u64> = HashMap::new();
        for (product, seq) in &deliveries {
            let meta = DeliveryMeta { seq: *seq, epoch: "e".into() };
            if ledger.admit(&snapshot(*product, *seq), Some(&meta)).is_ok() {
                let before = shown.insert(*product, *seq);
                prop_assert!(before.is_none_or(|b| b < *seq), "product {} went from {:?} to {}", product, before, seq);
            }
        }
        let mut newest: HashMap<i64, u64> = HashMap::new();
        for (product, seq) in &deliveries {
            let e = newest.entry(*product).or_insert(0);
            *e = (*e).max(*seq);
        }
        prop_assert_eq!(shown, newest);
        let max = deliveries.iter().map(|d| d.1).max();
        prop_assert_eq!(ledger.position(), (max.map(|_| "e".to_owned()), max));
    }
}
