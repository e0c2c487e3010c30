//! Telling the loop's outcomes where operators look, in one place: the log, the
//! metrics, the commit status on the forge, the status block on the inventory parent
//! and Events on it.
//!
//! In: a [`RevisionOutcome`] (and the loop's [`Standing`]: which revisions the cache
//! records as applied and good, the reporter's posted history, the source outage).
//! Out: effects only. Nothing here fails the loop: a refused post or status write is
//! logged (a post error once) and the agent goes on. The posted history lives in the
//! cache's state, so the caller persists it when [`Teller::tell`] says it changed.
//! The parent's status block is kept in `status`; this file tells and posts.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::cluster::{self, ClusterStatus, Severity};
use super::export::{self, OutcomeRecord};
use super::forge::{CommitStatus, Reporter, StatusOutcome};
use super::forge::{Posted, describe};
use super::metrics::{Metrics, ReconcileTimer};
use super::outcome::{Occasion, RevisionOutcome};
use crate::apply::Applied;
use crate::errors::one_line_error;
use crate::inventory::Parent;
use crate::source::Revision;
use crate::verify::{Signer, Verified};

mod status;

/// What the loop knows that a status shows.
pub struct Standing<'a> {
    /// The revisions recorded as applied and as good.
    pub applied: Option<&'a Revision>,
    pub good: Option<&'a Revision>,
    /// The statuses posted so far (kept in the cache's state); a post adds to it.
    pub posted: &'a mut Vec<Posted>,
    /// Wall-clock start of the current source outage.
    pub unreachable_since: Option<SystemTime>,
}

/// One revision being applied, from its start to its outcome.
#[must_use = "a reconcile is told with Teller::tell"]
pub struct Reconcile {
    revision: Revision,
    occasion: Occasion,
    /// None for a revision refused before it was cached: no reconcile ran.
    timer: Option<ReconcileTimer>,
    started: Instant,
    /// How the revision's signatures verified, when they were checked.
    signed: Option<Verified>,
    /// The Git commit the revision was made from, which its statuses are posted on:
    /// the revision itself for Git, what an OCI artifact names, else none.
    commit: Option<String>,
}

impl Reconcile {
    pub fn occasion(&self) -> Occasion {
        self.occasion
    }
}

/// The fixed facts every status carries, and what was last told.
pub struct Teller {
    client: kube::Client,
    parent: Parent,
    metrics: Metrics,
    /// Commit statuses, when reporting is on.
    forge: Option<Arc<Reporter>>,
    /// The last error posting a status, so each is logged once.
    forge_error: Option<String>,
    source_url: String,
    /// The source accepts unsigned bundles: said loudly wherever status goes.
    insecure: bool,
    suspend: bool,
    cluster_name: Option<String>,
    /// The last status written on the parent.
    status: ClusterStatus,
    /// The revision the source named at the last successful poll.
    desired: Option<String>,
    /// The last commit-status-worthy outcomes, recorded in the status whether or
    /// not a forge is configured (air-gapped sites export them).
    outcomes: Vec<OutcomeRecord>,
}

/// What a [`Teller`] is made of: the connection, the parent and the fixed facts.
pub struct TellerConfig {
    pub client: kube::Client,
    pub parent: Parent,
    pub metrics: Metrics,
    pub forge: Option<Reporter>,
    pub source_url: String,
    pub insecure: bool,
    pub suspend: bool,
    pub cluster_name: Option<String>,
}

impl Teller {
    pub fn new(config: TellerConfig) -> Self {
        let TellerConfig {
            client,
            parent,
            metrics,
            forge,
            source_url,
            insecure,
            suspend,
            cluster_name,
        } = config;
        Teller {
            client,
            parent,
            metrics,
            forge: forge.map(Arc::new),
            forge_error: None,
            source_url,
            insecure,
            suspend,
            cluster_name,
            status: ClusterStatus::default(),
            desired: None,
            outcomes: Vec::new(),
        }
    }

    /// The source named `revision` at a successful poll.
    pub fn desired(&mut self, revision: &Revision) {
        self.desired = Some(revision.to_string());
    }

