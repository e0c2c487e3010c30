//! Webhook replays: a delivery seen within the window wakes the loop only once.
//!
//! A signed webhook stays valid forever (the forges sign the body, not a time), so
//! whoever captured one can send it again at will. Each delivery is remembered by
//! the sha256 of its body for one poll interval; a repeat inside it is answered but
//! polls nothing. In: the verified body. Out: whether it is new. Bounded: at most
//! [`MAX_REMEMBERED`] deliveries, the oldest forgotten first.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MAX_REMEMBERED: usize = 256;

#[derive(Debug)]
pub struct Replays {
    window: Duration,
    seen: Mutex<VecDeque<(Instant, [u8; 32])>>,
}

impl Replays {
    pub fn new(window: Duration) -> Replays {
        Replays {
            window,
            seen: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a delivery; false if the same body came within the window.
    pub fn first_time(&self, body: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        seen.retain(|(at, _)| now.duration_since(*at) < self.window);
        if seen.iter().any(|(_, d)| *d == digest) {
            return false;
        }
        if seen.len() == MAX_REMEMBERED {
            seen.pop_front();
        }
        seen.push_back((now, digest));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_not_new() {
        let replays = Replays::new(Duration::from_secs(3600));
        assert!(replays.first_time(b"push 1"));
        assert!(!replays.first_time(b"push 1"));
        assert!(replays.first_time(b"push 2"));
        let forgetful = Replays::new(Duration::ZERO);
        assert!(forgetful.first_time(b"push 1"));
        assert!(forgetful.first_time(b"push 1"), "outside the window");
    }

    #[test]
    fn memory_is_bounded() {
        let replays = Replays::new(Duration::from_secs(3600));
        for i in 0..=MAX_REMEMBERED {
            assert!(replays.first_time(format!("push {i}").as_bytes()));
        }
        assert!(replays.first_time(b"push 0"), "the oldest was forgotten");
    }
}
