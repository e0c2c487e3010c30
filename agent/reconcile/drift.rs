//! The drift reconcile: every drift interval the applied revision is planned again,
//! and drifted objects are corrected (or, with `--drift=report` or while suspended,
//! only reported).
//!
//! Two things can make the applied revision a wrong guide, and both are handled
//! here: a newer revision partly applied (its apply widened the inventory, then
//! failed transiently and is being retried), whose added objects must not be pruned;
//! and the applied revision's cache entry gone or corrupt, which is re-fetched
//! rather than silently not enforced.
//!
//! A steady tick renders nothing: when the last plan was of the applied revision with
//! the same substitution variables, every object it planned is live as its dry run
//! said, and the inventory records exactly its members, a full plan could only find
//! no drift (see [`Expected`]). Anything else (a drifted or missing object, a changed
//! variable, a list that fails) is planned in full, as before.

use std::sync::Arc;

use super::{Agent, DriftMode};
use crate::apply;
use crate::inventory::{self, Member, Members};
use crate::pipeline::{self, PlannedRevision, VariablesDigest};
use crate::plan::live::Expected;
use crate::plan::{Action, Plan};
use crate::report::cluster::{self, Severity};
use crate::source::Revision;

/// What the last plan was of, and what it expects live.
#[derive(Debug, Clone)]
pub(super) struct LastPlan {
    revision: String,
    variables: VariablesDigest,
    expected: Expected,
}

impl LastPlan {
    pub(super) fn of(revision: &str, planned: &PlannedRevision) -> Option<LastPlan> {
        Some(LastPlan {
            revision: revision.to_string(),
            variables: planned.variables,
            expected: Expected::of(&planned.plan)?,
        })
    }
}

/// A revision whose apply began but has not ended, and its members.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub revision: Revision,
    pub members: Members,
}

impl Agent {
    /// Re-plans the applied revision and corrects (or reports) drift. Returns the wait
    /// until the next drift reconcile.
    pub(super) async fn drift(&mut self) -> std::time::Duration {
        let Some(entry) = self.applied.clone() else {
            return self.settings.drift_interval;
        };
        let span = tracing::info_span!("drift", revision = %entry.revision());
        let _enter = span.enter();
        if self.settings.suspend {
            self.handles.metrics.set_suspended(true);
            return self.settings.drift_interval;
        }
        // Re-verified every tick: a tree with files missing would render fewer
        // objects, and drift would prune the rest.
        if let Err(e) = self.cache.load(entry.revision()) {
            self.lose_applied(entry.revision(), &crate::errors::one_line_error(&e))
                .await;
            return self.settings.drift_interval;
        }
        if self.steady(entry.revision().as_str()).await {
            tracing::debug!(
                "no drift: every object is as last planned (the revision was not rendered)"
            );
            return self.settings.drift_interval;
        }
        let mut planned = match self.plan(&entry).await {
            Ok(planned) => planned,
            Err(e) => {
                self.handles.metrics.drift_check_failed();
                let retry = e.is_transient();
                tracing::warn!(error = %crate::errors::one_line_error(&e), "drift check failed");
                // The API server may be restarting: come back soon rather than in
                // minutes, then less and less often. A refused credential (401) or
                // permission (403) waits for the drift interval.
                return if retry {
                    self.drift_backoff.fail(super::seed())
                } else {
                    self.settings.drift_interval
                };
            }
        };
        self.drift_backoff.reset();
        self.spare_in_flight(&mut planned.plan);
        let suspended = planned.recorded.suspended();
        self.handles.metrics.set_suspended(suspended);
        let drifted: Vec<(String, Vec<String>)> = planned
            .plan
            .objects
            .iter()
            .filter_map(|p| match &p.action {
                Action::Unchanged => None,
                Action::Create => Some((p.manifest.id.to_string(), vec!["(missing)".to_string()])),
                Action::Update { fields } => Some((p.manifest.id.to_string(), fields.clone())),
                Action::Recreate { .. } => Some((
                    p.manifest.id.to_string(),
                    vec!["(immutable fields)".to_string()],
                )),
            })
            .collect();
        if drifted.is_empty() && planned.plan.prunes.is_empty() {
            tracing::debug!("no drift");
            return self.settings.drift_interval;
        }
        for (object, fields) in &drifted {
            tracing::warn!(object = %object, fields = %fields.join(", "), "drift detected");
        }
        let window_closed = self.window_holds_drift().await;
        if suspended || self.settings.drift == DriftMode::Report || window_closed {
            let why = if suspended {
                "suspended"
            } else if window_closed {
                "outside the change window, --sync-window-drift=report"
            } else {
                "--drift=report"
            };
            let summary = describe_drift(&drifted);
            cluster::event(
                &self.client,
                &self.target.parent,
                Severity::Warning,
                "DriftDetected",
                &format!("{summary} (not corrected: {why})"),
            )
            .await;
            return self.settings.drift_interval;
        }
        match apply::apply(
            &self.client,
            &mut self.discovered,
            planned.plan,
            &self.target.parent,
            planned.recorded,
        )
        .await
        {
            Ok(applied) => {
                let corrected = applied.changed();
                self.handles.metrics.drift_corrected(corrected as u64);
                for (object, fields) in &drifted {
                    tracing::info!(object = %object, fields = %fields.join(", "), "drift corrected");
                }
                let summary = describe_drift(&drifted);
                cluster::event(
                    &self.client,
                    &self.target.parent,
                    Severity::Normal,
                    "DriftCorrected",
                    &summary,
                )
                .await;
                self.teller.kept(&applied).await;
                self.settings.drift_interval
            }
            Err(e) => {
                self.handles.metrics.drift_check_failed();
                tracing::warn!(error = %crate::errors::one_line_error(&e), "drift correction failed");
                if e.is_transient() {
                    self.drift_backoff.fail(super::seed())
                } else {
                    self.settings.drift_interval
                }
            }
        }
    }
}

