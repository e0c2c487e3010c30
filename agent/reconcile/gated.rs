//! The promotion gate in the loop: where a new revision would become a candidate,
//! it first waits for its canaries (`--promote-after`).
//!
//! In: the revision the source names and the loop's [`Promote`] settings. Out: open
//! (go on and fetch, apply), wait (poll again later; the applied revision stays
//! enforced by the drift ticks meanwhile) or stopped (recorded like a rejection, so
//! the commit is not looked at again until the source moves). While it waits the
//! follower posts `pending` with the gate's words; a stop posts `failure`.
//!
//! The gate comes before the fetch: statuses are keyed by the commit id the source
//! named, and the fetch then verifies that very commit, so a held revision costs no
//! download and an unverified one still never becomes a candidate. One read of the
//! canaries' statuses per poll of a waiting revision, none while the forge asked to
//! be left alone (rate limits). How long a revision has waited is counted from the
//! first poll of this process that saw it: a restart starts the timeout afresh.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Agent;
use crate::cache::Rejected;
use crate::errors::one_line_error;
use crate::gate::{self, Decision, Promotion};
use crate::report::evidence::Evidence;
use crate::report::forge::StatusOutcome;
use crate::source::Revision;

/// `--promote-after` and where the canaries' statuses are read.
#[derive(Debug, Clone)]
pub struct Promote {
    pub promotion: Promotion,
    pub evidence: Arc<Evidence>,
}

/// What the poll does with the revision.
pub(super) enum Gated {
    Open,
    /// Poll again after this long.
    Wait(Duration),
    /// Given up for good (recorded as rejected).
    Stopped,
}

/// The gate's memory between polls.
#[derive(Debug, Default)]
pub(super) struct GateState {
    /// The revision waiting, and since when.
    waiting: Option<(Revision, Instant)>,
    /// No read before this (the forge's rate limit).
    next_read: Option<Instant>,
    /// The last thing logged, so each wait and each read error is logged once.
    said: Option<String>,
}

impl Agent {
    /// Asks the gate about `revision`; reads the canaries' statuses when due.
    pub(super) async fn gate(&mut self, revision: &Revision) -> Gated {
        let Some(promote) = self.settings.promote.clone() else {
            return Gated::Open;
        };
        let now = Instant::now();
        let waited = match &self.gate.waiting {
            Some((waiting, since)) if waiting == revision => now.duration_since(*since),
            _ => {
                self.gate.waiting = Some((revision.clone(), now));
                self.gate.said = None;
                Duration::ZERO
            }
        };
        let Some(commit) = self.source.commit_of(revision) else {
            let reason = "no commit to read the canaries' statuses of".to_string();
            return self.stop(revision, None, reason).await;
        };
        if let Some(at) = self.gate.next_read
            && at > now
        {
            return Gated::Wait((at - now).min(self.next_interval()));
        }
        let evidence = promote.evidence.clone();
        let wanted = promote.promotion.after.clone();
        let reading = commit.clone();
        let task = tokio::task::spawn_blocking(move || evidence.read(&reading, &wanted));
        let Some(read) = self.while_blocking(task).await else {
            return Gated::Wait(self.next_interval());
        };
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                let text = one_line_error(&e);
                if let Some(after) = e.retry_after() {
                    self.gate.next_read = Some(Instant::now() + after);
                }
                if let Some(timeout) = promote.promotion.timeout
                    && waited >= timeout
                {
                    let reason = format!(
                        "gave up after {}: the canaries' statuses could not be read",
                        crate::duration::display(timeout)
                    );
                    tracing::warn!(%revision, error = %text, "{reason}");
                    return self.stop(revision, Some(&commit), reason).await;
                }
                if self.gate.said.as_deref() != Some(text.as_str()) {
                    tracing::warn!(%revision, error = %text, "cannot read the canaries' statuses; waiting");
                    self.gate.said = Some(text);
                }
                return Gated::Wait(self.next_interval());
            }
        };
        self.gate.next_read = read.hold_off.map(|hold| Instant::now() + hold);
        let wall = SystemTime::now();
        match gate::decide(&promote.promotion, &read.statuses, wall, waited) {
            Decision::Open => {
                tracing::info!(%revision, after = ?promote.promotion.after, "the canaries reported success; promoting");
                self.gate.waiting = None;
                self.gate.said = None;
                Gated::Open
            }
            Decision::Wait { description } => {
                if self.gate.said.as_deref() != Some(description.as_str()) {
                    tracing::info!(%revision, "{description}");
                    self.gate.said = Some(description.clone());
                }
                let outcome = StatusOutcome::Waiting {
                    reason: description,
                };
                if self
                    .teller
                    .gated(&commit, outcome, &mut self.state.posted)
                    .await
                {
                    self.save_state();
                }
                // A soak ending before the next poll is looked at when it ends.
                let soak = gate::soak_left(&promote.promotion, &read.statuses, wall);
                let wait = soak.map_or(self.next_interval(), |left| {
                    left.max(Duration::from_secs(1)).min(self.next_interval())
                });
                Gated::Wait(wait)
            }
            Decision::Stop { description } => {
                tracing::warn!(%revision, "not promoting: {description}");
                self.stop(revision, Some(&commit), description).await
            }
        }
    }

    /// Gives the revision up: `failure` on its commit, recorded as rejected so it is
    /// not looked at again until the source moves; the applied one stays enforced.
    async fn stop(&mut self, revision: &Revision, commit: Option<&str>, reason: String) -> Gated {
        self.gate.waiting = None;
        self.gate.said = None;
        if let Some(commit) = commit {
            let outcome = StatusOutcome::Held {
                reason: reason.clone(),
            };
            // Saved below with the rejection.
            self.teller
                .gated(commit, outcome, &mut self.state.posted)
                .await;
        }
        self.state.rejected = Some(Rejected {
            revision: revision.clone(),
            reason: format!("not promoted: {reason}"),
            at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        self.save_state();
        Gated::Stopped
    }
}
