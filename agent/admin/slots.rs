//! Connection slots that a flood of idle sockets cannot exhaust.
//!
//! In: a new connection. Out: a [`Slot`] for it, or none when every slot serves a
//! request. A connection still waiting for its request head is idle; when the slots
//! run out, the oldest idle one is closed to make room. A prober's request head
//! arrives within milliseconds of its connection, so 200 sockets that keep a request
//! line half-sent only ever evict each other, and `/healthz` is still answered.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long a new connection waits for an evicted one to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Slots {
    permits: Arc<Semaphore>,
    /// Connections waiting for their request head, oldest first.
    idle: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next_id: AtomicU64,
}

/// One connection's slot, given back on drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    id: u64,
    evicted: Arc<Notify>,
    slots: Arc<Slots>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(max.max(1))),
            idle: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A free slot, or the slot of the oldest idle connection (which is closed).
    pub async fn acquire(self: &Arc<Self>) -> Option<Slot> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(self.slot(permit));
        }
        let victim = self.idle.lock().ok().and_then(|mut idle| idle.pop_front());
        let (_, evicted) = victim?;
        evicted.notify_one();
        let permit = tokio::time::timeout(EVICTION_WAIT, self.permits.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(self.slot(permit))
    }

    fn slot(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            _permit: permit,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            evicted: Arc::new(Notify::new()),
            slots: Arc::clone(self),
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|(other, _)| *other != id);
        }
    }
}

impl Slot {
    /// Runs `waiting` (reading the request head) as an idle connection: `None` if
    /// the slot was taken for a newer connection first.
    pub async fn idle_while<F: Future>(&self, waiting: F) -> Option<F::Output> {
        if let Ok(mut idle) = self.slots.idle.lock() {
            idle.push_back((self.id, Arc::clone(&self.evicted)));
        }
        let out = tokio::select! {
            biased;
            () = self.evicted.notified() => None,
            out = waiting => Some(out),
        };
        self.slots.forget(self.id);
        out
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room() {
        let slots = Slots::new(2);
        let (a, b) = (
            slots.acquire().await.unwrap(),
            slots.acquire().await.unwrap(),
        );
        let (a_started, b_started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let idle_a = {
            let started = a_started.clone();
            tokio::spawn(async move {
                let out = a.idle_while(async {
                    started.notify_one();
                    std::future::pending::<()>().await
                });
                out.await
            })
        };
        a_started.notified().await;
        let idle_b = {
            let started = b_started.clone();
            tokio::spawn(async move {
                b.idle_while(async {
                    started.notify_one();
                    std::future::pending::<()>().await
                })
                .await
            })
        };
        b_started.notified().await;
        let c = slots.acquire().await.expect("a slot by eviction");
        assert_eq!(idle_a.await.unwrap(), None, "the oldest was evicted");
        assert!(!idle_b.is_finished());
        // Busy (not idle) connections are never evicted: with c busy and b evicted,
        // nothing is left to take.
        let d = slots.acquire().await.expect("b evicted");
        assert_eq!(idle_b.await.unwrap(), None);
        assert!(slots.acquire().await.is_none());
        drop((c, d));
        assert!(slots.acquire().await.is_some());
    }
}
