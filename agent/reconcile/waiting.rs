//! Waiting on blocking source work without stopping the rest of the loop.
//!
//! A poll or a fetch runs on `spawn_blocking` and may take up to `--fetch-timeout`.
//! While it does, drift is still corrected on schedule, the heartbeat still beats
//! and a shutdown still ends the wait at once (the blocking task is abandoned; the
//! runtime does not wait for it on exit). In: the task's handle. Out: its result, or
//! `None` on shutdown or if the task panicked (logged).

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Agent;

/// How often the loop proves it is alive while it waits.
pub(super) const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

impl Agent {
    pub(super) async fn while_blocking<T>(&mut self, mut task: JoinHandle<T>) -> Option<T> {
        let mut shutdown = self.handles.shutdown.clone();
        loop {
            self.handles.heartbeat.beat();
            if *shutdown.borrow() {
                return None;
            }
            let wake = self.next_drift.min(Instant::now() + HEARTBEAT_EVERY);
            tokio::select! {
                joined = &mut task => {
                    return match joined {
                        Ok(value) => Some(value),
                        Err(join) => {
                            tracing::error!(error = %join, "a source task failed");
                            None
                        }
                    };
                }
                _ = shutdown.changed() => return None,
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= self.next_drift {
                        tracing::debug!("correcting drift while the source is busy");
                        let wait = self.drift().await;
                        self.next_drift = Instant::now() + wait;
                    }
                }
            }
        }
    }
}
