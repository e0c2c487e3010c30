use serde_json::json;

use super::*;

fn id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ObjectRef {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        name: name.into(),
    }
}

fn scope() -> Scope {
    Scope {
        namespace: "edge".into(),
        ..Scope::default()
    }
}

fn check(scope: &Scope, id: &ObjectRef) -> Result<(), String> {
    scope.check(id, &json!({})).map_err(|rule| rule.to_string())
}

#[test]
fn own_namespace_is_allowed_and_others_are_not() {
    let s = scope();
    assert!(check(&s, &id("v1", "ConfigMap", Some("edge"), "a")).is_ok());
    assert_eq!(
        check(&s, &id("apps/v1", "Deployment", Some("shop"), "api")).unwrap_err(),
        "namespace shop is outside the scope (allowed: edge)"
    );
}

#[test]
fn allowed_namespaces_add_to_the_own_one() {
    let s = Scope {
        allowed_namespaces: vec!["shop".into(), "web".into()],
        ..scope()
    };
    assert!(check(&s, &id("v1", "ConfigMap", Some("shop"), "a")).is_ok());
    assert!(check(&s, &id("v1", "ConfigMap", Some("edge"), "a")).is_ok());
    assert_eq!(
        check(&s, &id("v1", "ConfigMap", Some("db"), "a")).unwrap_err(),
        "namespace db is outside the scope (allowed: edge, shop, web)"
    );
    let all = Scope {
        allowed_namespaces: vec!["*".into()],
        ..scope()
    };
    assert!(check(&all, &id("v1", "ConfigMap", Some("db"), "a")).is_ok());
}

#[test]
fn cluster_scoped_objects_need_the_flag() {
    let pc = id("scheduling.k8s.io/v1", "PriorityClass", None, "high");
    assert_eq!(
        check(&scope(), &pc).unwrap_err(),
        "cluster-scoped objects are outside the scope (allow with --allow-cluster-scoped)"
    );
    let s = Scope {
        allow_cluster_scoped: true,
        ..scope()
    };
    assert!(check(&s, &pc).is_ok());
}

#[test]
fn a_namespace_object_must_be_an_allowed_namespace() {
    let s = Scope {
        allow_cluster_scoped: true,
        allowed_namespaces: vec!["shop".into()],
        ..scope()
    };
    assert!(check(&s, &id("v1", "Namespace", None, "shop")).is_ok());
    assert_eq!(
        check(&s, &id("v1", "Namespace", None, "kube-system")).unwrap_err(),
        "namespace kube-system is outside the scope (allowed: edge, shop)"
    );
}

#[test]
fn every_power_kind_needs_allow_kinds() {
    let power = [
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
        ),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
        ),
        (
            "admissionregistration.k8s.io/v1beta1",
            "MutatingAdmissionPolicy",
        ),
        (
            "admissionregistration.k8s.io/v1beta1",
            "MutatingAdmissionPolicyBinding",
        ),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
    ];
    let cluster = Scope {
        allow_cluster_scoped: true,
        ..scope()
    };
    for (api_version, kind) in power {
        let object = id(api_version, kind, None, "x");
        let group = api_version.split('/').next().unwrap();
        assert_eq!(
            check(&cluster, &object).unwrap_err(),
            format!(
                "kind {kind}.{group} grants power and is not allowed (allow with --allow-kinds {kind})"
            ),
        );
        // Allowed by kind or by kind.group; still subject to the cluster-scoped rule.
        for entry in [kind.to_string(), format!("{kind}.{group}")] {
            let allowed = Scope {
                allow_kinds: vec![entry],
                ..cluster.clone()
            };
            assert!(check(&allowed, &object).is_ok(), "{kind}");
            let not_cluster = Scope {
                allow_cluster_scoped: false,
                ..allowed
            };
            assert!(check(&not_cluster, &object).is_err(), "{kind}");
        }
    }
    // Same kind name in another group is not a power kind.
    assert!(check(&cluster, &id("example.com/v1", "ClusterRole", None, "x")).is_ok());
}

#[test]
fn a_role_binding_to_a_cluster_role_needs_allow_kinds() {
    let binding = id(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        Some("edge"),
        "b",
    );
    let to_cluster_role = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}});
    let to_role = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}});
    assert_eq!(
        scope()
            .check(&binding, &to_cluster_role)
            .unwrap_err()
            .to_string(),
        "a RoleBinding to ClusterRole admin grants power and is not allowed (allow with --allow-kinds RoleBinding)"
    );
    assert!(scope().check(&binding, &to_role).is_ok());
    let allowed = Scope {
        allow_kinds: vec!["RoleBinding".into()],
        ..scope()
    };
    assert!(allowed.check(&binding, &to_cluster_role).is_ok());
}

#[test]
fn deny_kinds_win_over_everything() {
    let s = Scope {
        allow_kinds: vec!["ClusterRole".into()],
        deny_kinds: vec![
            "Secret".into(),
            "ClusterRole.rbac.authorization.k8s.io".into(),
        ],
        allow_cluster_scoped: true,
        ..scope()
    };
    assert_eq!(
        check(&s, &id("v1", "Secret", Some("edge"), "s")).unwrap_err(),
        "kind Secret is denied (--deny-kinds)"
    );
    assert_eq!(
        check(
            &s,
            &id("rbac.authorization.k8s.io/v1", "ClusterRole", None, "r")
        )
        .unwrap_err(),
        "kind ClusterRole.rbac.authorization.k8s.io is denied (--deny-kinds)"
    );
}

