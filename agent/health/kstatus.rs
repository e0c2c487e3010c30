//! Pure readiness rules, after kstatus (sigs.k8s.io/cli-utils): given an object as
//! the API server returns it, is it ready, still progressing, or failed?

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet; the reason says what is missing.
    InProgress(String),
    /// Will not become ready without a change (e.g. a Job that failed).
    Failed(String),
}

use Readiness::{Failed, InProgress, Ready};

/// Kinds with no status to wait for (ConfigMaps, Secrets, RBAC, …) are Ready.
pub fn assess(object: &Value) -> Readiness {
    if let Some(stale) = stale_generation(object) {
        return stale;
    }
    let group = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .rev()
        .nth(1)
        .unwrap_or("");
    match (group, object["kind"].as_str().unwrap_or_default()) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => statefulset(object),
        ("apps", "DaemonSet") => daemonset(object),
        ("apps", "ReplicaSet") => replicaset(object),
        ("batch", "Job") => job(object),
        ("", "Pod") => pod(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Service") => service(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        _ => generic(object),
    }
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn condition_is(object: &Value, kind: &str, status: &str) -> bool {
    condition(object, kind).is_some_and(|c| c["status"] == status)
}

fn message(c: Option<&Value>) -> String {
    c.and_then(|c| c["message"].as_str().or(c["reason"].as_str()))
        .unwrap_or_default()
        .to_string()
}

/// The controller has not seen the latest spec yet.
fn stale_generation(object: &Value) -> Option<Readiness> {
    let generation = int(object, "/metadata/generation")?;
    let observed = int(object, "/status/observedGeneration")?;
    (observed < generation)
        .then(|| InProgress(format!("observed generation {observed} of {generation}")))
}

fn replicas_ready(kind: &str, want: i64, have: &[(&str, Option<i64>)]) -> Readiness {
    for (what, n) in have {
        let n = n.unwrap_or(0);
        if n < want {
            return InProgress(format!("{kind}: {n} of {want} replicas {what}"));
        }
    }
    Ready
}

fn deployment(o: &Value) -> Readiness {
    if condition(o, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return Failed(format!(
            "progress deadline exceeded: {}",
            message(condition(o, "Progressing"))
        ));
    }
    if int(o, "/status/observedGeneration").is_none() {
        return InProgress("Deployment: not yet observed by its controller".into());
    }
    let want = int(o, "/spec/replicas").unwrap_or(1);
    replicas_ready(
        "Deployment",
        want,
        &[
            ("updated", int(o, "/status/updatedReplicas")),
            ("available", int(o, "/status/availableReplicas")),
        ],
    )
    .and_then(|| {
        let total = int(o, "/status/replicas").unwrap_or(0);
        (total > want).then(|| {
            InProgress(format!(
                "Deployment: {total} replicas, {} wanted (old ones terminating)",
                want
            ))
        })
    })
}

fn statefulset(o: &Value) -> Readiness {
    if int(o, "/status/observedGeneration").is_none() {
        return InProgress("StatefulSet: not yet observed by its controller".into());
    }
    let want = int(o, "/spec/replicas").unwrap_or(1);
    replicas_ready(
        "StatefulSet",
        want,
        &[
            ("ready", int(o, "/status/readyReplicas")),
            ("updated", int(o, "/status/updatedReplicas")),
        ],
    )
    .and_then(|| {
        let current = o.pointer("/status/currentRevision");
        let update = o.pointer("/status/updateRevision");
        (update.is_some() && current != update)
            .then(|| InProgress("StatefulSet: rolling update in progress".into()))
    })
}

fn daemonset(o: &Value) -> Readiness {
    if int(o, "/status/observedGeneration").is_none() {
        return InProgress("DaemonSet: not yet observed by its controller".into());
    }
    let want = int(o, "/status/desiredNumberScheduled").unwrap_or(0);
    replicas_ready(
        "DaemonSet",
        want,
        &[
            ("available", int(o, "/status/numberAvailable")),
            ("updated", int(o, "/status/updatedNumberScheduled")),
        ],
    )
}

fn replicaset(o: &Value) -> Readiness {
    let want = int(o, "/spec/replicas").unwrap_or(1);
    replicas_ready(
        "ReplicaSet",
        want,
        &[("available", int(o, "/status/availableReplicas"))],
    )
}

fn job(o: &Value) -> Readiness {
    if condition_is(o, "Failed", "True") {
        return Failed(format!("Job failed: {}", message(condition(o, "Failed"))));
    }
    if condition_is(o, "Complete", "True") {
        return Ready;
    }
    InProgress("Job: not complete".into())
}

fn pod(o: &Value) -> Readiness {
    match o.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => Ready,
        Some("Failed") => Failed(format!(
            "Pod failed: {}",
            o.pointer("/status/message")
                .and_then(Value::as_str)
                .unwrap_or("")
        )),
        Some("Running") if condition_is(o, "Ready", "True") => Ready,
        phase => InProgress(format!("Pod: {}", phase.unwrap_or("Pending"))),
    }
}

