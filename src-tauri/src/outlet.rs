//! The one place that sends anything to the page: the [`tauri::ipc::Channel`] the page
//! handed over with `subscribe` (ordered, fast). Every update also goes into the
//! [`Dashboard`] first, so a page that (re)loads can ask for the whole view.
//!
//! An update is sent at once when nothing was sent in the last [`FLUSH_EVERY`] (about one
//! frame); what arrives within that time waits for its end and goes as one batch, in which
//! only the latest snapshot of each product is kept. A quiet feed gets no added delay, and
//! under a burst the page gets a bounded number of messages, instead of one script
//! evaluation in WebKit per update.
//!
//! The sending task starts with the first `subscribe` and is owned by the outlet: it stops
//! when the last clone of the [`Outlet`] is dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use stock_client::dashboard::{Dashboard, UiUpdate};
use stock_client::ClientEvent;
use tauri::ipc::Channel;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The shortest time between two messages to the page.
pub const FLUSH_EVERY: Duration = Duration::from_millis(16);

/// See the module docs.
#[derive(Clone, Default)]
pub struct Outlet {
    queue: Arc<Queue>,
    sender: Arc<Mutex<Option<SenderTask>>>,
    pub dashboard: Arc<Mutex<Dashboard>>,
}

/// What the sending task shares with the outlet (never the task's own handle, so dropping
/// the outlet can stop it).
#[derive(Default)]
struct Queue {
    channel: Mutex<Option<Channel<Vec<UiUpdate>>>>,
    pending: Mutex<Vec<UiUpdate>>,
    wake: Notify,
}

/// The sending task; aborted when dropped.
struct SenderTask(JoinHandle<()>);

impl Drop for SenderTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Outlet {
    /// The page's channel; a newer page replaces an older one.
    pub fn subscribe(&self, channel: Channel<Vec<UiUpdate>>) {
        *lock(&self.queue.channel) = Some(channel);
        let mut sender = lock(&self.sender);
        if sender.is_none() {
            let queue = Arc::clone(&self.queue);
            // The caller's runtime when there is one (tests), else the app's.
            let runtime = tokio::runtime::Handle::try_current()
                .unwrap_or_else(|_| tauri::async_runtime::handle().inner().clone());
            *sender = Some(SenderTask(runtime.spawn(async move {
                loop {
                    // A wake-up during the pause below is kept by `Notify` (one permit).
                    queue.wake.notified().await;
                    queue.send_pending();
                    tokio::time::sleep(FLUSH_EVERY).await;
                }
            })));
        }
    }

    /// Records `event` and queues what to tell the page.
    pub fn publish(&self, event: ClientEvent) -> UiUpdate {
        let update = lock(&self.dashboard).apply(event);
        if lock(&self.queue.channel).is_none() {
            // No page yet: it will read the whole view from the dashboard when it loads.
            return update;
        }
        let mut pending = lock(&self.queue.pending);
        let replaced = match &update {
            UiUpdate::Stock(row) => pending
                .iter_mut()
                .find(|u| matches!(u, UiUpdate::Stock(r) if r.product_id == row.product_id))
                .map(|slot| *slot = update.clone())
                .is_some(),
            _ => false,
        };
        if !replaced {
            pending.push(update.clone());
        }
        drop(pending);
        self.queue.wake.notify_one();
        update
    }
}

impl Queue {
    fn send_pending(&self) {
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            return;
        }
        let channel = lock(&self.channel).clone();
        if let Some(channel) = channel {
            if let Err(e) = channel.send(batch) {
                tracing::debug!("the page is not listening: {e}");
            }
        }
    }
}

/// A poisoned lock still holds usable data here (plain values, no invariants across fields).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use stock_protocol::StockSnapshot;
    use tauri::ipc::InvokeResponseBody;

    fn stock(product: i64, in_stock: i64) -> ClientEvent {
        let raw = json!({"product_id": product, "in_stock": in_stock, "discount_price": 1.5, "peak_hour_price": 2,
            "mediboy_offer_price": 1, "sync_at": "2024-01-01T00:00:00Z"});
        ClientEvent::Stock { snapshot: StockSnapshot::from_value(&raw).unwrap(), meta: None, raw }
    }

    /// Each message the page got, as (product, in_stock) pairs.
    type Received = tokio::sync::mpsc::UnboundedReceiver<Vec<(i64, i64)>>;

    /// A channel that records each message the page would get.
    fn recording_channel() -> (Channel<Vec<UiUpdate>>, Received) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let channel = Channel::new(move |body| {
            let InvokeResponseBody::Json(text) = body else { panic!("the outlet sends JSON") };
            let batch: Vec<Value> = serde_json::from_str(&text).unwrap();
            let rows = batch.iter().map(|u| (u["product_id"].as_i64().unwrap(), u["in_stock"].as_i64().unwrap())).collect();
            let _ = tx.send(rows);
            Ok(())
        });
        (channel, rx)
    }

    async fn next(rx: &mut Received) -> Vec<(i64, i64)> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a message in time").expect("channel open")
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_feed_is_sent_at_once_and_a_burst_in_one_batch_per_frame() {
        let outlet = Outlet::default();
        let (channel, mut rx) = recording_channel();
        outlet.subscribe(channel);

        let before = tokio::time::Instant::now();
        outlet.publish(stock(1, 10));
        assert_eq!(next(&mut rx).await, vec![(1, 10)]);
        assert_eq!(before.elapsed(), Duration::ZERO, "a lone update waits for nothing");

        // Within the frame after it: one batch at the frame's end, the latest per product.
        outlet.publish(stock(1, 11));
        outlet.publish(stock(2, 20));
        outlet.publish(stock(1, 12));
        assert_eq!(next(&mut rx).await, vec![(1, 12), (2, 20)]);
        assert_eq!(before.elapsed(), FLUSH_EVERY);

        // After a quiet frame, again at once.
        tokio::time::sleep(FLUSH_EVERY * 3).await;
        let quiet = tokio::time::Instant::now();
        outlet.publish(stock(3, 30));
        assert_eq!(next(&mut rx).await, vec![(3, 30)]);
        assert_eq!(quiet.elapsed(), Duration::ZERO);
        assert!(rx.try_recv().is_err(), "nothing else was sent");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_last_outlet_stops_its_sending_task() {
        let outlet = Outlet::default();
        let (channel, _rx) = recording_channel();
        outlet.subscribe(channel);
        let clone = outlet.clone();
        let queue = Arc::downgrade(&outlet.queue);
        drop(outlet);
        tokio::task::yield_now().await;
        assert!(queue.upgrade().is_some(), "a clone still holds the outlet");
        drop(clone);
        tokio::time::timeout(Duration::from_secs(5), async {
            while queue.upgrade().is_some() {
                // A sleep, not a yield: the paused clock only moves while the runtime idles.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the sending task let go of the queue");
    }
}
