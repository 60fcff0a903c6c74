//! The last-value cache: per product, the latest `add_stock` and its sequence number.
//!
//! Every global `add_stock` gets the next sequence number of the current epoch. A client
//! that reconnects names the last `(epoch, seq)` it saw and gets the latest snapshot of
//! every product changed since (not the intermediate ones), oldest first. A different
//! epoch (the bridge restarted and lost its memory) gets the whole current set.
//!
//! Limits: at most `max_products` products (the least recently changed are evicted
//! first) and nothing older than `max_age`. When an entry newer than the client's position
//! was evicted, the answer is marked `incomplete` so the client can say so.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stock_protocol::delivery::CatchUpItem;
use stock_protocol::{CatchUp, CatchUpRequest, DeliveryMeta};

use serde_json::value::RawValue;

struct Entry {
    seq: u64,
    data: Arc<RawValue>,
    at: Instant,
}

/// See the module docs.
pub struct LastValueCache {
    epoch: String,
    seq: u64,
    max_products: usize,
    max_age: Duration,
    by_product: HashMap<i64, Entry>,
    /// seq → product, for eviction in change order and for "changed since".
    by_seq: BTreeMap<u64, i64>,
    /// Highest sequence number evicted so far (0: none).
    evicted_up_to: u64,
}

impl LastValueCache {
    pub fn new(epoch: String, max_products: usize, max_age: Duration) -> Self {
        LastValueCache {
            epoch,
            seq: 0,
            max_products: max_products.max(1),
            max_age,
            by_product: HashMap::new(),
            by_seq: BTreeMap::new(),
            evicted_up_to: 0,
        }
    }

