//! What deserves a desktop notification, and how notifications are spaced: a change of
//! sale mode, and a product the operator watches going out of stock or coming back.
//!
//! - [`Watchlist`]: the watched products and their last stock; turns a change into an
//!   [`Alert`] (the first sight of a product is not a change).
//! - [`Notifier`]: an owned task that shows at most one notice per [`MIN_GAP`]; what
//!   arrives in between is gathered into the next one ("7 watched products changed").
//!   A burst is gathered for [`GATHER`] first, so an import that empties ten watched
//!   products makes one notice, not ten.

use crate::dashboard::ProductRow;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// At most one notification per this long.
pub const MIN_GAP: Duration = Duration::from_secs(10);
/// How long a first alert waits for others of the same burst.
pub const GATHER: Duration = Duration::from_millis(500);
/// Alerts waiting to be shown at most (a notice says how many; older details are dropped).
const PENDING_MAX: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    SaleMode(String),
    OutOfStock { product: String },
    BackInStock { product: String },
}

/// One notification's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// The products an operator watches, and what was last seen of each.
#[derive(Debug, Default, Clone)]
pub struct Watchlist {
    watched: HashSet<i64>,
    stock: HashMap<i64, i64>,
    sale_mode: Option<String>,
}

impl Watchlist {
    pub fn new(watched: impl IntoIterator<Item = i64>) -> Self {
        Watchlist { watched: watched.into_iter().collect(), ..Default::default() }
    }

    pub fn set(&mut self, product: i64, watched: bool) {
        if watched {
            self.watched.insert(product);
        } else {
            self.watched.remove(&product);
        }
    }

    /// The watched products, in order.
    pub fn watched(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.watched.iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// A product's new values: an alert when a watched product ran out or came back.
    pub fn observe(&mut self, row: &ProductRow) -> Option<Alert> {
        let before = self.stock.insert(row.product_id, row.in_stock);
        if !self.watched.contains(&row.product_id) {
            return None;
        }
        let product = match &row.name {
            Some(name) => format!("{name} (#{})", row.product_id),
            None => format!("Product #{}", row.product_id),
        };
        match before {
            Some(b) if b > 0 && row.in_stock <= 0 => Some(Alert::OutOfStock { product }),
            Some(b) if b <= 0 && row.in_stock > 0 => Some(Alert::BackInStock { product }),
            _ => None,
        }
    }

    /// A `sale_mode` event: an alert when the mode differs from the one seen before.
    pub fn observe_sale_mode(&mut self, data: &Value) -> Option<Alert> {
        let mode = sale_mode_words(data);
        let before = self.sale_mode.replace(mode.clone());
        (before.is_some_and(|b| b != mode)).then_some(Alert::SaleMode(mode))
    }
}

/// `{"mode": "peak_hour"}` → "peak hour" (the banner's words).
pub fn sale_mode_words(data: &Value) -> String {
    let mode = ["mode", "sale_mode", "name"].iter().find_map(|k| data.get(k).and_then(Value::as_str));
    match mode {
        Some(m) => m.replace('_', " "),
        None => data.to_string(),
    }
}

/// The notice for `alerts` (at least one), `dropped` more having been left out.
pub fn notice(alerts: &[Alert], dropped: usize) -> Notice {
    let line = |a: &Alert| match a {
        Alert::SaleMode(mode) => format!("Sale mode is now {mode}"),
        Alert::OutOfStock { product } => format!("{product} is out of stock"),
        Alert::BackInStock { product } => format!("{product} is back in stock"),
    };
    let products = alerts.iter().filter(|a| !matches!(a, Alert::SaleMode(_))).count() + dropped;
    if alerts.len() == 1 && dropped == 0 {
        let title = match &alerts[0] {
            Alert::SaleMode(_) => "Sale mode changed",
            Alert::OutOfStock { .. } => "Out of stock",
            Alert::BackInStock { .. } => "Back in stock",
        };
        return Notice { title: title.into(), body: line(&alerts[0]) };
    }
    let title = match products {
        0 => "Sale mode changed".to_owned(),
        1 => "1 watched product changed".to_owned(),
        n => format!("{n} watched products changed"),
    };
    const SHOWN: usize = 5;
    let mut body: Vec<String> = alerts.iter().take(SHOWN).map(line).collect();
    let more = alerts.len().saturating_sub(SHOWN) + dropped;
    if more > 0 {
        body.push(format!("and {more} more"));
    }
    Notice { title, body: body.join("\n") }
}

/// See the module docs. Dropping it stops the task.
pub struct Notifier {
    alerts: mpsc::Sender<Alert>,
    /// Alerts that found the queue full (counted in the next notice).
    overflow: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Notifier {
    /// Shows each notice through `show` (the desktop's notification service).
    pub fn start(show: impl Fn(Notice) + Send + 'static) -> Notifier {
        let (alerts, mut rx) = mpsc::channel::<Alert>(PENDING_MAX);
        let overflow = Arc::new(AtomicUsize::new(0));
        let overflowed = overflow.clone();
        let task = tokio::spawn(async move {
            let mut last_shown: Option<Instant> = None;
            while let Some(first) = rx.recv().await {
                let mut pending = vec![first];
                let mut dropped = 0usize;
                let gather_until = Instant::now() + GATHER;
                let not_before = last_shown.map_or(gather_until, |t| (t + MIN_GAP).max(gather_until));
                let deadline = tokio::time::sleep_until(not_before);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        biased;
                        _ = &mut deadline => break,
                        next = rx.recv() => match next {
                            Some(alert) if pending.len() < PENDING_MAX => pending.push(alert),
                            Some(_) => dropped += 1,
                            None => break,
                        },
                    }
                }
                dropped += overflowed.swap(0, Ordering::Relaxed);
                show(notice(&pending, dropped));
                last_shown = Some(Instant::now());
            }
        });
        Notifier { alerts, overflow, task }
    }

