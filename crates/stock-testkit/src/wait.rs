//! Bounded waits: every wait in a test has a timeout and says what it waited for.

use std::future::Future;
use std::time::Duration;

/// How long one step of a test may take unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);

/// How often [`eventually`] looks again.
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Resolves once `condition` gives true, looking again every [`POLL_EVERY`]; panics
/// naming `what` when `within` has passed first (a condition that never holds fails the
/// test instead of hanging it). Under tokio's paused clock the looks advance the clock.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let looked = tokio::time::timeout(within, async {
        while !condition().await {
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;
    if looked.is_err() {
        panic!("{what}: not within {within:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn resolves_once_the_condition_holds() {
        let looks = AtomicUsize::new(0);
        eventually("the third look", WAIT, || async { looks.fetch_add(1, Ordering::Relaxed) == 2 }).await;
        assert_eq!(looks.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "never: not within")]
    async fn fails_when_the_condition_never_holds() {
        eventually("never", Duration::from_secs(1), || async { false }).await;
    }
}
