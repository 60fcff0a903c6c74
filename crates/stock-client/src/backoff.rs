//! Reconnect delays: capped exponential backoff with jitter, socket.io-client's defaults.

use rand::Rng;
use std::time::Duration;

/// `delay(n) = min * factor^n`, randomised by ±`jitter`, never above `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub factor: f64,
    /// 0.0 to 1.0: how far a delay may stray from its nominal value.
    pub jitter: f64,
}

impl Default for Backoff {
    /// socket.io-client's: 1 s, doubling, at most 5 s, ±50 %.
    fn default() -> Self {
        Backoff { min: Duration::from_secs(1), max: Duration::from_secs(5), factor: 2.0, jitter: 0.5 }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based), using `rng` for the jitter.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.min.as_secs_f64() * self.factor.powi(attempt.min(64) as i32);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let deviation = if jitter > 0.0 { rng.random_range(-jitter..=jitter) * nominal } else { 0.0 };
        let secs = (nominal + deviation).clamp(0.0, self.max.as_secs_f64());
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn grows_then_caps_and_stays_within_jitter() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..50 {
            let d = b.delay(attempt, &mut rng).as_secs_f64();
            let nominal = (1.0 * 2f64.powi(attempt as i32)).min(1e9);
            assert!(d <= 5.0, "attempt {attempt}: {d}");
            assert!(d >= (nominal * 0.5).min(5.0) - 1e-9 || d == 5.0, "attempt {attempt}: {d}");
        }
        let exact = Backoff { jitter: 0.0, ..b };
        let delays: Vec<u64> = (0..5).map(|a| exact.delay(a, &mut rng).as_millis() as u64).collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 5000, 5000]);
    }
}
