//! The loop's heartbeat, behind `/healthz`: liveness must fail when the loop itself
//! is stuck, not only when the process is gone.
//!
//! In: [`Heartbeat::beat`] from the loop whenever it wakes. Out: the age of the last
//! beat, and whether it is older than the longest a healthy loop can go without one
//! (the caller derives that bound from its own timeouts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Heartbeat {
    start: Instant,
    /// Nanoseconds after `start` of the last beat (u64 lasts 584 years).
    last: Arc<AtomicU64>,
    stale_after: Duration,
}

impl Heartbeat {
    /// A heartbeat that beats now and is stale after `stale_after` without a beat.
    pub fn new(stale_after: Duration) -> Heartbeat {
        Heartbeat {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
            stale_after,
        }
    }

    pub fn beat(&self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(ns, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_nanos(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    pub fn is_stale(&self) -> bool {
        self.age() > self.stale_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_only_after_the_bound() {
        let fresh = Heartbeat::new(Duration::from_secs(3600));
        assert!(!fresh.is_stale());
        let stuck = Heartbeat::new(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(stuck.is_stale());
        let before = Instant::now();
        stuck.beat();
        assert!(stuck.age() <= before.elapsed());
    }
}