#[test]
fn builtin_namespacing_knows_core_kinds_only() {
    let b = BuiltinNamespacing;
    assert_eq!(b.is_namespaced("", "ConfigMap"), Some(true));
    assert_eq!(b.is_namespaced("", "Namespace"), Some(false));
    assert_eq!(b.is_namespaced("apps", "Deployment"), Some(true));
    assert_eq!(
        b.is_namespaced("rbac.authorization.k8s.io", "ClusterRole"),
        Some(false)
    );
    assert_eq!(b.is_namespaced("extensions", "Deployment"), None);
    assert_eq!(b.is_namespaced("example.com", "Widget"), None);
}

/// The hand-written table agrees with k8s-openapi's generated one.
#[test]
fn builtin_table_matches_k8s_openapi() {
    use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
    use std::any::TypeId;

    fn entry<R: Resource>() -> (&'static str, &'static str, bool)
    where
        R::Scope: 'static,
    {
        let scope = TypeId::of::<R::Scope>();
        assert!(
            scope == TypeId::of::<NamespaceResourceScope>()
                || scope == TypeId::of::<ClusterResourceScope>()
        );
        (
            R::GROUP,
            R::KIND,
            scope == TypeId::of::<NamespaceResourceScope>(),
        )
    }
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, apps::v1 as apps, autoscaling::v2 as autoscaling,
        batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
        discovery::v1 as discovery, networking::v1 as networking, node::v1 as node,
        policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
    let generated = [
        entry::<core::Binding>(),
        entry::<core::ComponentStatus>(),
        entry::<core::ConfigMap>(),
        entry::<core::Endpoints>(),
        entry::<core::Event>(),
        entry::<core::LimitRange>(),
        entry::<core::Namespace>(),
        entry::<core::Node>(),
        entry::<core::PersistentVolume>(),
        entry::<core::PersistentVolumeClaim>(),
        entry::<core::Pod>(),
        entry::<core::PodTemplate>(),
        entry::<core::ReplicationController>(),
        entry::<core::ResourceQuota>(),
        entry::<core::Secret>(),
        entry::<core::Service>(),
        entry::<core::ServiceAccount>(),
        entry::<adm::MutatingWebhookConfiguration>(),
        entry::<adm::ValidatingAdmissionPolicy>(),
        entry::<adm::ValidatingAdmissionPolicyBinding>(),
        entry::<adm::ValidatingWebhookConfiguration>(),
        entry::<apiext::CustomResourceDefinition>(),
        entry::<apireg::APIService>(),
        entry::<apps::ControllerRevision>(),
        entry::<apps::DaemonSet>(),
        entry::<apps::Deployment>(),
        entry::<apps::ReplicaSet>(),
        entry::<apps::StatefulSet>(),
        entry::<autoscaling::HorizontalPodAutoscaler>(),
        entry::<batch::CronJob>(),
        entry::<batch::Job>(),
        entry::<coordination::Lease>(),
        entry::<discovery::EndpointSlice>(),
        entry::<networking::IPAddress>(),
        entry::<networking::Ingress>(),
        entry::<networking::IngressClass>(),
        entry::<networking::NetworkPolicy>(),
        entry::<networking::ServiceCIDR>(),
        entry::<node::RuntimeClass>(),
        entry::<policy::PodDisruptionBudget>(),
        entry::<rbac::ClusterRole>(),
        entry::<rbac::ClusterRoleBinding>(),
        entry::<rbac::Role>(),
        entry::<rbac::RoleBinding>(),
        entry::<scheduling::PriorityClass>(),
        entry::<storage::CSIDriver>(),
        entry::<storage::CSINode>(),
        entry::<storage::CSIStorageCapacity>(),
        entry::<storage::StorageClass>(),
        entry::<storage::VolumeAttachment>(),
        entry::<storage::VolumeAttributesClass>(),
    ];
    for (group, kind, namespaced) in generated {
        assert_eq!(
            BuiltinNamespacing.is_namespaced(group, kind),
            Some(namespaced),
            "{kind}.{group}"
        );
    }
}

#[test]
fn crds_in_the_set_make_their_kinds_known() {
    let crd = |group: &str, kind: &str, scope: &str| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "x"},
            "spec": {"group": group, "names": {"kind": kind, "plural": "xs"}, "scope": scope},
        })
    };
    let objects = [
        crd("example.com", "Widget", "Namespaced"),
        crd("example.com", "Gadget", "Cluster"),
        crd("example.com", "Broken", "Sideways"),
        // A CRD may not redefine a built-in kind's scope.
        crd("", "ConfigMap", "Cluster"),
    ];
    let ns = CrdNamespacing::new(&BuiltinNamespacing, &objects);
    assert_eq!(ns.is_namespaced("example.com", "Widget"), Some(true));
    assert_eq!(ns.is_namespaced("example.com", "Gadget"), Some(false));
    assert_eq!(ns.is_namespaced("example.com", "Broken"), None);
    assert_eq!(ns.is_namespaced("", "ConfigMap"), Some(true));
    assert_eq!(ns.is_namespaced("other.com", "Widget"), None);
}
