//! Keeping `state.json` and the cluster in step.
//!
//! In: the loop's [`State`](crate::cache::State) after every change, and at start the
//! status the inventory parent recorded. Out: a persisted state, readiness that says
//! why the agent is not ready, and at start the applied revision the cluster really
//! runs.
//!
//! What can go wrong: a write of the state fails (disk full, read-only). Then the state
//! on disk names an older revision than the cluster runs, and a restart would roll the
//! cluster back. So a failed write is retried with backoff, and until it succeeds the
//! agent is not ready and says why. If the agent stops (or dies) before it succeeds,
//! the next start finds the disagreement between `state.json` and the parent's status
//! and settles it towards what the cluster runs, when that revision is in the cache
//! and verifies; enforcing an older revision is only ever done loudly.

use std::time::{Duration, UNIX_EPOCH};

use tokio::time::Instant;

use super::Agent;
use crate::errors::one_line_error;
use crate::source::Revision;

/// How soon a failed state write is tried again, at first and at most.
pub(super) const PERSIST_RETRY: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(30));

/// Why the state on disk lags behind the loop's, and when to try again.
#[derive(Debug)]
pub(super) struct Unsaved {
    pub error: String,
    pub retry_at: Instant,
}

impl Agent {
    /// Saves the state. A failure is logged once (ERROR, with the OS reason), makes
    /// the agent not ready and is retried from the loop until a write succeeds.
    pub(super) fn save_state(&mut self) {
        match self.cache.save_state(&self.state) {
            Ok(()) => {
                if self.unsaved.take().is_some() {
                    tracing::info!("state persisted again; the state on disk matches the cluster");
                }
                self.persist_backoff.reset();
                self.handles.metrics.state_persisted(true);
            }
            Err(e) => {
                let error = one_line_error(&e);
                let wait = self.persist_backoff.fail(super::seed());
                if self.unsaved.as_ref().map(|u| &u.error) != Some(&error) {
                    tracing::error!(
                        error = %error,
                        retry_in_s = wait.as_secs(),
                        "could not persist the state; not ready until it is persisted"
                    );
                }
                self.handles.metrics.state_persisted(false);
                self.unsaved = Some(Unsaved {
                    error,
                    retry_at: Instant::now() + wait,
                });
            }
        }
        self.update_readiness();
    }

    /// When the loop must next try to persist the state, if it lags.
    pub(super) fn persist_due(&self) -> Option<Instant> {
        self.unsaved.as_ref().map(|u| u.retry_at)
    }

    /// Ready when a revision is enforced, its cache entry is there and the state on
    /// disk says so; otherwise not ready, with the first reason.
    pub(super) fn update_readiness(&self) {
        let reason = if let Some(unsaved) = &self.unsaved {
            Some(format!(
                "the cache's state could not be persisted: {}",
                unsaved.error
            ))
        } else if let Some(lost) = &self.lost {
            Some(format!(
                "the applied revision {lost} is missing from the cache; re-fetching it"
            ))
        } else if self.applied.is_none() {
            Some("no revision applied yet".to_string())
        } else {
            None
        };
        match reason {
            None => self.handles.ready.set(true),
            Some(reason) => self.handles.ready.not_ready(&reason),
        }
    }

    /// Settles a disagreement between `state.json` and the revision the inventory
    /// parent recorded as applied (read by `Teller::restore`). The newer record
    /// wins; the parent's revision is adopted only when it is in the cache and
    /// verifies. Enforcing the state's revision over a newer one the cluster runs
    /// is said loudly and counted.
    pub(super) fn agree_with_cluster(&mut self) {
        let recorded = self.teller.recorded();
        let Some(theirs) = recorded.applied.clone() else {
            return;
        };
        let recorded_at = parse_rfc3339(&recorded.time);
        let ours = self.state.applied.clone();
        if ours.as_ref().is_some_and(|r| r.revision == *theirs) {
            return;
        }
        if let (Some(ours), Some(at)) = (&ours, recorded_at)
            && at < ours.at
        {
            // The parent's status lags (its write failed); the next outcome rewrites it.
            tracing::info!(state = %ours.revision, recorded = %theirs, "the inventory parent's status is older than the cache's state; keeping the state's revision");
            return;
        }
        // The parent's status is text (another process may have written it): parsed
        // here, where it enters the loop.
        let usable = theirs
            .parse::<Revision>()
            .map_err(|e| e.to_string())
            .and_then(|revision| Ok((self.load_verified(&revision)?, revision)));
        match usable {
            Ok((entry, revision)) => {
                tracing::warn!(
                    state = ours.as_ref().map_or("none", |r| r.revision.as_str()),
                    recorded = %theirs,
                    "the cache's state disagrees with the revision the cluster last recorded as applied; enforcing the cluster's"
                );
                let mut record =
                    entry.record(recorded_at.unwrap_or_else(super::revision::now_secs));
                record.committer_time = self.tell_source_applied(&revision, None);
                self.state.applied = Some(record);
                self.handles.metrics.set_applied_revision(Some(&theirs));
                self.applied = Some(entry);
                self.save_state();
            }
            Err(e) => match &ours {
                Some(ours) => {
                    tracing::error!(
                        state = %ours.revision,
                        recorded = %theirs,
                        error = %e,
                        "ROLLBACK: the cluster last recorded a different revision as applied, which is not usable from the cache; enforcing the cache's state rolls the cluster back to it"
                    );
                    self.handles.metrics.regressed();
                }
                None => tracing::warn!(
                    recorded = %theirs,
                    error = %e,
                    "the cluster's applied revision is not usable from the cache; waiting for the source"
                ),
            },
        }
    }
}

/// Unix seconds of an RFC 3339 timestamp, as the status records it.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let at: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    let secs = at.as_second();
    u64::try_from(secs)
        .ok()
        .filter(|s| UNIX_EPOCH.checked_add(Duration::from_secs(*s)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_time() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:40Z"), Some(100));
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
