//! Reporting inside the cluster: the status block on the inventory parent and
//! Kubernetes Events on it, where `kubectl describe cm <name>` shows them.
//!
//! Messages carry object names and field paths, never field values, so Secret data
//! cannot reach an event or a status.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{ConfigMap, Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};

use crate::inventory::Parent;

/// What `kubectl get cm <name> -o yaml` shows under `data.status` (JSON), and what
/// `hawser status` prints. Only outcomes are recorded, no clock readings of polls,
/// so a no-op reconcile writes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterStatus {
    pub source: String,
    /// The revision the source named when the outcome was recorded.
    pub desired: Option<String>,
    pub applied: Option<String>,
    pub good: Option<String>,
    /// Why the desired revision could not be stored in the cache (disk full,
    /// read-only): it is not applied until it can be. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_unstorable: Option<String>,
    /// success, rejected, failed, unhealthy, suspended.
    pub result: String,
    pub message: String,
    /// RFC 3339, when the outcome was recorded.
    pub time: String,
    pub objects: usize,
    pub suspended: bool,
    /// RFC 3339, when the source stopped answering; absent while reachable.
    pub source_unreachable_since: Option<String>,
    /// `--cluster-name`, when given: the name status reports carry.
    pub cluster: Option<String>,
    /// The last commit statuses this cluster would post (or did), oldest first: what
    /// `hawser status --export` carries across an air gap.
    pub outcomes: Vec<crate::report::export::OutcomeRecord>,
    /// `--sync-window`s' state, when any is configured.
    pub sync_window: Option<SyncWindowStatus>,
}

/// Whether the change windows let a new revision through now, and when that flips.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncWindowStatus {
    pub open: bool,
    /// RFC 3339: when a closed window next opens (an open one next closes).
    pub next: Option<String>,
    /// `opens 22:00 CET`, in the zone of the window that decides it.
    pub description: String,
}

impl ClusterStatus {
    /// Equal apart from the time: re-recording the same outcome is not a change.
    pub fn same_outcome(&self, other: &ClusterStatus) -> bool {
        let mut a = self.clone();
        a.time = other.time.clone();
        a == *other
    }
}

/// Normal or Warning, as Kubernetes Events have them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Emits an Event on the parent. Failing to emit is logged, never fatal: events are
/// a courtesy, the status and the logs carry the same facts.
pub async fn event(
    client: &kube::Client,
    parent: &Parent,
    severity: Severity,
    reason: &str,
    message: &str,
) {
    let api: Api<Event> = Api::namespaced(client.clone(), &parent.namespace);
    let uid = Api::<ConfigMap>::namespaced(client.clone(), &parent.namespace)
        .get_opt(&parent.name)
        .await
        .ok()
        .flatten()
        .and_then(|cm| cm.metadata.uid);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let message: String = message.chars().take(1024).collect();
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", parent.name)),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(parent.name.clone()),
            namespace: Some(parent.namespace.clone()),
            uid,
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(match severity {
            Severity::Normal => "Normal".into(),
            Severity::Warning => "Warning".into(),
        }),
        source: Some(EventSource {
            component: Some("hawser".into()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some("hawser".into()),
        reporting_instance: Some(format!("hawser-{}", parent.namespace)),
        ..Default::default()
    };
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(reason, error = %crate::cluster::api_reason(&e), "could not emit an event");
    }
}

/// Seconds since the epoch as RFC 3339 (UTC), without a date crate.
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::export::OutcomeRecord;
    use crate::report::forge::CommitState;

    #[test]
    fn a_new_outcome_is_a_change_and_a_new_time_is_not() {
        let outcome = OutcomeRecord {
            commit: "a".repeat(40),
            state: CommitState::Pending,
            description: "applying 2 objects".into(),
            time: "2026-11-23T10:00:00Z".into(),
        };
        let before = ClusterStatus {
            result: "success".into(),
            cluster: Some("site-7".into()),
            outcomes: vec![outcome.clone()],
            time: "2026-11-23T10:00:00Z".into(),
            ..Default::default()
        };
        let later = ClusterStatus {
            time: "2026-11-23T11:00:00Z".into(),
            ..before.clone()
        };
        assert!(
            later.same_outcome(&before),
            "a no-op reconcile writes nothing"
        );
        let mut news = later.clone();
        news.outcomes.push(OutcomeRecord {
            state: CommitState::Success,
            ..outcome
        });
        assert!(!news.same_outcome(&before));
    }
}