    /// Starts telling one revision: warns when the source is insecure, and times it.
    /// `signed` says how its signatures verified, when they were checked.
    pub fn begin(
        &self,
        revision: &Revision,
        source: &str,
        occasion: Occasion,
        signed: Option<Verified>,
        commit: Option<String>,
    ) -> Reconcile {
        if self.insecure {
            tracing::warn!(
                source = %source,
                "INSECURE: --insecure-allow-unsigned is set; this revision's signature may not have been checked"
            );
        }
        Reconcile {
            revision: revision.clone(),
            occasion,
            timer: Some(self.metrics.reconcile_timer()),
            started: Instant::now(),
            signed,
            commit,
        }
    }

    /// Tells a revision the source refused before it was cached (not a reconcile).
    pub fn refusal(&self, revision: &Revision, commit: Option<String>) -> Reconcile {
        Reconcile {
            revision: revision.clone(),
            occasion: Occasion::New,
            timer: None,
            started: Instant::now(),
            signed: None,
            commit,
        }
    }

    /// The revision passed its dry runs and is being written: `pending` on the forge.
    /// Returns whether `posted` changed (a status was posted) and should be saved.
    pub async fn applying(
        &mut self,
        reconcile: &Reconcile,
        objects: usize,
        posted: &mut Vec<Posted>,
    ) -> bool {
        if reconcile.occasion != Occasion::New {
            return false;
        }
        let outcome = StatusOutcome::Applying { objects };
        self.post_status(reconcile.commit.as_deref(), outcome, None, posted)
            .await
    }

    /// The promotion gate holds a revision: `pending` while it waits, `failure` (and
    /// a Warning Event) when it gave the revision up. Returns whether `posted`
    /// changed and should be saved.
    pub async fn gated(
        &mut self,
        commit: &str,
        outcome: StatusOutcome,
        posted: &mut Vec<Posted>,
    ) -> bool {
        if let StatusOutcome::Held { reason } = &outcome {
            let text = format!("{commit}: {reason}");
            cluster::event(
                &self.client,
                &self.parent,
                Severity::Warning,
                "NotPromoted",
                &text,
            )
            .await;
        }
        self.post_status(Some(commit), outcome, None, posted).await
    }

    /// Tells how the revision ended: the log, the metrics, the forge, the parent's
    /// status and an Event. Returns whether `standing.posted` changed (a status was
    /// posted) and should be saved.
    pub async fn tell(
        &mut self,
        reconcile: Reconcile,
        outcome: &RevisionOutcome,
        standing: Standing<'_>,
    ) -> bool {
        let Reconcile {
            revision,
            occasion,
            timer,
            started,
            signed,
            commit,
        } = reconcile;
        if let Some(timer) = timer {
            timer.finish(outcome.metric());
        }
        let mut message = outcome.message(&revision, occasion);
        match outcome {
            RevisionOutcome::Healthy { applied, health } => {
                let signed = signed.as_ref().map(Verified::to_string);
                if let Some(signed) = &signed {
                    message = format!("{message}; {signed}");
                }
                tracing::info!(
                    signed = signed.as_deref().unwrap_or("not checked"),
                    changed = applied.changed(),
                    pruned = applied.prune.pruned.len(),
                    healthy_after_ms = health.after().as_millis() as u64,
                    took_ms = started.elapsed().as_millis() as u64,
                    "applied and healthy"
                );
                self.metrics.set_good_revision(Some(revision.as_str()));
                self.metrics.succeeded_at(SystemTime::now());
            }
            RevisionOutcome::Unhealthy { .. } => {
                let reason = outcome.unhealthy_reason().unwrap_or_default();
                tracing::warn!(reason = %reason, "applied but not healthy within the timeout");
            }
            RevisionOutcome::Rejected(_) | RevisionOutcome::Refused(_) => {
                tracing::warn!(reason = %message, "revision rejected; still enforcing the applied revision");
            }
            RevisionOutcome::Failed(_) => {
                tracing::warn!(reason = %message, "apply failed; will retry");
            }
            RevisionOutcome::Suspended => {
                tracing::info!("suspended: not applying the new revision");
            }
        }
        if let Some(applied) = outcome.applied() {
            self.metrics.set_applied_revision(Some(revision.as_str()));
            self.metrics.set_managed_objects(applied.objects);
        }
        // The commit status first, so the status write below carries it.
        let mut posted = false;
        if let Some(status) = outcome.status(occasion) {
            // A success also names who signed what was applied.
            let signer = matches!(outcome, RevisionOutcome::Healthy { .. })
                .then(|| {
                    signed
                        .as_ref()
                        .and_then(|v| v.commit.as_ref().or(v.tag.as_ref()))
                })
                .flatten();
            posted = self
                .post_status(commit.as_deref(), status, signer, standing.posted)
                .await;
        }
        let objects = outcome.applied().map_or(self.status.objects, |a| a.objects);
        self.record(outcome.result(), &message, objects, &standing)
            .await;
        let event = match outcome {
            RevisionOutcome::Healthy { .. } => Some((Severity::Normal, "Applied")),
            RevisionOutcome::Unhealthy { .. } => Some((Severity::Warning, "Unhealthy")),
            RevisionOutcome::Rejected(_) | RevisionOutcome::Refused(_) => {
                Some((Severity::Warning, "Rejected"))
            }
            RevisionOutcome::Failed(_) | RevisionOutcome::Suspended => None,
        };
        if let Some((severity, reason)) = event {
            let text = format!("{revision}: {message}");
            cluster::event(&self.client, &self.parent, severity, reason, &text).await;
        }
        if let RevisionOutcome::Healthy { applied, .. } = outcome {
            self.kept(applied).await;
        }
        posted
    }

