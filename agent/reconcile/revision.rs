//! One new revision through the pipeline — fetch into the cache, plan, apply, health —
//! and what its outcome changes: the state file, the enforced snapshot, rollback.

use std::time::SystemTime;

use super::Agent;
use crate::apply;
use crate::cache::{Entry, Rejected};
use crate::health::{self, Verdict};
use crate::pipeline::PipelineError;
use crate::report::metrics::FetchResult;
use crate::report::{Failure, Occasion, Reconcile, RevisionOutcome, Standing};
use crate::source::{Revision, SourceError};

/// What the poll loop does after a revision.
pub(super) enum Next {
    Interval,
    /// A transient failure: try again after a backoff.
    Retry,
}

/// Why a fetch gave no entry.
enum Fetch {
    /// The source refused the revision (its signature): a rejection.
    Refused(Box<SourceError>),
    /// The revision could not be stored in the cache (disk full, read-only):
    /// retried after a backoff, and said in the status.
    Unstorable(String),
    /// Anything else: retried after a backoff.
    Failed,
}

/// How the blocking fetch task failed.
enum Fetched {
    Source(String, Option<Box<SourceError>>),
    Cache(String),
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Agent {
    /// Fetches (or finds in the cache), applies and checks a new revision.
    pub(super) async fn revision(&mut self, revision: &Revision) -> Next {
        let span = tracing::info_span!("reconcile", revision = %revision);
        let _enter = span.enter();
        let entry = match self.load_verified(revision) {
            Ok(entry) => entry,
            Err(_) => match self.fetch(revision).await {
                Ok(entry) => entry,
                Err(Fetch::Refused(reason)) => {
                    self.reject(revision, *reason).await;
                    return Next::Interval;
                }
                Err(Fetch::Unstorable(reason)) => {
                    self.teller.unstorable(revision, &reason).await;
                    return Next::Retry;
                }
                Err(Fetch::Failed) => return Next::Retry,
            },
        };
        self.apply_entry(entry, Occasion::New).await
    }

    /// A cached entry whose signatures still verify under the policy (a key may have
    /// left the trusted files since). One that does not is discarded.
    pub(super) fn load_verified(&self, revision: &Revision) -> Result<Entry, String> {
        let entry = self.cache.load(revision).map_err(|e| e.to_string())?;
        let policy = self.source.policy();
        if !policy.enabled() {
            return Ok(entry);
        }
        let checked = match (entry.objects(), revision.commit_id()) {
            (Ok(Some(objects)), Some(commit)) => {
                policy.check(commit, &objects).map_err(|e| e.to_string())
            }
            (Ok(Some(_)), None) => Err("not a commit".into()),
            (Ok(None), _) => Err("no commit object stored to verify".into()),
            (Err(e), _) => Err(e),
        };
        match checked {
            Ok(verified) => {
                tracing::info!(%revision, signed = %verified, "cached revision re-verified");
                Ok(entry)
            }
            Err(reason) => {
                tracing::error!(%revision, %reason, "cached revision no longer verifies; discarding it");
                if let Err(e) = self.cache.discard(revision) {
                    tracing::warn!(error = %e, "discarding the cache entry failed");
                }
                Err(format!(
                    "cached revision {revision} no longer verifies: {reason}"
                ))
            }
        }
    }

    /// Fetches and stores a revision (failures are logged and counted).
    async fn fetch(&mut self, revision: &Revision) -> Result<Entry, Fetch> {
        let source = self.source.clone();
        let cache = self.cache.clone();
        let revision = revision.clone();
        let task = tokio::task::spawn_blocking(move || -> Result<Entry, Fetched> {
            let stored =
                |e: crate::cache::CacheError| Fetched::Cache(crate::errors::one_line_error(&e));
            let staging = cache.staging_dir().map_err(stored)?;
            let snapshot = source.fetch(&revision, staging.path()).map_err(|e| {
                let text = crate::errors::one_line_error(&e);
                // Writing the fetched files into the cache's staging directory
                // failed: the cache's disk, not the source.
                if matches!(e, SourceError::Write { .. }) {
                    return Fetched::Cache(text);
                }
                // A refused revision (a signature, an artifact's key) is rejected;
                // the rest is retried.
                let refused = e.is_refusal().then(|| Box::new(e));
                Fetched::Source(text, refused)
            })?;
            // The snapshot's tree is in the staging directory: moved, not copied.
            cache.store(snapshot).map_err(stored)
        });
        // None: shutting down, or the task failed (logged).
        let Some(fetched) = self.while_blocking(task).await else {
            return Err(Fetch::Failed);
        };
        match fetched {
            Ok(entry) => {
                tracing::info!(
                    files = entry.files(),
                    bytes = entry.bytes(),
                    "fetched, verified and cached"
                );
                self.handles
                    .metrics
                    .fetched(FetchResult::Success, entry.bytes());
                Ok(entry)
            }
            Err(Fetched::Source(e, refused)) => {
                tracing::warn!(error = %e, "fetch failed");
                self.handles.metrics.fetched(FetchResult::Failed, 0);
                Err(refused.map_or(Fetch::Failed, Fetch::Refused))
            }
            Err(Fetched::Cache(e)) => {
                tracing::warn!(error = %e, "the fetched revision cannot be stored in the cache; still enforcing the applied revision");
                self.handles.metrics.fetched(FetchResult::Failed, 0);
                Err(Fetch::Unstorable(e))
            }
        }
    }

    /// Applies a cached revision: decide (run the pipeline), record (the cache's
    /// state, the enforced snapshot), tell (report).
    async fn apply_entry(&mut self, entry: Entry, occasion: Occasion) -> Next {
        let signed = entry.verified();
        let commit = self.source.commit_of(entry.revision());
        let reconcile =
            self.teller
                .begin(entry.revision(), entry.source(), occasion, signed, commit);
        let outcome = self.run_pipeline(&entry, &reconcile).await;
        let revision = entry.revision().clone();
        self.record_outcome(entry, &outcome);
        self.tell(reconcile, &outcome).await;
        if let Some(reason) = outcome.unhealthy_reason()
            && self.settings.rollback_on_unhealthy
            && occasion == Occasion::New
        {
            return self.rollback(&revision, &reason).await;
        }
        if outcome.retry() {
            Next::Retry
        } else {
            Next::Interval
        }
    }

    /// What an outcome changes in the cache's state and in what drift enforces: an
    /// applied revision becomes the enforced one (and `good` when healthy), a
    /// rejected one is not retried until the source moves.
    fn record_outcome(&mut self, entry: Entry, outcome: &RevisionOutcome) {
        match outcome {
            RevisionOutcome::Healthy { .. } | RevisionOutcome::Unhealthy { .. } => {
                let mut record = entry.record(now_secs());
                record.committer_time = self.tell_source_applied(entry.revision(), None);
                if let RevisionOutcome::Healthy { health, .. } = outcome {
                    self.state.record_good(record.clone(), health);
                    self.state.rejected = None;
                }
                self.state.applied = Some(record);
                self.in_flight = None;
                self.adopt(entry);
                self.save_state();
            }
            RevisionOutcome::Rejected(_) | RevisionOutcome::Refused(_) => {
                // What a rejected revision wrote is not kept: drift prunes it.
                self.in_flight = None;
                self.state.rejected = Some(Rejected {
                    revision: entry.revision().clone(),
                    reason: outcome.message(entry.revision(), Occasion::New),
                    at: now_secs(),
                });
                self.save_state();
            }
            RevisionOutcome::Failed(_) | RevisionOutcome::Suspended => {}
        }
    }

    /// Records a revision the source refused (its signature): kept enforcing the
    /// applied one, not retried until the source moves, told like a rejection.
    async fn reject(&mut self, revision: &Revision, refusal: SourceError) {
        let outcome = RevisionOutcome::Refused(refusal);
        self.state.rejected = Some(Rejected {
            revision: revision.clone(),
            reason: outcome.message(revision, Occasion::New),
            at: now_secs(),
        });
        self.save_state();
        let reconcile = self
            .teller
            .refusal(revision, self.source.commit_of(revision));
        self.tell(reconcile, &outcome).await;
    }

    /// Tells an outcome with what the state records; saves the state when a commit
    /// status was posted.
    async fn tell(&mut self, reconcile: Reconcile, outcome: &RevisionOutcome) {
        // `good` is read through its accessor, so take it before `posted` is lent.
        let good = self.state.good().map(|r| r.revision.clone());
        let standing = Standing {
            applied: self.state.applied.as_ref().map(|r| &r.revision),
            good: good.as_ref(),
            posted: &mut self.state.posted,
            unreachable_since: self.outage.map(|o| o.since),
        };
        if self.teller.tell(reconcile, outcome, standing).await {
            self.save_state();
        }
    }

    /// The last good revision back after an unhealthy one; the unhealthy revision is
    /// marked rejected so it is not applied again until the source moves.
    async fn rollback(&mut self, bad: &Revision, reason: &str) -> Next {
        let Some(good) = self.state.good().cloned().filter(|g| g.revision != *bad) else {
            tracing::warn!("no earlier good revision to roll back to");
            return Next::Interval;
        };
        let entry = match self.load_verified(&good.revision) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(revision = %good.revision, error = %e, "cannot roll back: the good revision is not in the cache");
                return Next::Interval;
            }
        };
        self.teller.rolling_back(bad, reason, &good.revision).await;
        let next = Box::pin(self.apply_entry(entry, Occasion::Rollback)).await;
        self.state.rejected = Some(Rejected {
            revision: bad.clone(),
            reason: format!("unhealthy, rolled back: {reason}"),
            at: now_secs(),
        });
        self.save_state();
        next
    }

    /// The applied revision's snapshot becomes the one drift enforces.
    fn adopt(&mut self, entry: Entry) {
        if self.lost.take().is_some() {
            tracing::info!(revision = %entry.revision(), "the applied revision is in the cache again; enforcing it");
        }
        self.applied = Some(entry);
        self.update_readiness();
    }

    /// Decides how the revision ends: suspended, rejected or failed by the pipeline,
    /// or applied with a health verdict.
    async fn run_pipeline(&mut self, entry: &Entry, reconcile: &Reconcile) -> RevisionOutcome {
        if self.settings.suspend {
            self.handles.metrics.set_suspended(true);
            return RevisionOutcome::Suspended;
        }
        let planned = match self.plan(entry).await {
            Ok(planned) => planned,
            Err(e) => return RevisionOutcome::from_error(e),
        };
        if planned.recorded.suspended() {
            self.handles.metrics.set_suspended(true);
            return RevisionOutcome::Suspended;
        }
        self.handles.metrics.set_suspended(false);
        let objects = planned.plan.members.len();
        if self
            .teller
            .applying(reconcile, objects, &mut self.state.posted)
            .await
        {
            self.save_state();
        }
        // The inventory is widened to this revision's members first: until the
        // revision ends, drift checks must not prune what it adds.
        self.in_flight = Some(super::drift::InFlight {
            revision: entry.revision().clone(),
            members: std::sync::Arc::clone(&planned.plan.members),
        });
        let applied = match apply::apply(
            &self.client,
            &mut self.discovered,
            planned.plan,
            &self.target.parent,
            planned.recorded,
        )
        .await
        {
            Ok(applied) => applied,
            Err(e) => return RevisionOutcome::from_error(PipelineError::Apply(e)),
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
                return RevisionOutcome::Failed(Failure::ShuttingDown);
            }
        };
        match verdict {
            Verdict::Healthy(health) => RevisionOutcome::Healthy { applied, health },
            verdict => RevisionOutcome::Unhealthy { applied, verdict },
        }
    }
}