fn pvc(o: &Value) -> Readiness {
    match o.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => Ready,
        Some("Lost") => Failed("PersistentVolumeClaim lost its volume".into()),
        phase => InProgress(format!(
            "PersistentVolumeClaim: {}",
            phase.unwrap_or("Pending")
        )),
    }
}

fn service(o: &Value) -> Readiness {
    if o.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
        return Ready;
    }
    let has_ingress = o
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty());
    if has_ingress {
        Ready
    } else {
        InProgress("Service: load balancer not provisioned".into())
    }
}

fn crd(o: &Value) -> Readiness {
    if condition_is(o, "Established", "True") {
        Ready
    } else {
        InProgress(
            format!(
                "CustomResourceDefinition not established {}",
                message(condition(o, "Established"))
            )
            .trim_end()
            .to_string(),
        )
    }
}

/// Custom resources and other kinds: `Stalled`, `Ready` and `Available` conditions.
fn generic(o: &Value) -> Readiness {
    if condition_is(o, "Stalled", "True") {
        return Failed(format!("stalled: {}", message(condition(o, "Stalled"))));
    }
    for kind in ["Ready", "Available"] {
        if condition_is(o, kind, "False") {
            return InProgress(format!("{kind}=False: {}", message(condition(o, kind))));
        }
    }
    if condition_is(o, "Reconciling", "True") {
        return InProgress(format!(
            "reconciling: {}",
            message(condition(o, "Reconciling"))
        ));
    }
    Ready
}

trait AndThen {
    fn and_then(self, next: impl FnOnce() -> Option<Readiness>) -> Readiness;
}

impl AndThen for Readiness {
    /// When ready so far, a further check may still say otherwise.
    fn and_then(self, next: impl FnOnce() -> Option<Readiness>) -> Readiness {
        match self {
            Ready => next().unwrap_or(Ready),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(
        generation: i64,
        observed: i64,
        replicas: i64,
        updated: i64,
        available: i64,
    ) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated, "availableReplicas": available}})
    }

    #[test]
    fn deployments() {
        assert_eq!(assess(&deploy(2, 2, 3, 3, 3)), Ready);
        assert!(
            matches!(assess(&deploy(2, 1, 3, 3, 3)), InProgress(r) if r.contains("generation 1 of 2"))
        );
        assert!(
            matches!(assess(&deploy(1, 1, 3, 3, 1)), InProgress(r) if r.contains("1 of 3 replicas available"))
        );
        let mut stuck = deploy(1, 1, 3, 0, 0);
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out"}]);
        assert!(matches!(assess(&stuck), Failed(r) if r.contains("timed out")));
        let unobserved = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1}, "spec": {}});
        assert!(matches!(assess(&unobserved), InProgress(_)));
    }

    #[test]
    fn jobs_pods_claims_services_crds() {
        let job = |t: &str| json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": t, "status": "True", "message": "m"}]}});
        assert_eq!(assess(&job("Complete")), Ready);
        assert!(matches!(assess(&job("Failed")), Failed(_)));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(assess(&pod), Ready);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert!(matches!(assess(&pvc), InProgress(_)));
        let lb = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert!(matches!(assess(&lb), InProgress(_)));
        let cluster_ip =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}});
        assert_eq!(assess(&cluster_ip), Ready);
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(assess(&crd), Ready);
    }

    #[test]
    fn generic_conditions() {
        let cr = |t: &str, s: &str| json!({"apiVersion": "x.io/v1", "kind": "Widget", "metadata": {"generation": 3}, "status": {"observedGeneration": 3, "conditions": [{"type": t, "status": s, "message": "because"}]}});
        assert_eq!(assess(&cr("Ready", "True")), Ready);
        assert!(matches!(assess(&cr("Ready", "False")), InProgress(r) if r.contains("because")));
        assert!(matches!(assess(&cr("Stalled", "True")), Failed(_)));
        assert_eq!(
            assess(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            Ready
        );
    }
}
