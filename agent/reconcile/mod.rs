//! The agent loop (`hawser run`): poll the source, fetch and cache new revisions,
//! apply them, wait for health, record the outcome; re-plan the applied revision every
//! drift interval; keep enforcing the cached revision while Git is unreachable and
//! after a restart.
//!
//! One task drives everything, so there is no shared mutable state: timers, the
//! webhook and the shutdown signal only decide *when* the next step runs. Blocking
//! HTTP to the source runs on `spawn_blocking`.

mod backoff;
mod drift;
mod gated;
mod outage;
mod persist;
mod revision;
mod waiting;
mod window_gate;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

pub use backoff::{Backoff, jitter};
pub use gated::Promote;

use crate::cache::{Cache, Entry, State};
use crate::cluster::Discovered;
use crate::pipeline::{self, PipelineError, Target, Tree};
use crate::plan::live::Observed;
use crate::plan::{Keep, Memory};
use crate::report::metrics::{Metrics, PollResult};
use crate::report::{Teller, TellerConfig};
use crate::source::{Revision, Source};

/// `--drift`: what to do with objects that drifted from the applied revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Re-apply drifted objects.
    Correct,
    /// Only log, count and emit events.
    Report,
}

/// How the loop behaves; validated from the command line once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    pub drift_interval: Duration,
    pub drift: DriftMode,
    pub health_timeout: Duration,
    pub rollback_on_unhealthy: bool,
    /// `--suspend`: no writes at all.
    pub suspend: bool,
    /// `--cluster-name`, recorded in the status (status reports carry it) whether or
    /// not commit statuses are posted.
    pub cluster_name: Option<String>,
    /// `--sync-window`: when new revisions may be applied.
    pub sync_window: crate::window::SyncWindow,
    /// `--promote-after`: new revisions wait for their canaries.
    pub promote: Option<Promote>,
}

/// What the admin server and the signal handler share with the loop.
#[derive(Debug, Clone)]
pub struct Handles {
    pub ready: crate::admin::ReadyFlag,
    pub hook: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Metrics,
    /// Beaten whenever the loop wakes; `/healthz` fails when it goes stale.
    pub heartbeat: crate::admin::Heartbeat,
}

pub use crate::inventory::SUSPEND_ANNOTATION;

pub struct Agent {
    client: kube::Client,
    source: Arc<Source>,
    cache: Arc<Cache>,
    target: Target,
    settings: Settings,
    handles: Handles,
    discovered: Discovered,
    state: State,
    /// The applied revision's snapshot, enforced on every drift tick.
    applied: Option<Entry>,
    /// What the last plan's dry runs produced: objects whose manifest and live state
    /// both still match need no dry run at the next drift tick.
    observed: Observed,
    /// What the plan that produced `observed` expects live, to check a steady drift
    /// tick without rendering.
    last_plan: Option<drift::LastPlan>,
    /// The current source outage, if any.
    outage: Option<outage::Outage>,
    poll_backoff: Backoff,
    /// Spaces out drift checks that fail transiently; reset by one that succeeds.
    drift_backoff: Backoff,
    /// Set while the state on disk lags behind `state` (a failed write).
    unsaved: Option<persist::Unsaved>,
    persist_backoff: Backoff,
    /// The applied revision whose cache entry vanished under the agent: not
    /// enforced until it is fetched again (at the next poll, which comes at once).
    lost: Option<Revision>,
    poll_now: bool,
    /// A revision whose apply began and has not ended (a transient failure is
    /// retried): drift must not prune what it added to the inventory.
    in_flight: Option<drift::InFlight>,
    /// Where outcomes are told: log, metrics, forge, the parent's status, Events.
    teller: Teller,
    /// When drift is next corrected; also while a poll or fetch is waited on.
    next_drift: Instant,
    /// The promotion gate's memory between polls.
    gate: gated::GateState,
}

impl Agent {
    pub fn new(
        client: kube::Client,
        source: Source,
        cache: Cache,
        target: Target,
        settings: Settings,
        handles: Handles,
        forge: Option<crate::report::forge::Reporter>,
    ) -> Self {
        let poll_backoff = Backoff::new(
            Duration::from_secs(2),
            settings.interval.max(Duration::from_secs(2)) * 5,
        );
        // A failing drift check comes back soon (the API server may be restarting),
        // then less often, never less often than the drift interval itself.
        let drift_backoff = Backoff::new(
            Duration::from_secs(2),
            settings.drift_interval.max(Duration::from_secs(2)),
        );
        let teller = Teller::new(TellerConfig {
            client: client.clone(),
            parent: target.parent.clone(),
            metrics: handles.metrics.clone(),
            forge,
            source_url: source.display_url().to_string(),
            insecure: matches!(&source, Source::Bundle(b) if b.insecure()),
            suspend: settings.suspend,
            cluster_name: settings.cluster_name.clone(),
        });
        Agent {
            client,
            source: Arc::new(source),
            cache: Arc::new(cache),
            target,
            settings,
            handles,
            discovered: Discovered::default(),
            state: State::default(),
            applied: None,
            observed: Observed::default(),
            last_plan: None,
            outage: None,
            poll_backoff,
            drift_backoff,
            unsaved: None,
            persist_backoff: Backoff::new(persist::PERSIST_RETRY.0, persist::PERSIST_RETRY.1),
            lost: None,
            poll_now: false,
            in_flight: None,
            teller,
            next_drift: Instant::now(),
            gate: gated::GateState::default(),
        }
    }

