//! Exponential backoff with jitter, for polls of an unreachable source and retries of
//! transient failures. Pure: the caller supplies the clock.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns how long to wait before the next try: base·2ⁿ,
    /// capped, with up to 10% jitter from `seed` so that many agents do not retry in
    /// lockstep.
    pub fn fail(&mut self, seed: u64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(20);
        let delay = self.base.saturating_mul(1 << exp).min(self.cap);
        delay + jitter(delay, seed)
    }
}

/// Longest `Retry-After` honoured: a server that names a day must not stop a
/// cluster's updates for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait after a failure that may say when to come back (`Retry-After`): the
/// backoff's wait, or the server's time (capped, plus jitter so that a fleet told
/// the same time does not return at the same instant), whichever is longer.
pub fn honour(backoff: Duration, retry_after: Option<Duration>, seed: u64) -> Duration {
    match retry_after {
        Some(asked) => {
            let asked = asked.min(MAX_RETRY_AFTER);
            backoff.max(asked + jitter(asked, seed))
        }
        None => backoff,
    }
}

/// Up to a tenth of `d`, spread by `seed`.
pub fn jitter(d: Duration, seed: u64) -> Duration {
    // splitmix64: good enough to spread agents, no dependency.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let tenth = d.as_millis() as u64 / 10;
    if tenth == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(z % tenth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (0..6).map(|i| b.fail(i).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        b.reset();
        assert_eq!(b.fail(0).as_secs(), 1);
    }

    #[test]
    fn a_named_wait_is_never_cut_short() {
        let backoff = Duration::from_secs(2);
        assert_eq!(honour(backoff, None, 1), backoff);
        for seed in 0..100 {
            let wait = honour(backoff, Some(Duration::from_secs(30)), seed);
            assert!(wait >= Duration::from_secs(30) && wait < Duration::from_secs(33));
        }
        assert_eq!(
            honour(Duration::from_secs(60), Some(Duration::from_secs(1)), 1),
            Duration::from_secs(60),
            "a shorter wait than the backoff's does not shorten it"
        );
        assert!(honour(backoff, Some(Duration::from_secs(86_400)), 1) < MAX_RETRY_AFTER * 2);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for seed in 0..1000 {
            assert!(jitter(Duration::from_secs(10), seed) < Duration::from_secs(1));
        }
        assert_eq!(jitter(Duration::from_millis(5), 3), Duration::ZERO);
    }
}
