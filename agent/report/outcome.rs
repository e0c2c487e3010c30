//! How one revision ended, as one typed value: what the loop decided, and what every
//! place that tells it (the log, the metrics, the forge, the parent's status, Events)
//! reads. The error stays typed; its wording is made here, once.
//!
//! In: the result of the pipeline (applied objects and a health verdict, or the
//! [`PipelineError`] that stopped it). Out: the words and states each channel shows
//! ([`RevisionOutcome::result`], [`RevisionOutcome::message`],
//! [`RevisionOutcome::status`]). Pure: no I/O; [`super::teller`] performs the effects.

use super::forge::StatusOutcome;
use super::metrics::ReconcileResult;
use crate::apply::Applied;
use crate::errors::one_line_error;
use crate::health::{Healthy, Verdict};
use crate::inventory::SUSPEND_ANNOTATION;
use crate::pipeline::PipelineError;
use crate::source::{Revision, SourceError};

/// Why a revision is being applied: a new one from the source, or the last good one
/// again after an unhealthy one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    New,
    Rollback,
}

/// How a revision ended.
#[derive(Debug)]
pub enum RevisionOutcome {
    /// Applied, and healthy within the timeout: `health` is the proof that lets
    /// the revision be recorded as good.
    Healthy { applied: Applied, health: Healthy },
    /// Applied, but not healthy within the timeout.
    Unhealthy { applied: Applied, verdict: Verdict },
    /// Refused before any write (manifests, scope, dry run, prune guard) or by a
    /// write that will fail the same way again: not retried until the source moves.
    Rejected(PipelineError),
    /// The source refused the revision (its signature did not verify): told like a
    /// rejection, before anything was cached.
    Refused(SourceError),
    /// A transient failure: retried after a backoff.
    Failed(Failure),
    /// Writes are suspended (`--suspend` or the annotation); nothing was applied.
    Suspended,
}

/// What stopped a revision that will be retried.
#[derive(Debug)]
pub enum Failure {
    Pipeline(PipelineError),
    /// The agent is stopping before the revision was healthy.
    ShuttingDown,
}

impl RevisionOutcome {
    /// A pipeline error ends the revision as rejected, or as failed when retrying
    /// may help (network, 5xx, timeouts).
    pub fn from_error(e: PipelineError) -> Self {
        if e.is_transient() {
            RevisionOutcome::Failed(Failure::Pipeline(e))
        } else {
            RevisionOutcome::Rejected(e)
        }
    }

    /// Whether the poll loop should retry the same revision after a backoff.
    pub fn retry(&self) -> bool {
        matches!(self, RevisionOutcome::Failed(_))
    }

    /// The applied objects, when the revision was applied.
    pub fn applied(&self) -> Option<&Applied> {
        match self {
            RevisionOutcome::Healthy { applied, .. }
            | RevisionOutcome::Unhealthy { applied, .. } => Some(applied),
            _ => None,
        }
    }

    /// The first reason the applied revision is not healthy.
    pub fn unhealthy_reason(&self) -> Option<String> {
        match self {
            RevisionOutcome::Unhealthy { verdict, .. } => {
                Some(verdict.reason().unwrap_or_default())
            }
            _ => None,
        }
    }

    /// The reconcile's metric label.
    pub fn metric(&self) -> ReconcileResult {
        match self {
            RevisionOutcome::Healthy { .. } | RevisionOutcome::Suspended => {
                ReconcileResult::Success
            }
            RevisionOutcome::Unhealthy { .. } => ReconcileResult::Unhealthy,
            RevisionOutcome::Rejected(_) | RevisionOutcome::Refused(_) => ReconcileResult::Rejected,
            RevisionOutcome::Failed(_) => ReconcileResult::Failed,
        }
    }