    /// Runs until the shutdown signal. Errors inside a reconcile are reported and
    /// retried, never returned: the agent keeps enforcing what it has.
    pub async fn run(mut self) {
        self.load_cache();
        self.teller.restore().await;
        self.agree_with_cluster();
        self.update_readiness();
        let mut shutdown = self.handles.shutdown.clone();
        let now = Instant::now();
        let mut next_poll = now;
        // With a cached revision, enforce it right away: Git may be down.
        self.next_drift = if self.applied.is_some() {
            now
        } else {
            now + self.settings.drift_interval
        };
        loop {
            self.handles.heartbeat.beat();
            if *shutdown.borrow() {
                break;
            }
            let mut wake = next_poll
                .min(self.next_drift)
                .min(Instant::now() + waiting::HEARTBEAT_EVERY);
            if let Some(at) = self.persist_due() {
                wake = wake.min(at);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.handles.hook.notified() => {
                    // Hooks coalesce (Notify keeps one permit), and while the source
                    // is failing they wait for the backoff like any poll.
                    if self.poll_backoff.failures() == 0 {
                        tracing::info!("webhook: polling now");
                        next_poll = Instant::now();
                    } else {
                        tracing::debug!("webhook: the source is failing; polling after the backoff");
                    }
                }
                _ = shutdown.changed() => break,
            }
            if self.persist_due().is_some_and(|at| Instant::now() >= at) {
                self.save_state();
            }
            if std::mem::take(&mut self.poll_now) {
                next_poll = Instant::now();
            }
            let now = Instant::now();
            if now >= next_poll {
                let wait = self.poll().await;
                next_poll = Instant::now() + wait;
                crate::memory::release_free_pages();
            }
            if Instant::now() >= self.next_drift && !*shutdown.borrow() {
                let wait = self.drift().await;
                self.next_drift = Instant::now() + wait;
                crate::memory::release_free_pages();
            }
        }
        if let Err(e) = self.cache.save_state(&self.state) {
            // The next start settles this against the inventory parent's record.
            tracing::error!(error = %crate::errors::one_line_error(&e), "could not persist the state on shutdown");
        }
        tracing::info!("stopped");
    }

