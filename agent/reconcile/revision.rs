//! One new revision through the pipeline — fetch into the cache, plan, apply, health —
//! and what its outcome changes: the state file, the enforced snapshot, rollback.

use std::time::{Instant, SystemTime};

use super::{Agent, SUSPEND_ANNOTATION};
use crate::apply::{self, Applied};
use crate::cache::{Entry, Rejected};
use crate::health::{self, Verdict};
use crate::inventory;
use crate::pipeline::PipelineError;
use crate::report::cluster::{self, Severity};
use crate::report::forge::Outcome;
use crate::report::metrics::{FetchResult, ReconcileResult};

/// What the poll loop does after a revision.
pub(super) enum Next {
    Interval,
    /// A transient failure: try again after a backoff.
    Retry,
}

/// How a revision ended, for the records.
enum Ended {
    Healthy {
        applied: Applied,
        after: std::time::Duration,
    },
    Unhealthy {
        applied: Applied,
        verdict: Verdict,
    },
    Rejected(String),
    Failed(String),
    Suspended,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Agent {
    /// Fetches (or finds in the cache), applies and checks a new revision.
    pub(super) async fn revision(&mut self, revision: &str) -> Next {
        let span = tracing::info_span!("reconcile", revision = %revision);
        let _enter = span.enter();
        let entry = match self.cache.load(revision) {
            Ok(entry) => entry,
            Err(_) => match self.fetch(revision).await {
                Some(entry) => entry,
                None => return Next::Retry,
            },
        };
        self.apply_entry(entry, false).await
    }

    /// Fetches and stores a revision; None after a failure (logged and counted).
    async fn fetch(&mut self, revision: &str) -> Option<Entry> {
        let source = self.source.clone();
        let cache = self.cache.clone();
        let rev = revision.to_string();
        let fetched = tokio::task::spawn_blocking(move || -> Result<Entry, String> {
            let parsed = crate::source::Revision::parse(&rev)
                .ok_or_else(|| format!("invalid revision {rev}"))?;
            let staging = cache.staging_dir().map_err(|e| e.to_string())?;
            let snapshot = source
                .fetch(&parsed, staging.path())
                .map_err(|e| crate::errors::one_line_error(&e))?;
            cache
                .store(&rev, snapshot.source(), staging.path())
                .map_err(|e| e.to_string())
        })
        .await;
        match fetched {
            Ok(Ok(entry)) => {
                tracing::info!(
                    files = entry.files,
                    bytes = entry.bytes,
                    "fetched, verified and cached"
                );
                self.handles
                    .metrics
                    .fetched(FetchResult::Success, entry.bytes);
                Some(entry)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "fetch failed");
                self.handles.metrics.fetched(FetchResult::Failed, 0);
                None
            }
            Err(join) => {
                tracing::error!(error = %join, "the fetch task failed");
                None
            }
        }
    }

    /// Applies a cached revision and records the outcome. `rollback` marks a
    /// re-apply of the last good revision.
    async fn apply_entry(&mut self, entry: Entry, rollback: bool) -> Next {
        if self.insecure_source() {
            tracing::warn!(
                source = %entry.source,
                "INSECURE: --insecure-allow-unsigned is set; this revision's signature may not have been checked"
            );
        }
        let timer = self.handles.metrics.reconcile_timer();
        let started = Instant::now();
        let ended = self.run_pipeline(&entry, rollback).await;
        let (result, next) = match &ended {
            Ended::Healthy { .. } => (ReconcileResult::Success, Next::Interval),
            Ended::Unhealthy { .. } => (ReconcileResult::Unhealthy, Next::Interval),
            Ended::Rejected(_) => (ReconcileResult::Rejected, Next::Interval),
            Ended::Failed(_) => (ReconcileResult::Failed, Next::Retry),
            Ended::Suspended => (ReconcileResult::Success, Next::Interval),
        };
        timer.finish(result);
        let revision = entry.revision.clone();
        match ended {
            Ended::Healthy { applied, after } => {
                tracing::info!(
                    changed = applied.changed(),
                    pruned = applied.prune.pruned.len(),
                    healthy_after_ms = after.as_millis() as u64,
                    took_ms = started.elapsed().as_millis() as u64,
                    "applied and healthy"
                );
                let mut record = entry.record(now_secs());
                record.committer_time = self.tell_source_applied(&revision, None);
                self.state.applied = Some(record.clone());
                self.state.good = Some(record);
                self.state.rejected = None;
                self.save_state();
                self.adopt(entry, &applied);
                self.handles.metrics.set_good_revision(Some(&revision));
                self.handles.metrics.succeeded_at(SystemTime::now());
                let message = format!(
                    "{} {} objects ({} changed, {} pruned), healthy in {}s",
                    if rollback {
                        "rolled back to"
                    } else {
                        "applied"
                    },
                    applied.objects.len(),
                    applied.changed(),
                    applied.prune.pruned.len(),
                    after.as_secs()
                );
                // The outcome first, so the status write below carries it.
                if !rollback {
                    let outcome = Outcome::Healthy {
                        objects: applied.objects.len(),
                        changed: applied.changed(),
                        pruned: applied.prune.pruned.len(),
                        healthy_after: after,
                    };
                    self.post_status(&revision, outcome).await;
                }
                self.record("success", &message, applied.objects.len())
                    .await;
                cluster::event(
                    &self.client,
                    &self.target.parent,
                    Severity::Normal,
                    "Applied",
                    &format!("{revision}: {message}"),
                )
                .await;
                self.report_kept(&applied).await;
            }
            Ended::Unhealthy { applied, verdict } => {
                let reason = verdict.reason().unwrap_or_default();
                tracing::warn!(reason = %reason, "applied but not healthy within the timeout");
                let mut record = entry.record(now_secs());
                record.committer_time = self.tell_source_applied(&revision, None);
                self.state.applied = Some(record);
                self.save_state();
                self.adopt(entry, &applied);
                let message = format!("unhealthy: {reason}");
                let outcome = Outcome::Unhealthy {
                    reason: reason.clone(),
                };
                self.post_status(&revision, outcome).await;
                self.record("unhealthy", &message, applied.objects.len())
                    .await;
                cluster::event(
                    &self.client,
                    &self.target.parent,
                    Severity::Warning,
                    "Unhealthy",
                    &format!("{revision}: {message}"),
                )
                .await;
                if self.settings.rollback_on_unhealthy && !rollback {
                    return self.rollback(&revision, &reason).await;
                }
            }
            Ended::Rejected(reason) => {
                tracing::warn!(reason = %reason, "revision rejected; still enforcing the applied revision");
                self.state.rejected = Some(Rejected {
                    revision: revision.clone(),
                    reason: reason.clone(),
                    at: now_secs(),
                });
                self.save_state();
                self.post_status(
                    &revision,
                    Outcome::Rejected {
                        reason: reason.trim_start_matches("rejected: ").to_string(),
                    },
                )
                .await;
                self.record("rejected", &reason, self.status.objects).await;
                cluster::event(
                    &self.client,
                    &self.target.parent,
                    Severity::Warning,
                    "Rejected",
                    &format!("{revision}: {reason}"),
                )
                .await;
            }
            Ended::Failed(reason) => {
                tracing::warn!(reason = %reason, "apply failed; will retry");
                self.record("failed", &reason, self.status.objects).await;
            }
            Ended::Suspended => {
                tracing::info!("suspended: not applying the new revision");
                let message = format!(
                    "suspended ({SUSPEND_ANNOTATION} or --suspend); {revision} not applied"
                );
                self.record("suspended", &message, self.status.objects)
                    .await;
            }
        }
        next
    }

