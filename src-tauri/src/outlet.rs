//! The one place that hands anything to the page: a queue of [`PageUpdate`]s that the page
//! pulls from with the `next_updates` command. It only delivers: the model (the
//! dashboard, which a (re)loaded page reads whole) is kept by [`crate::state::AppState`],
//! which records each event there before publishing its change here. Batching happens
//! here and only here: the page draws each batch as it gets it.
//!
//! Why pull rather than a `tauri::ipc::Channel`: a Channel delivers each message by
//! evaluating a new script in the web process, and WebKitGTK keeps memory for each of
//! them (measured: +2.7 MiB per 1,000 updates); an answer to a command comes back over
//! the IPC protocol and costs a fraction of that (+0.58 MiB). See README, "App benchmark".
//!
//! # How a page pulls
//! - `subscribe` starts a new *generation* (the page's number) and drops what was queued
//!   for an older page; the new page then reads the whole view with `dashboard`.
//! - `next_updates(generation)` answers at once when something is queued, else waits up to
//!   [`POLL_WAIT`] (then answers with nothing, and the page asks again). A stale generation
//!   (a reloaded page's orphaned call) is refused with [`PullError::Superseded`] and takes
//!   nothing away from the current page.
//! - Two answers are at least [`FLUSH_EVERY`] (about one frame) apart; what arrives in
//!   between goes as one batch in which only the latest snapshot of each product is kept.
//!   A quiet feed gets no added delay; a burst gives the page one batch per frame.
//! - The queue is bounded: past [`MAX_QUEUED`] updates (a page that stopped asking) it is
//!   dropped and the next answer says `resync` (and nothing else), so the page reloads
//!   the view instead of missing anything.

use crate::page::PageUpdate;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The shortest time between two answers to the page.
pub const FLUSH_EVERY: Duration = Duration::from_millis(16);
/// How long `next_updates` waits for something before it answers with nothing.
pub const POLL_WAIT: Duration = Duration::from_secs(20);
/// The most updates kept for a page that does not ask for them.
pub const MAX_QUEUED: usize = 20_000;

/// See the module docs.
#[derive(Clone, Default)]
pub struct Outlet {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
}

/// One answer to `next_updates`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Batch {
    pub updates: Vec<PageUpdate>,
    /// Updates were dropped (the queue overflowed): reload the whole view.
    pub resync: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("a newer page has subscribed; this one no longer gets updates")]
    Superseded,
}

#[derive(Default)]
struct Queue {
    /// The current page's generation; 0 while no page has subscribed.
    generation: u64,
    updates: Vec<PageUpdate>,
    /// product id → its position in `updates`, so a newer snapshot replaces the queued one.
    stock_at: HashMap<i64, usize>,
    resync: bool,
    last_answer: Option<Instant>,
}

impl Queue {
    fn take(&mut self, now: Instant) -> Batch {
        self.stock_at.clear();
        self.last_answer = Some(now);
        Batch { updates: std::mem::take(&mut self.updates), resync: std::mem::take(&mut self.resync) }
    }

    fn has_news(&self) -> bool {
        !self.updates.is_empty() || self.resync
    }
}

impl Outlet {
    /// Starts a new page generation; the previous page's pending call is answered with
    /// [`PullError::Superseded`].
    pub fn subscribe(&self) -> u64 {
        let mut queue = lock(&self.queue);
        queue.generation += 1;
        queue.updates.clear();
        queue.stock_at.clear();
        queue.resync = false;
        let generation = queue.generation;
        drop(queue);
        self.wake.notify_waiters();
        generation
    }

    /// Queues `update` for the page.
    pub fn publish(&self, update: PageUpdate) {
        let mut queue = lock(&self.queue);
        if queue.generation == 0 || queue.resync {
            // No page yet, or the page will reload the whole view: the view has this too.
            return;
        }
        let queue = &mut *queue;
        let slot = update.product_id().and_then(|id| queue.stock_at.get(&id).copied());
        match slot {
            Some(i) => queue.updates[i] = update,
            None if queue.updates.len() >= MAX_QUEUED => {
                queue.updates.clear();
                queue.stock_at.clear();
                queue.resync = true;
            }
            None => {
                if let Some(id) = update.product_id() {
                    queue.stock_at.insert(id, queue.updates.len());
                }
                queue.updates.push(update);
            }
        }
        self.wake.notify_waiters();
    }

    /// The next batch for the page of `generation`: see the module docs.
    pub async fn next_updates(&self, generation: u64) -> Result<Batch, PullError> {
        let give_up = Instant::now() + POLL_WAIT;
        loop {
            // Registered before looking, so a publish between the look and the wait wakes it.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let ready_at = {
                let mut queue = lock(&self.queue);
                if queue.generation != generation {
                    return Err(PullError::Superseded);
                }
                let now = Instant::now();
                match queue.last_answer.map(|t| t + FLUSH_EVERY) {
                    Some(at) if at > now && queue.has_news() => Some(at),
                    _ if queue.has_news() => return Ok(queue.take(now)),
                    _ if now >= give_up => return Ok(Batch::default()),
                    _ => None,
                }
            };
            match ready_at {
                // Too soon after the last answer: the rest of this frame's news joins in.
                Some(at) => tokio::time::sleep_until(at).await,
                None => {
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep_until(give_up) => {}
                    }
                }
            }
        }
    }
}

