//! The drift reconcile: every drift interval the applied revision is planned again,
//! and drifted objects are corrected (or, with `--drift=report` or while suspended,
//! only reported).

use super::{Agent, DriftMode};
use crate::apply;
use crate::plan::Action;
use crate::report::cluster::{self, Severity};

impl Agent {
    /// Re-plans the applied revision and corrects (or reports) drift. Returns the wait
    /// until the next drift reconcile.
    pub(super) async fn drift(&mut self) -> std::time::Duration {
        let Some(entry) = self.applied.clone() else {
            return self.settings.drift_interval;
        };
        let span = tracing::info_span!("drift", revision = %entry.revision);
        let _enter = span.enter();
        if self.settings.suspend {
            self.handles.metrics.set_suspended(true);
            return self.settings.drift_interval;
        }
        let tree = self.tree_of(&entry);
        let planned = match self.plan(&tree).await {
            Ok(planned) => planned,
            Err(e) => {
                let retry = e.is_transient();
                tracing::warn!(error = %crate::errors::one_line_error(&e), "drift check failed");
                // The API server may be restarting: come back soon rather than in minutes.
                return if retry {
                    self.poll_backoff
                        .clone()
                        .fail(super::seed())
                        .min(self.settings.drift_interval)
                } else {
                    self.settings.drift_interval
                };
            }
        };
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
            &planned.recorded,
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
                tracing::warn!(error = %crate::errors::one_line_error(&e), "drift correction failed");
                if e.is_transient() {
                    self.poll_backoff.clone().fail(super::seed())
                } else {
                    self.settings.drift_interval
                }
            }
        }
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
