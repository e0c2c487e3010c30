//! A source outage as the loop tracks it: when it began on the wall clock (the
//! status shows that time) and on the monotonic clock (every duration logged or
//! reported is measured on it, so a wall-clock step does not change how long the
//! source has been down).

use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy)]
pub(super) struct Outage {
    /// When it began, by the wall clock: for the status's RFC 3339 time only.
    pub since: SystemTime,
    /// When it began, by the monotonic clock.
    started: Instant,
}

impl Outage {
    pub fn begin() -> Outage {
        Outage {
            since: SystemTime::now(),
            started: Instant::now(),
        }
    }

    /// How long the source has been unreachable.
    pub fn down_for(&self) -> Duration {
        self.down_at(Instant::now())
    }

    /// How long the source has been unreachable at `now` (monotonic).
    fn down_at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wall clock stepping (the outage's wall-clock start three hours back or
    /// two ahead, as after `date -s`) changes nothing in the measured duration.
    #[test]
    fn the_duration_ignores_wall_clock_steps() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let begun = Outage::begin();
        let five_later = begun.started + Duration::from_secs(5);
        for since in [begun.since - hours(3), begun.since + hours(2), begun.since] {
            let outage = Outage { since, ..begun };
            assert_eq!(outage.down_at(five_later), Duration::from_secs(5));
        }
        assert!(begun.down_for() < Duration::from_secs(60));
    }
}