    /// Loads the state and the applied revision's snapshot, re-verified. A corrupt
    /// entry is discarded and reported; the agent then waits for the source.
    fn load_cache(&mut self) {
        self.state = match self.cache.state() {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(error = %crate::errors::one_line_error(&e), "the cache's state file is unreadable; kept it as state.json.bad, recovering the applied revision from the inventory parent and the cache");
                if let Err(e) = self.cache.reset_state() {
                    tracing::error!(error = %crate::errors::one_line_error(&e), "could not move the unreadable state file aside");
                }
                State::default()
            }
        };
        let Some(record) = self.state.applied.clone() else {
            return;
        };
        match self.load_verified(&record.revision) {
            Ok(entry) => {
                tracing::info!(revision = %entry.revision(), "loaded the applied revision from the cache; enforcing it");
                self.handles
                    .metrics
                    .set_applied_revision(Some(entry.revision().as_str()));
                self.handles
                    .metrics
                    .set_good_revision(self.state.good().map(|g| g.revision.as_str()));
                if let Some(good) = self.state.good() {
                    let at = std::time::UNIX_EPOCH + Duration::from_secs(good.at);
                    self.handles.metrics.succeeded_at(at);
                }
                self.tell_source_applied(&record.revision, record.committer_time);
                self.applied = Some(entry);
            }
            Err(e) => {
                tracing::error!(revision = %record.revision, error = %e, "the cached applied revision is corrupt; discarded, waiting for the source");
                self.state.applied = None;
                self.state.forget_good(&record.revision);
                self.save_state();
            }
        }
    }

    /// One poll: resolve, and apply a new revision. Returns the wait until the next.
    async fn poll(&mut self) -> Duration {
        let source = self.source.clone();
        let task = tokio::task::spawn_blocking(move || source.resolve());
        let Some(resolved) = self.while_blocking(task).await else {
            // Shutting down (or the task failed, logged): nothing to record.
            return self.settings.interval;
        };
        let revision = match resolved {
            Ok(revision) => revision,
            Err(e) => {
                self.handles.metrics.polled(PollResult::Failed);
                self.handles.metrics.source_unreachable();
                let outage = *self.outage.get_or_insert_with(outage::Outage::begin);
                let since = outage.since;
                let down = outage.down_for().as_secs();
                let wait = backoff::honour(self.poll_backoff.fail(seed()), e.retry_after(), seed());
                match &self.applied {
                    Some(applied) => tracing::warn!(
                        error = %crate::errors::one_line_error(&e), unreachable_for_s = down, retry_in_s = wait.as_secs(),
                        enforcing = %applied.revision(), "source unreachable; enforcing the cached revision"
                    ),
                    None => tracing::warn!(
                        error = %crate::errors::one_line_error(&e), unreachable_for_s = down, retry_in_s = wait.as_secs(),
                        "source unreachable and nothing cached yet"
                    ),
                }
                self.teller.outage(Some(since)).await;
                return wait;
            }
        };
        // The backoff is reset only once the revision is settled below: an API server
        // that refuses every apply must see the retries spread out, even though the
        // source answers each poll.
        if self.outage.take().is_some() {
            tracing::info!("source reachable again");
            self.handles.metrics.source_reachable();
            self.teller.outage(None).await;
        }
        self.teller.desired(&revision);
        let window = self.window_state().await;
        let current = self
            .applied
            .as_ref()
            .is_some_and(|a| *a.revision() == revision);
        let rejected = self
            .state
            .rejected
            .as_ref()
            .is_some_and(|r| r.revision == revision);
        self.handles.metrics.polled(if current || rejected {
            PollResult::Unchanged
        } else {
            PollResult::Changed
        });
        if current {
            self.poll_backoff.reset();
            return self.next_interval();
        }
        if rejected {
            self.poll_backoff.reset();
            tracing::debug!(%revision, "revision was rejected; waiting for the source to move");
            return self.next_interval();
        }
        match self.gate(&revision).await {
            gated::Gated::Open => {}
            gated::Gated::Wait(wait) => {
                self.poll_backoff.reset();
                return wait;
            }
            gated::Gated::Stopped => {
                self.poll_backoff.reset();
                return self.next_interval();
            }
        }
        // The change windows last: a revision its canaries cleared still waits for
        // the window.
        if let Some(wait) = self.hold_outside_window(&revision, window).await {
            self.poll_backoff.reset();
            return wait;
        }
        match self.revision(&revision).await {
            revision::Next::Interval => {
                self.poll_backoff.reset();
                self.next_interval()
            }
            revision::Next::Retry => self.poll_backoff.fail(seed()),
        }
    }

    fn next_interval(&self) -> Duration {
        self.settings.interval + backoff::jitter(self.settings.interval, seed())
    }

    /// Where the snapshot's manifests are: `--path` within the whole tree. A source
    /// only stores a snapshot once `--path` is a directory in it, so an entry
    /// without it was cached by an earlier hawser, which stored just that subtree.
    fn tree_of(&self, entry: &Entry) -> Tree {
        let subpath = self
            .source
            .subpath()
            .map(std::path::PathBuf::from)
            .filter(|sub| entry.tree().join(sub).is_dir());
        Tree {
            root: entry.tree().to_path_buf(),
            subpath,
        }
    }

    /// Plans `entry` with what earlier plans observed, and remembers what this one
    /// observed and expects for the next (revision or drift tick).
    async fn plan(&mut self, entry: &Entry) -> Result<pipeline::PlannedRevision, PipelineError> {
        let tree = &self.tree_of(entry);
        let memory = Memory {
            observed: &self.observed,
            keep: Keep::Writes,
        };
        let planned = pipeline::plan(
            &self.client,
            &mut self.discovered,
            tree,
            &self.target,
            memory,
        )
        .await?;
        self.observed = planned.plan.observed(&self.observed);
        self.last_plan = drift::LastPlan::of(entry.revision().as_str(), &planned);
        Ok(planned)
    }

    /// Tells a bundle source which commit the cluster runs (its downgrade check), and
    /// returns the commit's time to keep with the record.
    fn tell_source_applied(&self, revision: &Revision, committer_time: Option<i64>) -> Option<i64> {
        let Source::Bundle(bundle) = self.source.as_ref() else {
            return None;
        };
        bundle.set_applied(revision, committer_time);
        bundle.committer_time(revision).or(committer_time)
    }
}

/// Seed for jitter: differs between agents and between calls.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}
