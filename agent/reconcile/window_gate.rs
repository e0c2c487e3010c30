//! The change-window gate in the loop: outside the `--sync-window`s a new revision
//! waits (status `pending`, "waiting for the change window (opens 22:00 CET)") while
//! the applied one stays enforced; `--sync-window-drift=report` also holds drift
//! corrections back while closed. The suspend annotation is checked by the stages
//! as always, so the stop button works whatever the window says.
//!
//! In: the revision the source names and the windows' state from the settings'
//! clock. Out: whether to wait, and for how long; the metrics and the parent's
//! status show the state.

use std::time::Duration;

use super::Agent;
use crate::report::Standing;
use crate::report::cluster::{SyncWindowStatus, rfc3339};
use crate::source::Revision;
use crate::window::{ClosedDrift, WindowState};

/// The windows' state at one instant, as the gate uses it.
pub(super) type WindowNow = Option<(WindowState, jiff::Timestamp)>;

impl Agent {
    /// The windows' state now (`None` without windows), shown in the metrics and the
    /// parent's status.
    pub(super) async fn window_state(&mut self) -> WindowNow {
        let now = self.settings.sync_window.now();
        let shown = now.as_ref().map(|(state, at)| {
            let next = state.next.as_ref().map(|(t, _)| t.as_second());
            let opens = next.filter(|_| !state.open);
            self.handles.metrics.set_sync_window(state.open, opens);
            SyncWindowStatus {
                open: state.open,
                next: next.map(|s| rfc3339(std::time::UNIX_EPOCH + secs(s))),
                description: state.describe(*at),
            }
        });
        self.teller.sync_window(shown).await;
        now
    }

    /// Holds `revision` back while the windows are closed: posts `pending` once and
    /// returns when to poll again (at the opening, or the interval if that is sooner).
    pub(super) async fn hold_outside_window(
        &mut self,
        revision: &Revision,
        window: WindowNow,
    ) -> Option<Duration> {
        let (state, now) = window?;
        if state.open {
            return None;
        }
        let reason = format!("waiting for the change window ({})", state.describe(now));
        let good = self.state.good().map(|r| r.revision.clone());
        let standing = Standing {
            applied: self.state.applied.as_ref().map(|r| &r.revision),
            good: good.as_ref(),
            posted: &mut self.state.posted,
            unreachable_since: self.outage.map(|o| o.since),
        };
        let commit = self.source.commit_of(revision);
        if self
            .teller
            .waiting(revision, commit, &reason, standing)
            .await
        {
            self.save_state();
        }
        let interval = self.next_interval();
        let until_open = state
            .next
            .map(|(at, _)| secs(at.as_second() - now.as_second()));
        Some(until_open.map_or(interval, |d| d.min(interval)))
    }

    /// Whether drift is only reported now because the windows are closed and
    /// `--sync-window-drift=report`.
    pub(super) async fn window_holds_drift(&mut self) -> bool {
        let window = self.window_state().await;
        self.settings.sync_window.drift == ClosedDrift::Report
            && window.is_some_and(|(state, _)| !state.open)
    }
}

/// Whole seconds, none for the past.
fn secs(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}
