//! Apply order, pure. Objects go by [`Stage`], then by kind within the stage, then in
//! file order (files sorted by path, documents in order), which keeps it stable.
//! Prune walks the same order backwards.
//!
//! - [`Stage::ClusterFoundation`]: CustomResourceDefinition, then Namespace.
//! - [`Stage::ClusterScoped`]: PriorityClass, StorageClass, PersistentVolume,
//!   ClusterRole, ClusterRoleBinding, IngressClass, RuntimeClass, then the rest
//!   (admission policies included: they run in the API server and need nothing else).
//! - [`Stage::Namespaced`]: first what constrains pods (ResourceQuota, LimitRange,
//!   NetworkPolicy) so no pod ever starts unconstrained; then ServiceAccount, Role,
//!   RoleBinding, ConfigMap, Secret, PersistentVolumeClaim, Service; then workloads
//!   (Pod, ReplicationController, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job,
//!   CronJob); then everything else (Ingress, HorizontalPodAutoscaler, custom resources).
//! - [`Stage::Admission`]: APIService, MutatingWebhookConfiguration,
//!   ValidatingWebhookConfiguration: last, once the Services they call exist.

use super::{Manifest, ObjectRef, Stage};

/// The stage of a kind, given whether it is namespaced.
pub fn stage_of(group: &str, kind: &str, namespaced: bool) -> Stage {
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => {
            Stage::ClusterFoundation
        }
        ("apiregistration.k8s.io", "APIService")
        | (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => Stage::Admission,
        _ if namespaced => Stage::Namespaced,
        _ => Stage::ClusterScoped,
    }
}

const FOUNDATION: &[(&str, &str)] = &[
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "Namespace"),
];

const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
];

const NAMESPACED: &[(&str, &str)] = &[
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("", "Pod"),
    ("", "ReplicationController"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
];

const ADMISSION: &[(&str, &str)] = &[
    ("apiregistration.k8s.io", "APIService"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
];

/// The sort key of an object in apply order: stage, then rank of its kind in the
/// stage's list (kinds not listed come after the listed ones, all equal).
pub fn apply_key(id: &ObjectRef) -> (Stage, usize) {
    let stage = id.stage();
    let list = match stage {
        Stage::ClusterFoundation => FOUNDATION,
        Stage::ClusterScoped => CLUSTER_SCOPED,
        Stage::Namespaced => NAMESPACED,
        Stage::Admission => ADMISSION,
    };
    let rank = list
        .iter()
        .position(|(g, k)| *g == id.group && *k == id.kind)
        .unwrap_or(list.len());
    (stage, rank)
}

/// Sorts manifests into apply order; a stable sort, so file order breaks ties.
pub fn sort_for_apply(objects: &mut [Manifest]) {
    objects.sort_by_key(|m| apply_key(&m.id));
}

/// Sorts objects into prune order: apply order reversed, so workloads go before the
/// ConfigMaps and ServiceAccounts they use, and Namespaces and CRDs go last.
pub fn sort_for_prune(ids: &mut [ObjectRef]) {
    ids.sort_by_key(|id| std::cmp::Reverse(apply_key(id)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(group: &str, kind: &str, namespace: Option<&str>) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: "x".into(),
        }
    }

    #[test]
    fn stages_follow_scope_and_kind() {
        let cases = [
            (
                id("apiextensions.k8s.io", "CustomResourceDefinition", None),
                Stage::ClusterFoundation,
            ),
            (id("", "Namespace", None), Stage::ClusterFoundation),
            (
                id("rbac.authorization.k8s.io", "ClusterRole", None),
                Stage::ClusterScoped,
            ),
            (id("example.com", "Widget", None), Stage::ClusterScoped),
            (id("example.com", "Widget", Some("a")), Stage::Namespaced),
            (id("", "ConfigMap", Some("a")), Stage::Namespaced),
            (
                id(
                    "admissionregistration.k8s.io",
                    "ValidatingWebhookConfiguration",
                    None,
                ),
                Stage::Admission,
            ),
            (
                id(
                    "admissionregistration.k8s.io",
                    "ValidatingAdmissionPolicy",
                    None,
                ),
                Stage::ClusterScoped,
            ),
            (
                id("apiregistration.k8s.io", "APIService", None),
                Stage::Admission,
            ),
        ];
        for (id, stage) in cases {
            assert_eq!(id.stage(), stage, "{id}");
        }
    }

    #[test]
    fn apply_order_is_stage_then_kind_list_then_input_order() {
        let mut ids = vec![
            id(
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                None,
            ),
            id("example.com", "Widget", Some("a")),
            id("apps", "Deployment", Some("a")),
            id("", "Service", Some("a")),
            id("", "Secret", Some("a")),
            id("", "ConfigMap", Some("a")),
            id("rbac.authorization.k8s.io", "RoleBinding", Some("a")),
            id("rbac.authorization.k8s.io", "Role", Some("a")),
            id("", "ServiceAccount", Some("a")),
            id("", "PersistentVolumeClaim", Some("a")),
            id("rbac.authorization.k8s.io", "ClusterRole", None),
            id("", "Namespace", None),
            id("apiextensions.k8s.io", "CustomResourceDefinition", None),
            id("batch", "CronJob", Some("a")),
        ];
        ids.sort_by_key(apply_key);
        let kinds: Vec<&str> = ids.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ClusterRole",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Secret",
                "PersistentVolumeClaim",
                "Service",
                "Deployment",
                "CronJob",
                "Widget",
                "MutatingWebhookConfiguration",
            ]
        );
        sort_for_prune(&mut ids);
        assert_eq!(ids[0].kind, "MutatingWebhookConfiguration");
        assert_eq!(ids[ids.len() - 1].kind, "CustomResourceDefinition");
    }
}