    /// The last good revision back after an unhealthy one; the unhealthy revision is
    /// marked rejected so it is not applied again until the source moves.
    async fn rollback(&mut self, bad: &str, reason: &str) -> Next {
        let Some(good) = self.state.good.clone().filter(|g| g.revision != bad) else {
            tracing::warn!("no earlier good revision to roll back to");
            return Next::Interval;
        };
        let entry = match self.cache.load(&good.revision) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(revision = %good.revision, error = %e, "cannot roll back: the good revision is not in the cache");
                return Next::Interval;
            }
        };
        tracing::warn!(to = %good.revision, from = %bad, "rolling back to the last good revision");
        cluster::event(
            &self.client,
            &self.target.parent,
            Severity::Warning,
            "RolledBack",
            &format!(
                "{bad} was unhealthy ({reason}); rolled back to {}",
                good.revision
            ),
        )
        .await;
        let next = Box::pin(self.apply_entry(entry, true)).await;
        self.state.rejected = Some(Rejected {
            revision: bad.to_string(),
            reason: format!("unhealthy, rolled back: {reason}"),
            at: now_secs(),
        });
        self.save_state();
        next
    }

    /// The applied revision's snapshot becomes the one drift enforces.
    fn adopt(&mut self, entry: Entry, applied: &Applied) {
        self.handles
            .metrics
            .set_applied_revision(Some(&entry.revision));
        self.handles
            .metrics
            .set_managed_objects(applied.objects.len());
        self.applied = Some(entry);
        self.handles.ready.set(true);
    }

    async fn run_pipeline(&mut self, entry: &Entry, rollback: bool) -> Ended {
        if self.settings.suspend {
            self.handles.metrics.set_suspended(true);
            return Ended::Suspended;
        }
        let tree = self.tree_of(entry);
        let planned = match self.plan(&tree).await {
            Ok(planned) => planned,
            Err(e) => return classify(e),
        };
        if suspended(&planned.recorded) {
            self.handles.metrics.set_suspended(true);
            return Ended::Suspended;
        }
        self.handles.metrics.set_suspended(false);
        if !rollback {
            let objects = planned.plan.members.len();
            self.post_status(&entry.revision, Outcome::Applying { objects })
                .await;
        }
        let applied = match apply::apply(
            &self.client,
            &mut self.discovered,
            planned.plan,
            &self.target.parent,
            &planned.recorded,
        )
        .await
        {
            Ok(applied) => applied,
            Err(e) => return classify(PipelineError::Apply(e)),
        };
        let mut shutdown = self.handles.shutdown.clone();
        let applyset_id = self.target.parent.id();
        let verdict = tokio::select! {
            v = health::wait(
                &self.client,
                applied.watched(),
                &applyset_id,
                self.settings.health_timeout,
            ) => v,
            _ = shutdown.changed() => {
                return Ended::Failed("shutting down before the revision was healthy".into());
            }
        };
        match verdict {
            Verdict::Healthy { after } => Ended::Healthy { applied, after },
            verdict => Ended::Unhealthy { applied, verdict },
        }
    }
}

fn classify(e: PipelineError) -> Ended {
    let text = crate::errors::one_line_error(&e);
    if e.is_transient() {
        Ended::Failed(text)
    } else {
        Ended::Rejected(text)
    }
}

pub(super) fn suspended(recorded: &inventory::Recorded) -> bool {
    recorded
        .annotations
        .get(SUSPEND_ANNOTATION)
        .map(String::as_str)
        == Some("true")
}
