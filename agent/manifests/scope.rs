//! What a revision may touch: namespaces, cluster-scoped objects, kinds that grant
//! power. The service account's RBAC is the hard boundary; the scope makes a
//! violation visible before anything is written, and rejects the whole revision.

use std::collections::HashMap;

use serde_json::Value;

use super::error::Shown;
use super::{ObjectRef, ScopeRule};

/// Whether a kind is namespaced. The agent answers from API discovery; `validate` from
/// [`BuiltinNamespacing`]. `None` means the kind is unknown.
pub trait Namespacing {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool>;
}

/// What a revision may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// The agent's own namespace: always allowed, and given to namespaced objects that
    /// name no namespace.
    pub namespace: String,
    /// Further namespaces objects may be in; `*` allows every namespace.
    pub allowed_namespaces: Vec<String>,
    /// Whether cluster-scoped objects (Namespaces, ClusterRoles, …) are allowed.
    pub allow_cluster_scoped: bool,
    /// Kinds that grant power (see [`power_kind`]) that are allowed anyway, as `Kind` or
    /// `Kind.group`. `RoleBinding` allows RoleBindings to ClusterRoles.
    pub allow_kinds: Vec<String>,
    /// Kinds refused even if otherwise allowed, as `Kind` or `Kind.group`.
    pub deny_kinds: Vec<String>,
}

impl Scope {
    /// The namespaces objects may be in, the agent's own first, for messages.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.namespace.clone()];
        for ns in &self.allowed_namespaces {
            if !all.contains(ns) {
                all.push(ns.clone());
            }
        }
        all
    }

    fn namespace_allowed(&self, ns: &str) -> bool {
        ns == self.namespace || self.allowed_namespaces.iter().any(|a| a == ns || a == "*")
    }

    /// Checks one object (namespace already filled in) against the scope.
    pub fn check(&self, id: &ObjectRef, object: &Value) -> Result<(), ScopeRule> {
        if kind_listed(&self.deny_kinds, id) {
            return Err(ScopeRule::Denied {
                group_kind: id.group_kind(),
            });
        }
        if power_kind(&id.group, &id.kind) && !kind_listed(&self.allow_kinds, id) {
            return Err(ScopeRule::PowerKind {
                group_kind: id.group_kind(),
                kind: id.kind.clone(),
            });
        }
        if let Some(role) = cluster_role_ref(id, object)
            && !kind_listed(&self.allow_kinds, id)
        {
            return Err(ScopeRule::RoleBindingToClusterRole { role });
        }
        let namespace = match &id.namespace {
            Some(ns) => Some(ns),
            None if !self.allow_cluster_scoped => return Err(ScopeRule::ClusterScoped),
            // A Namespace object opens a namespace: it must be one the scope allows.
            None if id.group.is_empty() && id.kind == "Namespace" => Some(&id.name),
            None => None,
        };
        if let Some(ns) = namespace
            && !self.namespace_allowed(ns)
        {
            return Err(ScopeRule::NamespaceOutside {
                namespace: ns.clone(),
                allowed: self.namespaces(),
            });
        }
        Ok(())
    }
}

/// Kinds that grant power over the cluster or over other workloads: RBAC at cluster
/// level, admission control, API extension.
pub fn power_kind(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole" | "ClusterRoleBinding"
        ) | (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "MutatingAdmissionPolicy"
                | "MutatingAdmissionPolicyBinding"
        ) | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("apiregistration.k8s.io", "APIService")
    )
}

/// The ClusterRole a RoleBinding grants, if it is one: bound in a namespace, a
/// ClusterRole such as `admin` or `cluster-admin` gives full power there.
fn cluster_role_ref(id: &ObjectRef, object: &Value) -> Option<Shown> {
    if id.group != "rbac.authorization.k8s.io" || id.kind != "RoleBinding" {
        return None;
    }
    let role_ref = object.get("roleRef")?;
    if role_ref.get("kind")?.as_str()? != "ClusterRole" {
        return None;
    }
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    Some(Shown::new(name))
}

/// Whether `list` names the object's kind, as `Kind` or `Kind.group`.
fn kind_listed(list: &[String], id: &ObjectRef) -> bool {
    list.iter()
        .any(|entry| *entry == id.kind || *entry == id.group_kind())
}

/// The kinds Kubernetes itself serves (v1.35), for `validate` without a cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinNamespacing;

