//! Manifests read as kubectl reads them, against the real control plane, with
//! kubectl v1.35.4 (from tests/env) as the oracle: kinds inside `List`s reach
//! discovery, the input forms users write (CRLF, BOM, `---` with comments, `...`,
//! JSON arrays, nested Lists, `generateName`), strict field validation, and objects in
//! a namespace that nobody creates.
//!
//! The whole-corpus comparison is `tests/kubectl_corpus.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::cluster::{TestNamespace, admin_kubeconfig, kubectl_raw, write_tree};
use support::parity::{hawser_apply, hawser_diff};

/// The report: a List whose items use `batch/v1` (and, nested one level
/// deeper, `policy/v1`), in a revision where nothing else does. Before the fix the
/// List's own `v1` was all discovery was asked about.
#[test]
fn kinds_inside_lists_reach_discovery() {
    let ns = TestNamespace::new("parity-list");
    let dir = tempfile::tempdir().unwrap();
    let list = "apiVersion: v1\nkind: List\nitems:\n\
        - apiVersion: batch/v1\n  kind: CronJob\n  metadata:\n    name: shop-report\n  spec:\n    schedule: \"0 3 * * *\"\n    jobTemplate:\n      spec:\n        template:\n          spec:\n            restartPolicy: OnFailure\n            containers:\n            - name: report\n              image: busybox\n\
        - apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: policy/v1\n    kind: PodDisruptionBudget\n    metadata:\n      name: shop\n    spec:\n      minAvailable: 1\n      selector:\n        matchLabels: {app: shop}\n";
    write_tree(dir.path(), &[("50-list.yaml", list)]);

    let diff = hawser_diff(dir.path(), &ns.name);
    assert_eq!(
        diff.code, 1,
        "diff finds the two objects to create: {}",
        diff.stderr
    );
    assert!(
        !diff.stderr.contains("not known") && !diff.stderr.contains("not served"),
        "the items' kinds were discovered: {}",
        diff.stderr
    );

    let apply = hawser_apply(dir.path(), &ns.name);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    for (kind, name) in [
        ("cronjob.batch", "shop-report"),
        ("poddisruptionbudget.policy", "shop"),
    ] {
        assert!(
            support::cluster::exists(kind, &ns.name, name),
            "{kind} {name} was applied"
        );
    }
}

/// A cluster-scoped CRD and one of its objects, both inside a List: the object must be
/// known to be cluster-scoped before apply (no namespace given to it), which takes
/// the CRD's scope from inside the List.
#[test]
fn a_crd_inside_a_list_defines_the_scope_of_its_objects() {
    let ns = TestNamespace::new("parity-crd-list");
    let group = format!("{}.parity.hawser.test", ns.name);
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n\
         - apiVersion: apiextensions.k8s.io/v1\n  kind: CustomResourceDefinition\n  metadata:\n    name: gauges.{group}\n  spec:\n    group: {group}\n    scope: Cluster\n    names: {{plural: gauges, singular: gauge, kind: Gauge, listKind: GaugeList}}\n    versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec: {{type: object, properties: {{level: {{type: integer}}}}}}\n\
         - apiVersion: {group}/v1\n  kind: Gauge\n  metadata:\n    name: tank\n  spec:\n    level: 3\n"
    );
    write_tree(dir.path(), &[("crd.yaml", &list)]);

    let diff = hawser_diff(dir.path(), &ns.name);
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    assert!(
        !diff.stderr.contains("treated as namespaced"),
        "the CRD's scope was read from inside the List: {}",
        diff.stderr
    );
    let apply = hawser_apply(dir.path(), &ns.name);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let level = kubectl_raw(
        &[
            "get",
            &format!("gauges.{group}"),
            "tank",
            "-o",
            "jsonpath={.spec.level}",
        ],
        &admin_kubeconfig(),
    );
    assert_eq!(String::from_utf8_lossy(&level.stdout), "3");
    let _ = kubectl_raw(
        &["delete", "crd", &format!("gauges.{group}"), "--wait=false"],
        &admin_kubeconfig(),
    );
}
