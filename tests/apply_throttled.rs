//! An apply under API Priority and Fairness pressure: the real API server sheds
//! hawser's requests with 429 and `Retry-After`, and the apply still completes,
//! because every request backs off as the server says (kube's client retry layer,
//! which `cluster::connect` keeps on) instead of failing the revision.
//!
//! The test puts the agent's ServiceAccount in a priority level of its own with the
//! smallest share of seats, no borrowing and no queue (`Reject`), so the 16 requests
//! hawser keeps in flight (`cluster::CONCURRENCY`) overflow it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::cluster::{
    AGENT_RULES, TestNamespace, admin_kubeconfig, audit_events, audit_sync, hawser, kubectl,
    kubectl_raw, sa_kubeconfig, sa_user,
};

/// Deletes the flow schema and priority level when the test ends, however it ends.
struct Throttle {
    name: String,
}

impl Throttle {
    fn new(name: &str, namespace: &str, sa: &str) -> Throttle {
        let manifest = format!(
            "apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: {name}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse:
      type: Reject
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: {name}
spec:
  priorityLevelConfiguration:
    name: {name}
  matchingPrecedence: 500
  distinguisherMethod:
    type: ByUser
  rules:
  - subjects:
    - kind: ServiceAccount
      serviceAccount:
        name: {sa}
        namespace: {namespace}
    resourceRules:
    - verbs: ['*']
      apiGroups: ['*']
      resources: ['*']
      namespaces: ['*']
      clusterScope: true
    nonResourceRules:
    - verbs: ['*']
      nonResourceURLs: ['*']
"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("throttle.yaml");
        std::fs::write(&path, manifest).unwrap();
        kubectl(&["apply", "-f", path.to_str().unwrap()]);
        Throttle {
            name: name.to_string(),
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        for kind in ["flowschema", "prioritylevelconfiguration"] {
            let _ = kubectl_raw(
                &["delete", kind, &self.name, "--ignore-not-found"],
                &admin_kubeconfig(),
            );
        }
    }
}

#[test]
fn apply_completes_when_the_api_server_sheds_load_with_429() {
    let ns = TestNamespace::new("throttled");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let _throttle = Throttle::new(&ns.name, &ns.name, "hawser");

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let objects = 200;
    let mut text = String::new();
    for i in 0..objects {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:03}\ndata:\n  value: \"{i}\"\n"
        ));
    }
    std::fs::write(tree.join("configmaps.yaml"), text).unwrap();

    let run = hawser(
        &[
            "apply",
            "--once",
            "--dir",
            tree.to_str().unwrap(),
            "--namespace",
            &ns.name,
        ],
        &kubeconfig,
    );
    assert_eq!(run.code, 0, "apply failed under throttling: {}", run.stderr);
    let listed = kubectl(&["get", "configmaps", "-n", &ns.name, "-o", "name"]);
    let applied = listed
        .lines()
        .filter(|l| l.starts_with("configmap/cm-"))
        .count();
    assert_eq!(applied, objects, "every object applied: {listed}");

    // The server did shed the agent's requests: otherwise this test proved nothing.
    audit_sync();
    let user = sa_user(&ns.name, "hawser");
    let rejected = audit_events(&user)
        .into_iter()
        .filter(|e| e["responseStatus"]["code"] == 429)
        .count();
    assert!(
        rejected > 0,
        "the API server never answered 429, so the backoff was not exercised"
    );
}