    /// The last good revision is applied again after `bad` was unhealthy.
    pub async fn rolling_back(&self, bad: &Revision, reason: &str, good: &Revision) {
        tracing::warn!(to = %good, from = %bad, "rolling back to the last good revision");
        let text = format!("{bad} was unhealthy ({reason}); rolled back to {good}");
        cluster::event(
            &self.client,
            &self.parent,
            Severity::Warning,
            "RolledBack",
            &text,
        )
        .await;
    }

    /// Objects whose deletion was refused stay managed; say so where operators look.
    pub async fn kept(&self, applied: &Applied) {
        for (member, why) in &applied.prune.kept {
            let text = format!("{}: {why}", member.object_ref());
            cluster::event(
                &self.client,
                &self.parent,
                Severity::Warning,
                "PruneRefused",
                &text,
            )
            .await;
        }
    }

    /// A new revision is held back before it is applied (a closed change window):
    /// `pending` on the forge with `reason`, and the parent's status says so.
    /// Returns whether `standing.posted` changed and should be saved.
    pub async fn waiting(
        &mut self,
        revision: &Revision,
        commit: Option<String>,
        reason: &str,
        standing: Standing<'_>,
    ) -> bool {
        if self.status.result != "waiting" || self.status.message != reason {
            tracing::info!(%revision, reason, "new revision waits");
        }
        let outcome = StatusOutcome::Waiting {
            reason: reason.to_string(),
        };
        let posted = self
            .post_status(commit.as_deref(), outcome, None, standing.posted)
            .await;
        let objects = self.status.objects;
        self.record("waiting", reason, objects, &standing).await;
        posted
    }

    /// Records the outcome for status reports and posts it on the revision's commit
    /// when reporting is on; only commits have statuses (a tarball without a commit
    /// id has none). Returns whether `posted` changed.
    async fn post_status(
        &mut self,
        commit: Option<&str>,
        outcome: StatusOutcome,
        signer: Option<&Signer>,
        posted: &mut Vec<Posted>,
    ) -> bool {
        let Some(commit) = commit else {
            return false;
        };
        let mut status = CommitStatus::for_outcome(commit, &outcome);
        if let Some(signer) = signer {
            status.description = describe::with_signer(&status.description, signer);
        }
        export::push(
            &mut self.outcomes,
            OutcomeRecord::new(&status, cluster::rfc3339(SystemTime::now())),
        );
        let Some(reporter) = self.forge.clone() else {
            return false;
        };
        let mut history = posted.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let result = reporter.post_once(&mut history, &status);
            (result, history, status)
        })
        .await;
        let Ok((result, history, status)) = joined else {
            tracing::error!("the status task failed");
            return false;
        };
        match result {
            Ok(true) => {
                tracing::info!(commit = %status.commit, state = ?status.state, description = %status.description, "posted commit status");
                *posted = history;
                self.forge_error = None;
                true
            }
            Ok(false) => {
                tracing::debug!(commit = %status.commit, "commit status already posted");
                false
            }
            Err(e) => {
                let text = one_line_error(&e);
                if self.forge_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "could not post the commit status");
                    self.forge_error = Some(text);
                }
                false
            }
        }
    }
}
