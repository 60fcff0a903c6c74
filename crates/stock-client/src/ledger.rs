//! What the client has already shown, so catch-up and live delivery merge into one
//! ordered, duplicate-free stream.
//!
//! Per product the ledger keeps the sequence number and `sync_at` of the snapshot last
//! passed on. A snapshot is passed on only if it is newer: by sequence within the same
//! epoch, otherwise (no sequence, or a new epoch) by `sync_at`. The highest sequence seen
//! is the position the next catch-up asks from.
//!
//! It remembers at most [`Ledger::capacity`] products (as the bridge caps its cache): past
//! that the quarter passed on longest ago is forgotten, so a server that sends millions of
//! product ids cannot grow the client. A forgotten product is admitted again like a new one.

use chrono::{DateTime, FixedOffset};
use std::collections::HashMap;
use stock_protocol::{DeliveryMeta, StockSnapshot};

#[derive(Debug, Clone)]
struct Seen {
    seq: Option<u64>,
    sync_at: Option<DateTime<FixedOffset>>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Ledger {
    epoch: Option<String>,
    seq: u64,
    products: HashMap<i64, Seen>,
    capacity: usize,
}

/// Products a ledger remembers by default (ten times the bridge's default cache).
pub const DEFAULT_LEDGER_PRODUCTS: usize = 100_000;

impl Default for Ledger {
    fn default() -> Self {
        Ledger::with_capacity(DEFAULT_LEDGER_PRODUCTS)
    }
}

/// Why a snapshot was not passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Already passed on (same sequence).
    Duplicate,
    /// Older than what was already passed on.
    Stale,
}

impl Ledger {
    /// A ledger remembering at most `capacity` products (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Ledger { epoch: None, seq: 0, products: HashMap::new(), capacity: capacity.max(1) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Products remembered now.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Forgets the quarter of the products passed on longest ago (by sequence, then
    /// `sync_at`), once over capacity: amortised over a quarter of the capacity's inserts.
    fn shed(&mut self) {
        if self.products.len() <= self.capacity {
            return;
        }
        let keep = self.capacity - self.capacity / 4;
        let mut ages: Vec<(u64, Option<DateTime<FixedOffset>>, i64)> =
            self.products.iter().map(|(id, seen)| (seen.seq.unwrap_or(0), seen.sync_at, *id)).collect();
        let cut = ages.len() - keep;
        ages.select_nth_unstable(cut - 1);
        for (_, _, id) in &ages[..cut] {
            self.products.remove(id);
        }
        self.products.shrink_to(self.capacity + 1);
    }

    /// The position to resume from: `(epoch, highest sequence)`.
    pub fn position(&self) -> (Option<String>, Option<u64>) {
        (self.epoch.clone(), self.epoch.as_ref().map(|_| self.seq))
    }

    /// Records `snapshot` if it is newer than what was passed on for its product.
    pub fn admit(&mut self, snapshot: &StockSnapshot, meta: Option<&DeliveryMeta>) -> Result<(), Skip> {
        if let Some(meta) = meta
            && self.epoch.as_deref() != Some(meta.epoch.as_str())
        {
            // A new bridge memory: earlier sequence numbers mean nothing any more.
            self.epoch = Some(meta.epoch.clone());
            self.seq = 0;
            for seen in self.products.values_mut() {
                seen.seq = None;
            }
        }
        let seq = meta.map(|m| m.seq);
        let sync_at = snapshot.synced_at();
        if let Some(seen) = self.products.get(&snapshot.product_id) {
            match (seen.seq, seq) {
                (Some(a), Some(b)) if b == a => return Err(Skip::Duplicate),
                (Some(a), Some(b)) if b < a => return Err(Skip::Stale),
                (Some(_), Some(_)) => {}
                _ => {
                    if let (Some(a), Some(b)) = (seen.sync_at, sync_at) {
                        // Equal times pass: without a sequence two updates in the
                        // same millisecond cannot be told from a repeat.
                        if b < a {
                            return Err(Skip::Stale);
                        }
                    }
                }
            }
        }
        if let Some(seq) = seq {
            self.seq = self.seq.max(seq);
        }
        self.products.insert(snapshot.product_id, Seen { seq, sync_at });
        self.shed();
        Ok(())
    }