    /// Queues `alert`; never waits (a full queue counts it as one more change).
    pub fn push(&self, alert: Alert) {
        if self.alerts.try_send(alert).is_err() {
            self.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn row(id: i64, in_stock: i64) -> ProductRow {
        ProductRow {
            product_id: id,
            name: None,
            in_stock,
            discount_price: 1.0,
            peak_hour_price: 1.0,
            mediboy_offer_price: 1.0,
            sync_at: "2026-12-01T10:00:00Z".into(),
            seq: None,
            received_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn only_watched_products_running_out_or_coming_back_alert() {
        let mut list = Watchlist::new([1]);
        assert_eq!(list.observe(&row(1, 5)), None, "first sight is not a change");
        assert_eq!(list.observe(&row(1, 3)), None);
        assert_eq!(list.observe(&row(1, 0)), Some(Alert::OutOfStock { product: "Product #1".into() }));
        assert_eq!(list.observe(&row(1, 0)), None);
        assert_eq!(list.observe(&row(1, 2)), Some(Alert::BackInStock { product: "Product #1".into() }));
        assert_eq!(list.observe(&row(2, 5)), None);
        assert_eq!(list.observe(&row(2, 0)), None, "not watched");
        list.set(2, true);
        assert_eq!(list.observe(&row(2, 4)), Some(Alert::BackInStock { product: "Product #2".into() }));
        assert_eq!(list.watched(), vec![1, 2]);
    }

    #[test]
    fn a_sale_mode_alerts_when_it_changes() {
        let mut list = Watchlist::default();
        assert_eq!(list.observe_sale_mode(&serde_json::json!({"mode": "normal"})), None);
        assert_eq!(list.observe_sale_mode(&serde_json::json!({"mode": "normal"})), None);
        assert_eq!(
            list.observe_sale_mode(&serde_json::json!({"mode": "peak_hour"})),
            Some(Alert::SaleMode("peak hour".into()))
        );
    }

    #[test]
    fn notices_say_one_thing_or_count_them() {
        let out = |id: i64| Alert::OutOfStock { product: format!("Product #{id}") };
        assert_eq!(
            notice(&[out(1)], 0),
            Notice { title: "Out of stock".into(), body: "Product #1 is out of stock".into() }
        );
        let seven: Vec<Alert> = (1..=7).map(out).collect();
        let n = notice(&seven, 0);
        assert_eq!(n.title, "7 watched products changed");
        assert!(n.body.ends_with("and 2 more"), "{}", n.body);
        let n = notice(&[Alert::SaleMode("peak hour".into()), out(3)], 0);
        assert_eq!(n.title, "1 watched product changed");
        assert_eq!(n.body, "Sale mode is now peak hour\nProduct #3 is out of stock");
    }

    /// The notices shown, with when.
    type Shown = Arc<Mutex<Vec<(Instant, Notice)>>>;

    fn recorder() -> (Shown, impl Fn(Notice) + Send + 'static) {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let into = shown.clone();
        (shown, move |n| into.lock().unwrap().push((Instant::now(), n)))
    }

    /// Lets the notifier task run until it waits on the clock again.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_notice_and_notices_are_ten_seconds_apart() {
        let (shown, show) = recorder();
        let notifier = Notifier::start(show);
        let start = Instant::now();
        for id in 1..=7 {
            notifier.push(Alert::OutOfStock { product: format!("Product #{id}") });
        }
        settle().await;
        tokio::time::sleep(GATHER - Duration::from_millis(1)).await;
        settle().await;
        assert!(shown.lock().unwrap().is_empty(), "gathering the burst");
        tokio::time::sleep(Duration::from_millis(2)).await;
        settle().await;
        let first_at = {
            let shown = shown.lock().unwrap();
            assert_eq!(shown.len(), 1);
            assert_eq!(shown[0].1.title, "7 watched products changed");
            assert_eq!(shown[0].0 - start, GATHER);
            shown[0].0
        };
        // Two more alerts 2 s later: held until 10 s after the first notice, then one notice.
        tokio::time::sleep(Duration::from_secs(2)).await;
        notifier.push(Alert::BackInStock { product: "Product #1".into() });
        notifier.push(Alert::SaleMode("peak hour".into()));
        settle().await;
        tokio::time::sleep_until(first_at + MIN_GAP - Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(shown.lock().unwrap().len(), 1, "not before 10 s after the last notice");
        tokio::time::sleep(Duration::from_millis(2)).await;
        settle().await;
        let shown = shown.lock().unwrap();
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[1].0 - shown[0].0, MIN_GAP);
        assert_eq!(shown[1].1.body, "Product #1 is back in stock\nSale mode is now peak hour");
    }
}