    /// A fresh epoch name: unique per process start.
    pub fn new_epoch() -> String {
        format!("{:x}-{:08x}", chrono::Utc::now().timestamp_millis(), rand::random::<u32>())
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn len(&self) -> usize {
        self.by_product.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_product.is_empty()
    }

    /// Stores `data` as the latest snapshot of `product_id` and returns its position.
    pub fn record(&mut self, product_id: i64, data: Arc<RawValue>, now: Instant) -> DeliveryMeta {
        self.seq += 1;
        let seq = self.seq;
        if let Some(old) = self.by_product.insert(product_id, Entry { seq, data, at: now }) {
            self.by_seq.remove(&old.seq);
        }
        self.by_seq.insert(seq, product_id);
        while self.by_product.len() > self.max_products {
            self.evict_oldest();
        }
        self.expire(now);
        DeliveryMeta { seq, epoch: self.epoch.clone() }
    }

    /// Everything a client at `req` has missed, in answers of at most about `max_bytes`
    /// of payload (at least one item each); a cut answer says `more`.
    /// Payloads are shared, not copied or parsed: the cache's lock is held only to pick them.
    pub fn since(&mut self, req: &CatchUpRequest, now: Instant, max_bytes: usize) -> CatchUp<Arc<RawValue>> {
        self.expire(now);
        let after = req.resume_after(&self.epoch, self.seq);
        let from = after.map_or(0, |a| a + 1);
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for (seq, product) in self.by_seq.range(from..) {
            let data = &self.by_product[product].data;
            if !items.is_empty() && bytes + data.get().len() > max_bytes {
                more = true;
                break;
            }
            bytes += data.get().len();
            items.push(CatchUpItem { seq: *seq, data: data.clone() });
        }
        CatchUp {
            epoch: self.epoch.clone(),
            seq: if more { items.last().map_or(self.seq, |i| i.seq) } else { self.seq },
            full: after.is_none(),
            incomplete: self.evicted_up_to > after.unwrap_or(0),
            items,
            more,
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((seq, product)) = self.by_seq.pop_first() {
            self.by_product.remove(&product);
            self.evicted_up_to = self.evicted_up_to.max(seq);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, product)) = self.by_seq.first_key_value() {
            let entry = &self.by_product[product];
            if now.saturating_duration_since(entry.at) <= self.max_age {
                break;
            }
            self.evict_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(product: i64, stock: i64) -> Arc<RawValue> {
        RawValue::from_string(format!(r#"{{"product_id":{product},"in_stock":{stock}}}"#)).unwrap().into()
    }

    fn stocks(c: &CatchUp<Arc<RawValue>>) -> Vec<(u64, i64, i64)> {
        c.items
            .iter()
            .map(|i| {
                let data: serde_json::Value = serde_json::from_str(i.data.get()).unwrap();
                (i.seq, data["product_id"].as_i64().unwrap(), data["in_stock"].as_i64().unwrap())
            })
            .collect()
    }

    #[test]
    fn gives_latest_value_per_product_changed_since() {
        let now = Instant::now();
        let mut c = LastValueCache::new("e1".into(), 100, Duration::from_secs(60));
        c.record(1, raw(1, 10), now);
        let m = c.record(2, raw(2, 20), now);
        assert_eq!(m, DeliveryMeta { seq: 2, epoch: "e1".into() });
        c.record(1, raw(1, 11), now);
        c.record(3, raw(3, 30), now);
        c.record(1, raw(1, 12), now);
        let req = CatchUpRequest { epoch: Some("e1".into()), after: Some(2) };
        let got = c.since(&req, now, usize::MAX);
        assert!(!got.full && !got.incomplete);
        assert_eq!(got.seq, 5);
        assert_eq!(stocks(&got), vec![(4, 3, 30), (5, 1, 12)]);
    }

    #[test]
    fn unknown_epoch_or_future_position_gets_the_full_set() {
        let now = Instant::now();
        let mut c = LastValueCache::new("e2".into(), 100, Duration::from_secs(60));
        c.record(1, raw(1, 10), now);
        c.record(2, raw(2, 20), now);
        for req in [
            CatchUpRequest { epoch: Some("e1".into()), after: Some(1) },
            CatchUpRequest { epoch: None, after: None },
            CatchUpRequest { epoch: Some("e2".into()), after: Some(99) },
        ] {
            let got = c.since(&req, now, usize::MAX);
            assert!(got.full, "{req:?}");
            assert_eq!(stocks(&got), vec![(1, 1, 10), (2, 2, 20)]);
        }
    }

    #[test]
    fn eviction_by_size_and_age_marks_answers_incomplete() {
        let t0 = Instant::now();
        let mut c = LastValueCache::new("e".into(), 2, Duration::from_secs(60));
        c.record(1, raw(1, 1), t0);
        c.record(2, raw(2, 2), t0);
        c.record(3, raw(3, 3), t0); // evicts product 1 (seq 1)
        assert_eq!(c.len(), 2);
        let since0 = c.since(&CatchUpRequest { epoch: Some("e".into()), after: Some(0) }, t0, usize::MAX);
        assert!(since0.incomplete);
        let since1 = c.since(&CatchUpRequest { epoch: Some("e".into()), after: Some(1) }, t0, usize::MAX);
        assert!(!since1.incomplete);
        assert_eq!(stocks(&since1), vec![(2, 2, 2), (3, 3, 3)]);
        let later = t0 + Duration::from_secs(61);
        let aged = c.since(&CatchUpRequest { epoch: Some("e".into()), after: Some(1) }, later, usize::MAX);
        assert!(aged.items.is_empty() && aged.incomplete && c.is_empty());
    }

    #[test]
    fn long_answers_are_paged_and_the_pages_add_up_to_the_whole() {
        let now = Instant::now();
        let mut c = LastValueCache::new("e".into(), 100, Duration::from_secs(60));
        for p in 1..=10 {
            c.record(p, raw(p, p), now);
        }
        let one = raw(1, 1).get().len();
        let mut req = CatchUpRequest::default();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = c.since(&req, now, one * 3);
            pages += 1;
            assert!(page.items.len() <= 3 && !page.items.is_empty());
            seen.extend(stocks(&page));
            req = CatchUpRequest { epoch: Some(page.epoch.clone()), after: Some(page.seq) };
            if !page.more {
                assert_eq!(page.seq, 10);
                break;
            }
            assert_eq!(page.seq, seen.last().unwrap().0, "resume after the last item given");
        }
        assert_eq!(pages, 4);
        assert_eq!(seen, (1..=10).map(|p| (p as u64, p, p)).collect::<Vec<_>>());
        let tiny = c.since(&CatchUpRequest::default(), now, 1);
        assert_eq!(tiny.items.len(), 1, "an answer always makes progress");
    }
}
