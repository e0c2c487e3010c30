//! Prometheus metrics, prefix `hawser_`.
//!
//! In: typed calls from the loop (`polled`, `fetched`, a [`ReconcileTimer`] per
//! reconcile, ...). Out: samples in a `prometheus_client` [`Registry`], which the admin
//! server encodes on `/metrics`. Nothing here can fail; labels come from closed enums
//! and revision ids, never from `Debug` output, so cardinality stays bounded.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hawser_reconciles_total` | counter | `result`: success, rejected, failed, unhealthy |
//! | `hawser_reconcile_duration_seconds` | histogram | |
//! | `hawser_source_polls_total` | counter | `result`: unchanged, changed, failed |
//! | `hawser_source_fetches_total` | counter | `result`: success, invalid, failed |
//! | `hawser_source_fetched_bytes_total` | counter | |
//! | `hawser_managed_objects` | gauge | |
//! | `hawser_drift_corrections_total` | counter | |
//! | `hawser_applied_revision_info` | gauge (1) | `revision` |
//! | `hawser_good_revision_info` | gauge (1) | `revision` |
//! | `hawser_last_success_timestamp_seconds` | gauge | |
//! | `hawser_source_unreachable_seconds` | gauge | computed at scrape time |
//! | `hawser_suspended` | gauge (0/1) | |

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// Applied (or already converged) and healthy.
    Success,
    /// Manifests, scope, dry run or prune guard refused the revision; nothing written.
    Rejected,
    /// A write, the source or the API server failed.
    Failed,
    /// Applied, but not healthy within the timeout.
    Unhealthy,
}

/// What a poll of the source found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollResult {
    Unchanged,
    Changed,
    Failed,
}

/// How a fetch of a new revision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchResult {
    Success,
    /// Fetched, but verification (object ids, sha256, signature) refused it.
    Invalid,
    Failed,
}

macro_rules! label_values {
    ($($ty:ty { $($variant:ident => $text:literal),+ $(,)? })+) => {$(
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    )+};
}

