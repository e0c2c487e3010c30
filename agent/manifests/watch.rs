//! Which objects are worth watching for readiness: a property of what an object is,
//! decided from its manifest before it is sent, so `plan` can mark it and `health`
//! need not look at objects that are ready once applied.

use serde_json::Value;

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