    /// The `result` recorded in the parent's status.
    pub fn result(&self) -> &'static str {
        match self {
            RevisionOutcome::Healthy { .. } => "success",
            RevisionOutcome::Unhealthy { .. } => "unhealthy",
            RevisionOutcome::Rejected(_) | RevisionOutcome::Refused(_) => "rejected",
            RevisionOutcome::Failed(_) => "failed",
            RevisionOutcome::Suspended => "suspended",
        }
    }

    /// The message recorded in the parent's status (and, prefixed with the
    /// revision, in the Event).
    pub fn message(&self, revision: &Revision, occasion: Occasion) -> String {
        match self {
            RevisionOutcome::Healthy { applied, health } => format!(
                "{} {} objects ({} changed, {} pruned), healthy in {}s",
                match occasion {
                    Occasion::New => "applied",
                    Occasion::Rollback => "rolled back to",
                },
                applied.objects,
                applied.changed(),
                applied.prune.pruned.len(),
                health.after().as_secs()
            ),
            RevisionOutcome::Unhealthy { verdict, .. } => {
                format!("unhealthy: {}", verdict.reason().unwrap_or_default())
            }
            RevisionOutcome::Rejected(e) => one_line_error(e),
            RevisionOutcome::Refused(e) => format!("rejected: {}", one_line_error(e)),
            RevisionOutcome::Failed(f) => f.to_string(),
            RevisionOutcome::Suspended => {
                format!("suspended ({SUSPEND_ANNOTATION} or --suspend); {revision} not applied")
            }
        }
    }

    /// What the forge is told: nothing for a rollback's success (the good
    /// revision's commit already says so), a failure, or a suspension.
    pub fn status(&self, occasion: Occasion) -> Option<StatusOutcome> {
        match self {
            RevisionOutcome::Healthy { applied, health } if occasion == Occasion::New => {
                Some(StatusOutcome::Healthy {
                    objects: applied.objects,
                    changed: applied.changed(),
                    pruned: applied.prune.pruned.len(),
                    healthy_after: health.after(),
                })
            }
            RevisionOutcome::Unhealthy { verdict, .. } => Some(StatusOutcome::Unhealthy {
                reason: verdict.reason().unwrap_or_default(),
            }),
            RevisionOutcome::Rejected(e) => Some(StatusOutcome::Rejected {
                reason: rejection_reason(e),
            }),
            RevisionOutcome::Refused(e) => Some(StatusOutcome::Rejected {
                reason: one_line_error(e),
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Pipeline(e) => f.write_str(&one_line_error(e)),
            Failure::ShuttingDown => f.write_str("shutting down before the revision was healthy"),
        }
    }
}

/// Why a revision was rejected, without the "rejected: " its stage's error says
/// (the forge's description says it already).
fn rejection_reason(e: &PipelineError) -> String {
    match e {
        PipelineError::Manifests(inner) => one_line_error(inner),
        PipelineError::Plan(inner) => one_line_error(inner),
        other => one_line_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanError;

    fn revision() -> Revision {
        "a".repeat(40).parse().unwrap()
    }

    #[test]
    fn a_rejection_is_worded_once_and_told_without_its_prefix() {
        let outcome = RevisionOutcome::from_error(PipelineError::Plan(PlanError::Empty));
        assert_eq!(outcome.result(), "rejected");
        assert!(!outcome.retry());
        let message = outcome.message(&revision(), Occasion::New);
        assert!(message.starts_with("rejected: the revision contains no objects"));
        let Some(StatusOutcome::Rejected { reason }) = outcome.status(Occasion::New) else {
            panic!("a rejection is told to the forge");
        };
        assert_eq!(Some(reason.as_str()), message.strip_prefix("rejected: "));
    }

    #[test]
    fn shutting_down_is_retried_and_not_told_to_the_forge() {
        let outcome = RevisionOutcome::Failed(Failure::ShuttingDown);
        assert!(outcome.retry());
        assert_eq!(outcome.metric(), ReconcileResult::Failed);
        assert!(outcome.status(Occasion::New).is_none());
        assert_eq!(
            outcome.message(&revision(), Occasion::New),
            "shutting down before the revision was healthy"
        );
    }
}