/// A poisoned lock still holds usable data here (plain values, no invariants across locks).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stock_client::dashboard::ProductRow;

    fn stock(product_id: i64, in_stock: i64) -> PageUpdate {
        PageUpdate::Stock(ProductRow {
            product_id,
            name: None,
            in_stock,
            discount_price: 1.5,
            peak_hour_price: 2.0,
            mediboy_offer_price: 1.0,
            sync_at: "2024-01-01T00:00:00Z".into(),
            seq: None,
            received_at: chrono::Utc::now(),
        })
    }

    /// A batch as (product, in_stock) pairs.
    fn rows(batch: &Batch) -> Vec<(i64, i64)> {
        batch
            .updates
            .iter()
            .map(|u| match u {
                PageUpdate::Stock(r) => (r.product_id, r.in_stock),
                other => panic!("not a stock update: {other:?}"),
            })
            .collect()
    }

    async fn pull(outlet: &Outlet, generation: u64) -> Batch {
        tokio::time::timeout(POLL_WAIT * 2, outlet.next_updates(generation))
            .await
            .expect("an answer in time")
            .expect("current page")
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_feed_is_answered_at_once_and_a_burst_in_one_batch_per_frame() {
        let outlet = Outlet::default();
        let page = outlet.subscribe();

        // The page is already waiting when the update comes.
        let waiting = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.next_updates(page).await }
        });
        tokio::task::yield_now().await;
        let before = Instant::now();
        outlet.publish(stock(1, 10));
        assert_eq!(rows(&waiting.await.unwrap().unwrap()), vec![(1, 10)]);
        assert_eq!(before.elapsed(), Duration::ZERO, "a lone update waits for nothing");

        // Within the frame after it: one batch at the frame's end, the latest per product.
        outlet.publish(stock(1, 11));
        outlet.publish(stock(2, 20));
        outlet.publish(stock(1, 12));
        assert_eq!(rows(&pull(&outlet, page).await), vec![(1, 12), (2, 20)]);
        assert_eq!(before.elapsed(), FLUSH_EVERY);

        // After a quiet frame, again at once.
        tokio::time::sleep(FLUSH_EVERY * 3).await;
        let quiet = Instant::now();
        outlet.publish(stock(3, 30));
        assert_eq!(rows(&pull(&outlet, page).await), vec![(3, 30)]);
        assert_eq!(quiet.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_waits_at_most_poll_wait_then_gets_an_empty_answer() {
        let outlet = Outlet::default();
        let page = outlet.subscribe();
        let before = Instant::now();
        let batch = pull(&outlet, page).await;
        assert!(batch.updates.is_empty() && !batch.resync);
        assert_eq!(before.elapsed(), POLL_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reloaded_page_supersedes_the_old_one_which_takes_nothing() {
        let outlet = Outlet::default();
        outlet.publish(stock(9, 90)); // before any page: the page reads the view instead
        let old = outlet.subscribe();
        let orphan = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.next_updates(old).await }
        });
        tokio::task::yield_now().await;
        let new = outlet.subscribe();
        assert_eq!(orphan.await.unwrap().unwrap_err(), PullError::Superseded, "the waiting call ends at once");
        outlet.publish(stock(1, 10));
        assert_eq!(outlet.next_updates(old).await.unwrap_err(), PullError::Superseded);
        assert_eq!(rows(&pull(&outlet, new).await), vec![(1, 10)], "the old page took nothing, nor queued before");
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_that_stops_asking_gets_a_resync_instead_of_an_unbounded_queue() {
        let outlet = Outlet::default();
        let page = outlet.subscribe();
        for product in 0..(MAX_QUEUED as i64) {
            outlet.publish(stock(product, 1));
        }
        assert_eq!(lock(&outlet.queue).updates.len(), MAX_QUEUED);
        outlet.publish(stock(0, 2)); // replaces a queued one: still fits
        assert!(!lock(&outlet.queue).resync);
        outlet.publish(stock(MAX_QUEUED as i64, 1)); // one more product: too many
        outlet.publish(stock(7, 7)); // the reloaded view will have it
        let batch = pull(&outlet, page).await;
        assert!(batch.resync && batch.updates.is_empty(), "told to reload, with nothing half-delivered");
        outlet.publish(stock(5, 6));
        let batch = pull(&outlet, page).await;
        assert!(!batch.resync);
        assert_eq!(rows(&batch), vec![(5, 6)]);
    }
}