/// (group, kind, namespaced). Checked against k8s-openapi in the tests.
pub(crate) const BUILTIN_KINDS: &[(&str, &str, bool)] = &[
    ("", "Binding", true),
    ("", "ComponentStatus", false),
    ("", "ConfigMap", true),
    ("", "Endpoints", true),
    ("", "Event", true),
    ("", "LimitRange", true),
    ("", "Namespace", false),
    ("", "Node", false),
    ("", "PersistentVolume", false),
    ("", "PersistentVolumeClaim", true),
    ("", "Pod", true),
    ("", "PodTemplate", true),
    ("", "ReplicationController", true),
    ("", "ResourceQuota", true),
    ("", "Secret", true),
    ("", "Service", true),
    ("", "ServiceAccount", true),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        false,
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition", false),
    ("apiregistration.k8s.io", "APIService", false),
    ("apps", "ControllerRevision", true),
    ("apps", "DaemonSet", true),
    ("apps", "Deployment", true),
    ("apps", "ReplicaSet", true),
    ("apps", "StatefulSet", true),
    ("autoscaling", "HorizontalPodAutoscaler", true),
    ("batch", "CronJob", true),
    ("batch", "Job", true),
    ("certificates.k8s.io", "CertificateSigningRequest", false),
    ("certificates.k8s.io", "ClusterTrustBundle", false),
    ("coordination.k8s.io", "Lease", true),
    ("coordination.k8s.io", "LeaseCandidate", true),
    ("discovery.k8s.io", "EndpointSlice", true),
    ("events.k8s.io", "Event", true),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", false),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        false,
    ),
    ("networking.k8s.io", "IPAddress", false),
    ("networking.k8s.io", "Ingress", true),
    ("networking.k8s.io", "IngressClass", false),
    ("networking.k8s.io", "NetworkPolicy", true),
    ("networking.k8s.io", "ServiceCIDR", false),
    ("node.k8s.io", "RuntimeClass", false),
    ("policy", "PodDisruptionBudget", true),
    ("rbac.authorization.k8s.io", "ClusterRole", false),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", false),
    ("rbac.authorization.k8s.io", "Role", true),
    ("rbac.authorization.k8s.io", "RoleBinding", true),
    ("resource.k8s.io", "DeviceClass", false),
    ("resource.k8s.io", "ResourceClaim", true),
    ("resource.k8s.io", "ResourceClaimTemplate", true),
    ("resource.k8s.io", "ResourceSlice", false),
    ("scheduling.k8s.io", "PriorityClass", false),
    ("storage.k8s.io", "CSIDriver", false),
    ("storage.k8s.io", "CSINode", false),
    ("storage.k8s.io", "CSIStorageCapacity", true),
    ("storage.k8s.io", "StorageClass", false),
    ("storage.k8s.io", "VolumeAttachment", false),
    ("storage.k8s.io", "VolumeAttributesClass", false),
];

impl Namespacing for BuiltinNamespacing {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        BUILTIN_KINDS
            .iter()
            .find(|(g, k, _)| *g == group && *k == kind)
            .map(|(_, _, namespaced)| *namespaced)
    }
}

/// Another [`Namespacing`], completed by the CustomResourceDefinitions of the same
/// revision: a new CRD's kind is known before the cluster serves it. The inner answer
/// wins (a CRD's scope cannot change once created).
pub struct CrdNamespacing<'a> {
    inner: &'a dyn Namespacing,
    crds: HashMap<(String, String), bool>,
}

impl<'a> CrdNamespacing<'a> {
    /// Reads `spec.group`, `spec.names.kind` and `spec.scope` of every CRD among
    /// `objects`. Malformed CRDs are skipped here; the API server's dry run reports them.
    pub fn new<'v>(
        inner: &'a dyn Namespacing,
        objects: impl IntoIterator<Item = &'v Value>,
    ) -> Self {
        let mut crds = HashMap::new();
        for object in objects {
            if let Some((group, kind, namespaced)) = crd_kind(object) {
                crds.insert((group, kind), namespaced);
            }
        }
        Self { inner, crds }
    }
}

fn crd_kind(object: &Value) -> Option<(String, String, bool)> {
    let api_version = object.get("apiVersion")?.as_str()?;
    if object.get("kind")?.as_str()? != "CustomResourceDefinition"
        || !api_version.starts_with("apiextensions.k8s.io/")
    {
        return None;
    }
    let spec = object.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let kind = spec.get("names")?.get("kind")?.as_str()?;
    let namespaced = match spec.get("scope")?.as_str()? {
        "Namespaced" => true,
        "Cluster" => false,
        _ => return None,
    };
    Some((group.to_string(), kind.to_string(), namespaced))
}

impl Namespacing for CrdNamespacing<'_> {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.inner.is_namespaced(group, kind).or_else(|| {
            self.crds
                .get(&(group.to_string(), kind.to_string()))
                .copied()
        })
    }
}

#[cfg(test)]
mod tests;