label_values! {
    ReconcileResult { Success => "success", Rejected => "rejected", Failed => "failed", Unhealthy => "unhealthy" }
    PollResult { Unchanged => "unchanged", Changed => "changed", Failed => "failed" }
    FetchResult { Success => "success", Invalid => "invalid", Failed => "failed" }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReconcileLabel {
    result: ReconcileResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PollLabel {
    result: PollResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FetchLabel {
    result: FetchResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RevisionLabel {
    revision: String,
}

/// The agent's metrics. Cheap to clone: every field is a shared handle.
#[derive(Debug, Clone)]
pub struct Metrics {
    reconciles: Family<ReconcileLabel, Counter>,
    reconcile_duration: Histogram,
    polls: Family<PollLabel, Counter>,
    fetches: Family<FetchLabel, Counter>,
    fetched_bytes: Counter,
    managed_objects: Gauge,
    drift_corrections: Counter,
    drift_check_failures: Counter,
    state_persist_failures: Counter,
    state_unpersisted: Gauge,
    regressions: Counter,
    applied_revision: RevisionInfo,
    good_revision: RevisionInfo,
    last_success: Gauge<f64, AtomicU64>,
    unreachable: UnreachableSince,
    suspended: Gauge,
    sync_window_open: Gauge,
    sync_window_next_open: Gauge,
}

impl Metrics {
    /// A registry with the `hawser_` prefix and the metrics registered in it.
    pub fn new() -> (Metrics, Registry) {
        let mut registry = Registry::with_prefix("hawser");
        let metrics = Metrics::register(&mut registry);
        (metrics, registry)
    }

    /// Registers the metrics in `registry` (whose prefix the caller chose). Every
    /// result label starts at zero, so `rate()` and alerts work before the first event.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.1, 2.0, 12)),
            polls: Family::default(),
            fetches: Family::default(),
            fetched_bytes: Counter::default(),
            managed_objects: Gauge::default(),
            drift_corrections: Counter::default(),
            drift_check_failures: Counter::default(),
            state_persist_failures: Counter::default(),
            state_unpersisted: Gauge::default(),
            regressions: Counter::default(),
            applied_revision: RevisionInfo::default(),
            good_revision: RevisionInfo::default(),
            last_success: Gauge::default(),
            unreachable: UnreachableSince::default(),
            suspended: Gauge::default(),
            sync_window_open: Gauge::default(),
            sync_window_next_open: Gauge::default(),
        };
        // Open until a window says otherwise: no --sync-window means always open.
        metrics.sync_window_open.set(1);
        for &result in ReconcileResult::ALL {
            let _ = metrics.reconciles.get_or_create(&ReconcileLabel { result });
        }
        for &result in PollResult::ALL {
            let _ = metrics.polls.get_or_create(&PollLabel { result });
        }
        for &result in FetchResult::ALL {
            let _ = metrics.fetches.get_or_create(&FetchLabel { result });
        }
        let m = metrics.clone();
        registry.register("reconciles", "Reconciles by result", m.reconciles);
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, from plan to health verdict",
            m.reconcile_duration,
        );
        registry.register("source_polls", "Polls of the source by result", m.polls);
        registry.register(
            "source_fetches",
            "Fetches of a new revision by result",
            m.fetches,
        );
        registry.register(
            "source_fetched_bytes",
            "Bytes fetched from the source",
            m.fetched_bytes,
        );
        registry.register(
            "managed_objects",
            "Objects in the applied revision",
            m.managed_objects,
        );
        registry.register(
            "drift_corrections",
            "Objects rewritten because the cluster drifted from the applied revision",
            m.drift_corrections,
        );
        registry.register(
            "drift_check_failures",
            "Drift checks that could not plan or correct the applied revision",
            m.drift_check_failures,
        );
        registry.register(
            "state_persist_failures",
            "Failed writes of the cache's state.json (each retry counts)",
            m.state_persist_failures,
        );
        registry.register(
            "state_unpersisted",
            "1 while the state on disk lags behind what the agent applied",
            m.state_unpersisted,
        );
        registry.register(
            "revision_regressions",
            "Times an older revision was enforced over the one the cluster last recorded",
            m.regressions,
        );
        registry.register(
            "applied_revision_info",
            "The revision being enforced (value 1)",
            m.applied_revision.family,
        );
        registry.register(
            "good_revision_info",
            "The last revision that was applied and healthy (value 1)",
            m.good_revision.family,
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful reconcile",
            m.last_success,
        );
        registry.register(
            "source_unreachable_seconds",
            "How long the source has been unreachable (0 when reachable)",
            m.unreachable,
        );
        registry.register("suspended", "1 while writes are suspended", m.suspended);
        registry.register(
            "sync_window_open",
            "1 while the --sync-window change windows let new revisions through",
            m.sync_window_open,
        );
        registry.register(
            "sync_window_next_open_timestamp_seconds",
            "Unix time a closed change window next opens (0 while open or not within 8 days)",
            m.sync_window_next_open,
        );
        metrics
    }

    /// Starts timing a reconcile. Finish it with [`ReconcileTimer::finish`]; a timer
    /// dropped unfinished (an early `?`) counts as failed. The duration is observed on
    /// drop either way.
    pub fn reconcile_timer(&self) -> ReconcileTimer {
        ReconcileTimer {
            metrics: self.clone(),
            start: Instant::now(),
            result: None,
        }
    }

    pub fn polled(&self, result: PollResult) {
        self.polls.get_or_create(&PollLabel { result }).inc();
    }

    pub fn fetched(&self, result: FetchResult, bytes: u64) {
        self.fetches.get_or_create(&FetchLabel { result }).inc();
        self.fetched_bytes.inc_by(bytes);
    }

    pub fn set_managed_objects(&self, count: usize) {
        self.managed_objects
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn drift_corrected(&self, objects: u64) {
        self.drift_corrections.inc_by(objects);
    }

    /// Replaces the applied revision's info sample (none for `None`).
    pub fn drift_check_failed(&self) {
        self.drift_check_failures.inc();
    }

    /// A write of state.json failed (`true`) or the state on disk caught up (`false`).
    pub fn state_persisted(&self, ok: bool) {
        if !ok {
            self.state_persist_failures.inc();
        }
        self.state_unpersisted.set(i64::from(!ok));
    }

    /// An older revision is about to be enforced over what the cluster recorded.
    pub fn regressed(&self) {
        self.regressions.inc();
    }

    pub fn set_applied_revision(&self, revision: Option<&str>) {
        self.applied_revision.set(revision);
    }

    pub fn set_good_revision(&self, revision: Option<&str>) {
        self.good_revision.set(revision);
    }

    /// Records a successful reconcile at `at` (wall-clock time).
    pub fn succeeded_at(&self, at: SystemTime) {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(secs);
    }

    /// The source failed to answer: starts the unreachable clock if it is not running.
    pub fn source_unreachable(&self) {
        self.unreachable.start();
    }

    /// The source answered: stops the unreachable clock.
    pub fn source_reachable(&self) {
        self.unreachable.stop();
    }

    pub fn set_suspended(&self, suspended: bool) {
        self.suspended.set(i64::from(suspended));
    }

    /// The change windows' state: open, or closed until `opens` (Unix seconds).
    pub fn set_sync_window(&self, open: bool, opens: Option<i64>) {
        self.sync_window_open.set(i64::from(open));
        self.sync_window_next_open.set(opens.unwrap_or(0));
    }
}

/// Times one reconcile and counts its result when dropped, as kube-rs controller-rs
/// does: every exit path of the reconcile is measured.
#[derive(Debug)]
#[must_use = "the reconcile is measured when the timer is dropped"]
pub struct ReconcileTimer {
    metrics: Metrics,
    start: Instant,
    result: Option<ReconcileResult>,
}

impl ReconcileTimer {
    pub fn finish(mut self, result: ReconcileResult) {
        self.result = Some(result);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let result = self.result.unwrap_or(ReconcileResult::Failed);
        self.metrics
            .reconcile_duration
            .observe(self.start.elapsed().as_secs_f64());
        self.metrics
            .reconciles
            .get_or_create(&ReconcileLabel { result })
            .inc();
    }
}

/// A `{revision="..."} 1` sample that is replaced, not added to, on change.
#[derive(Debug, Clone, Default)]
struct RevisionInfo {
    family: Family<RevisionLabel, Gauge>,
    current: Arc<Mutex<Option<String>>>,
}

impl RevisionInfo {
    fn set(&self, revision: Option<&str>) {
        let mut current = lock(&self.current);
        if current.as_deref() == revision {
            return;
        }
        // Add the new sample before removing the old one: a scrape never sees none.
        if let Some(revision) = revision {
            self.family
                .get_or_create(&RevisionLabel {
                    revision: revision.into(),
                })
                .set(1);
        }
        if let Some(old) = current.take() {
            self.family.remove(&RevisionLabel { revision: old });
        }
        *current = revision.map(str::to_string);
    }
}

/// A gauge whose value is the time since `start`, computed when scraped, so it keeps
/// growing while the loop sleeps in its backoff.
#[derive(Debug, Clone, Default)]
struct UnreachableSince(Arc<Mutex<Option<Instant>>>);

impl UnreachableSince {
    fn start(&self) {
        lock(&self.0).get_or_insert_with(Instant::now);
    }

    fn stop(&self) {
        *lock(&self.0) = None;
    }

    fn seconds(&self) -> f64 {
        lock(&self.0).map_or(0.0, |since| since.elapsed().as_secs_f64())
    }
}

impl EncodeMetric for UnreachableSince {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_gauge(&self.seconds())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Locks, ignoring poisoning: the guarded values stay valid whatever a panicking
/// holder did (each write is a single assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
