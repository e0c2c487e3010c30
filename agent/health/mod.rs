//! Health: after an apply, wait until every applied object is ready (kstatus rules),
//! or the timeout passes, or one of them fails for good.
//!
//! In: the applied objects. Out: a [`Verdict`] — only a healthy verdict lets a
//! revision be recorded as `good`.

pub mod kstatus;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plan::live::{self, WithStatus};
use crate::plan::{Planned, api_for};
pub use kstatus::Readiness;

/// How often objects are read again while waiting.
const POLL: Duration = Duration::from_secs(1);

/// The outcome of waiting for health.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy {
        after: Duration,
    },
    /// Objects not ready when the wait ended, with the reason for each.
    Unhealthy {
        not_ready: Vec<(String, String)>,
        failed: bool,
    },
}

impl Verdict {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Verdict::Healthy { .. })
    }

    /// The first reason, for statuses and events.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Healthy { .. } => None,
            Verdict::Unhealthy { not_ready, .. } => {
                not_ready.first().map(|(o, r)| format!("{o}: {r}"))
            }
        }
    }
}

async fn read_one(client: &kube::Client, p: &Planned) -> Readiness {
    let api = api_for(client, &p.kind, p.manifest.id.namespace.as_deref());
    match api.get_opt(&p.manifest.id.name).await {
        Ok(Some(live)) => kstatus::assess(&serde_json::to_value(live).unwrap_or(Value::Null)),
        Ok(None) => Readiness::InProgress("not found".into()),
        Err(e) => Readiness::InProgress(format!(
            "reading it failed: {}",
            crate::plan::api_reason(&e)
        )),
    }
}

/// Kinds whose readiness is worth a request; the rest are ready once applied.
pub fn worth_watching(object: &Value) -> bool {
    let kind = object["kind"].as_str().unwrap_or_default();
    matches!(
        kind,
        "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Job"
            | "Pod"
            | "PersistentVolumeClaim"
            | "CustomResourceDefinition"
    ) || (kind == "Service"
        && object.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer"))
        || object.pointer("/status/conditions").is_some()
        || !matches!(
            object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .split('/')
                .next(),
            Some(
                "v1" | "apps"
                    | "batch"
                    | "rbac.authorization.k8s.io"
                    | "networking.k8s.io"
                    | "policy"
                    | "autoscaling"
                    | "coordination.k8s.io"
                    | "storage.k8s.io"
                    | "scheduling.k8s.io"
                    | "admissionregistration.k8s.io"
                    | "apiextensions.k8s.io"
            )
        )
}

/// Waits until all objects are ready, one has failed, or `timeout` passes. Each
/// round reads the objects with one LIST per kind and namespace (the members of
/// ApplySet `applyset_id`), and any object the lists miss on its own.
pub async fn wait(
    client: &kube::Client,
    objects: &[Planned],
    applyset_id: &str,
    timeout: Duration,
) -> Verdict {
    let started = Instant::now();
    let mut pending: Vec<&Planned> = objects.iter().filter(|p| p.watch).collect();
    loop {
        let mut not_ready = Vec::new();
        let mut failed = false;
        let mut still = Vec::new();
        let ids = pending.iter().map(|p| (&p.manifest.id, &p.kind));
        let mut listed =
            live::list_by_id::<WithStatus, _>(client, ids, applyset_id, kstatus::assess).await;
        for p in pending {
            let readiness = match listed.remove(&p.manifest.id) {
                Some(readiness) => readiness,
                None => read_one(client, p).await,
            };
            match readiness {
                Readiness::Ready => {}
                Readiness::InProgress(reason) => {
                    not_ready.push((p.manifest.id.to_string(), reason));
                    still.push(p);
                }
                Readiness::Failed(reason) => {
                    failed = true;
                    not_ready.push((p.manifest.id.to_string(), reason));
                    still.push(p);
                }
            }
        }
        if not_ready.is_empty() {
            return Verdict::Healthy {
                after: started.elapsed(),
            };
        }
        if failed || started.elapsed() >= timeout {
            // Failures first: they are the reason worth reading.
            not_ready.sort_by_key(|(_, r)| {
                !r.contains("failed") && !r.contains("exceeded") && !r.contains("stalled")
            });
            return Verdict::Unhealthy { not_ready, failed };
        }
        pending = still;
        tokio::time::sleep(POLL.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}
