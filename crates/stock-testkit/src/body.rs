//! What tests post: the test API key and broadcast bodies.

use serde_json::{Value, json};

/// The API key the tests' bridges are given (at least 16 characters, as the bridge requires).
pub const KEY: &str = "test-key-0123456789";

/// [`KEY`] as the bridge keeps it.
pub fn api_key() -> stock_bridge::api_key::ApiKey {
    stock_bridge::api_key::ApiKey::new(KEY)
}

/// A valid `add_stock` broadcast body for `product` (the documented shape).
pub fn add_stock(product: i64) -> Value {
    json!({"event": "add_stock", "data": {"product_id": product, "in_stock": 10, "discount_price": 120.5,
        "peak_hour_price": 140, "mediboy_offer_price": 90, "sync_at": "2024-01-01T00:00:00.000Z"}})
}