    /// Forgets what was passed on for `product_id` (it did not reach the embedder).
    pub fn forget(&mut self, product_id: i64) {
        self.products.remove(&product_id);
    }

    /// Moves the position to at least `seq` of `epoch` (a catch-up answer's high mark).
    pub fn advance(&mut self, epoch: &str, seq: u64) {
        if self.epoch.as_deref() == Some(epoch) {
            self.seq = self.seq.max(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(product: i64, stock: i64, sync_at: &str) -> StockSnapshot {
        StockSnapshot::from_value(&json!({"product_id": product, "in_stock": stock, "discount_price": 1,
            "peak_hour_price": 1, "mediboy_offer_price": 1, "sync_at": sync_at}))
        .unwrap()
    }
    fn meta(seq: u64, epoch: &str) -> DeliveryMeta {
        DeliveryMeta { seq, epoch: epoch.into() }
    }
    const T1: &str = "2024-01-01T00:00:01Z";
    const T2: &str = "2024-01-01T00:00:02Z";

    #[test]
    fn drops_duplicates_and_out_of_order_by_sequence() {
        let mut l = Ledger::default();
        assert_eq!(l.admit(&snap(1, 5, T1), Some(&meta(3, "e"))), Ok(()));
        assert_eq!(l.admit(&snap(1, 5, T1), Some(&meta(3, "e"))), Err(Skip::Duplicate));
        assert_eq!(l.admit(&snap(1, 4, T2), Some(&meta(2, "e"))), Err(Skip::Stale), "sequence beats sync_at");
        assert_eq!(l.admit(&snap(2, 1, T1), Some(&meta(1, "e"))), Ok(()), "other products are independent");
        assert_eq!(l.position(), (Some("e".into()), Some(3)));
    }

    #[test]
    fn new_epoch_falls_back_to_sync_at() {
        let mut l = Ledger::default();
        l.admit(&snap(1, 5, T2), Some(&meta(9, "old"))).unwrap();
        assert_eq!(l.admit(&snap(1, 4, T1), Some(&meta(1, "new"))), Err(Skip::Stale));
        assert_eq!(l.admit(&snap(1, 6, T2), Some(&meta(2, "new"))), Ok(()));
        assert_eq!(l.position(), (Some("new".into()), Some(2)));
    }

    #[test]
    fn remembers_at_most_its_capacity_and_forgets_the_oldest_first() {
        let mut l = Ledger::with_capacity(1_000);
        for id in 0..100_000 {
            l.admit(&snap(id, 1, T1), Some(&meta(id as u64 + 1, "e"))).unwrap();
            assert!(l.len() <= 1_000, "grew to {} at {id}", l.len());
        }
        assert_eq!(l.position(), (Some("e".into()), Some(100_000)), "the position is kept");
        assert_eq!(l.admit(&snap(99_999, 1, T1), Some(&meta(100_000, "e"))), Err(Skip::Duplicate), "recent: kept");
        assert_eq!(l.admit(&snap(0, 1, T1), Some(&meta(1, "e"))), Ok(()), "oldest: forgotten, taken as new");
    }

    #[test]
    fn without_sequence_uses_sync_at() {
        let mut l = Ledger::default();
        assert_eq!(l.admit(&snap(1, 5, T2), None), Ok(()));
        assert_eq!(l.admit(&snap(1, 6, T2), None), Ok(()), "same time, no sequence: passes");
        assert_eq!(l.admit(&snap(1, 4, T1), None), Err(Skip::Stale));
        assert_eq!(l.position(), (None, None));
    }
}