impl Agent {
    /// Whether the applied revision is steady without rendering it: the last plan was
    /// of it with the same variables, the inventory records its members, and every
    /// object is live as observed. A failure to read anything is "not known steady":
    /// the full plan then reads it again and reports what fails.
    async fn steady(&self, revision: &str) -> bool {
        let Some(last) = &self.last_plan else {
            return false;
        };
        if last.revision != revision || self.in_flight.is_some() {
            return false;
        }
        match pipeline::variables(&self.client, &self.target).await {
            Ok(vars) if vars.digest() == last.variables => {}
            _ => return false,
        }
        let recorded = match inventory::read(&self.client, &self.target.parent).await {
            Ok(recorded) => recorded,
            Err(_) => return false,
        };
        self.handles.metrics.set_suspended(recorded.suspended());
        last.expected.same_members(&recorded.members)
            && last
                .expected
                .all_live_as_observed(&self.client, &self.observed, &self.target.parent.id())
                .await
    }

    /// Keeps the objects a revision in flight added: they are not pruned, and stay
    /// in the inventory, so that the revision's retry (or its successor's apply)
    /// decides about them.
    fn spare_in_flight(&self, plan: &mut Plan) {
        let Some(in_flight) = &self.in_flight else {
            return;
        };
        let (spared, prunes): (Vec<Member>, Vec<Member>) = std::mem::take(&mut plan.prunes)
            .into_iter()
            .partition(|m| in_flight.members.contains(m));
        plan.prunes = prunes;
        if !spared.is_empty() {
            tracing::info!(
                in_flight = %in_flight.revision,
                objects = spared.len(),
                "not pruning objects of a revision still being applied"
            );
            Arc::make_mut(&mut plan.members).extend(spared);
        }
    }

    /// The applied revision's cache entry is gone or corrupt: drift cannot be
    /// corrected from it. Said loudly (log, Event, metric, readiness), and the
    /// next poll comes at once to fetch it (or the source's newer revision) again.
    async fn lose_applied(&mut self, revision: &Revision, error: &str) {
        self.handles.metrics.drift_check_failed();
        tracing::error!(
            error = %error,
            "the applied revision's cache entry is unusable; drift is not corrected until it is fetched again"
        );
        cluster::event(
            &self.client,
            &self.target.parent,
            Severity::Warning,
            "CacheEntryLost",
            &format!("{revision}: the cache entry is unusable ({error}); re-fetching it"),
        )
        .await;
        self.applied = None;
        self.lost = Some(revision.clone());
        self.poll_now = true;
        self.update_readiness();
    }
}

fn describe_drift(drifted: &[(String, Vec<String>)]) -> String {
    let mut parts: Vec<String> = drifted
        .iter()
        .take(5)
        .map(|(o, f)| format!("{o} ({})", f.join(", ")))
        .collect();
    if drifted.len() > 5 {
        parts.push(format!("and {} more", drifted.len() - 5));
    }
    format!("drift on {} object(s): {}", drifted.len(), parts.join("; "))
}
