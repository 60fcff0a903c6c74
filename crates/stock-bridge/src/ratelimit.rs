//! A token bucket for `POST /broadcast`: `rate` per second, bursts of one second's worth.

use std::sync::Mutex;
use std::time::Instant;

/// See the module docs.
pub struct RateLimiter {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        RateLimiter { rate, bucket: Mutex::new((rate, Instant::now())) }
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> bool {
        let mut guard = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *guard;
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_of_rate_then_refills() {
        let r = RateLimiter::new(10);
        let t = Instant::now();
        assert_eq!((0..20).filter(|_| r.try_acquire_at(t)).count(), 10);
        assert!(!r.try_acquire_at(t));
        assert!(r.try_acquire_at(t + Duration::from_millis(100)));
        assert!(!r.try_acquire_at(t + Duration::from_millis(100)));
    }
}
