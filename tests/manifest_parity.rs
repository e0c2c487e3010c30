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
use support::parity::{
    accepted, hawser_apply, hawser_diff, kubeconfig_in, kubectl_dry_run, one_line_error,
};

/// The issue's report: a List whose items use `batch/v1` (and, nested one level
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

/// hawser's and kubectl's verdicts on one file in `ns`.
fn verdicts(name: &str, content: &[u8], ns: &TestNamespace) -> (bool, String, bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    let kubeconfig_dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_in(&ns.name, kubeconfig_dir.path());
    let (kubectl_ok, kubectl_said) = kubectl_dry_run(&file, &kubeconfig);
    let diff = hawser_diff(dir.path(), &ns.name);
    let said = match one_line_error(&diff) {
        Ok(line) => line.to_string(),
        Err(_) => diff.stderr.clone(),
    };
    (kubectl_ok, kubectl_said, accepted(&diff), said)
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: NAME\ndata:\n  a: \"1\"\n";

/// The input forms of the issue, each against kubectl's verdict: the same, except
/// Lists nested in Lists, which kubectl refuses with an internal error (`is not a
/// list: no Items field`) and hawser expands, as the README says.
#[test]
fn input_forms_get_kubectls_verdict() {
    let ns = TestNamespace::new("parity-forms");
    let crlf = CM.replace("NAME", "crlf").replace('\n', "\r\n");
    let bom = format!("\u{feff}{}", CM.replace("NAME", "bom"));
    let comments = format!(
        "--- # first\n{}--- # second\n{}",
        CM.replace("NAME", "c1"),
        CM.replace("NAME", "c2")
    );
    let ends = format!(
        "{}...\n---\n{}...\n",
        CM.replace("NAME", "e1"),
        CM.replace("NAME", "e2")
    );
    let array = r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j1"}}]"#;
    let yaml_array = "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: y1\n";
    let generate = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: g-\n";
    let nested = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: n1\n";
    // (file, content, whether hawser accepts, what its refusal must say)
    let cases: &[(&str, &str, bool, &str)] = &[
        ("crlf.yaml", &crlf, true, ""),
        ("bom.yaml", &bom, true, ""),
        ("comments.yaml", &comments, true, ""),
        ("ends.yaml", &ends, true, ""),
        (
            "array.json",
            array,
            false,
            "document is a sequence, not a mapping",
        ),
        (
            "array.yaml",
            yaml_array,
            false,
            "document is a sequence, not a mapping",
        ),
        (
            "generate.yaml",
            generate,
            false,
            "generateName is not supported",
        ),
        ("nested.yaml", nested, true, ""),
    ];
    for &(name, content, hawser_accepts, refusal) in cases {
        let (kubectl_ok, kubectl_said, hawser_ok, hawser_said) =
            verdicts(name, content.as_bytes(), &ns);
        assert_eq!(hawser_ok, hawser_accepts, "{name}: hawser: {hawser_said}");
        if name == "nested.yaml" {
            assert!(
                !kubectl_ok && kubectl_said.contains("is not a list"),
                "{name}: kubectl still refuses nested Lists: {kubectl_said}"
            );
        } else {
            assert_eq!(
                kubectl_ok, hawser_ok,
                "{name}: kubectl: {kubectl_said}; hawser: {hawser_said}"
            );
        }
        assert!(
            hawser_said.contains(refusal),
            "{name}: hawser's refusal says why: {hawser_said}"
        );
        if !hawser_ok {
            assert!(
                hawser_said.contains(name),
                "{name}: names the file: {hawser_said}"
            );
        }
    }
}

/// Strict field validation, as kubectl's server-side apply asks: a field the schema
/// does not know rejects the revision at the dry run, naming the field, as kubectl
/// does. A field given twice is refused before any request, naming the key, where
/// kubectl keeps the last one. (The corpus's
/// invalid-deployment-unknown-and-duplicate-fields.yaml has both: both refuse it.)
#[test]
fn unknown_and_duplicate_fields_are_refused() {
    let ns = TestNamespace::new("parity-fields");
    let deployment = |extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: strict\nspec:\n  replicas: 1\n{extra}  selector:\n    matchLabels: {{app: strict}}\n  template:\n    metadata:\n      labels: {{app: strict}}\n    spec:\n      containers:\n      - name: c\n        image: nginx\n"
        )
    };
    let (kubectl_ok, kubectl_said, hawser_ok, hawser_said) =
        verdicts("unknown.yaml", deployment("  foo: bar\n").as_bytes(), &ns);
    assert!(
        !kubectl_ok,
        "kubectl refuses an unknown field: {kubectl_said}"
    );
    assert!(!hawser_ok);
    assert!(
        hawser_said.contains(".spec.foo: field not declared in schema"),
        "{hawser_said}"
    );

    let (kubectl_ok, kubectl_said, hawser_ok, hawser_said) =
        verdicts("twice.yaml", deployment("  replicas: 2\n").as_bytes(), &ns);
    // kubectl decodes the YAML itself, the last `replicas` silently winning, and the
    // server never sees the duplicate; hawser refuses it, so that what Git says is
    // never ambiguous.
    assert!(
        kubectl_ok,
        "kubectl now refuses a duplicate field too ({kubectl_said}): update the README"
    );
    assert!(!hawser_ok);
    assert!(
        hawser_said.contains("twice.yaml: document 1") && hawser_said.contains("duplicate key"),
        "{hawser_said}"
    );
    assert!(
        !support::cluster::exists("deployment.apps", &ns.name, "strict"),
        "nothing was written"
    );
}

/// An object in a namespace that the revision does not create and that does not
/// exist: refused at the dry run, naming the namespace, as kubectl refuses it.
#[test]
fn a_namespace_nobody_creates_is_refused_as_by_kubectl() {
    let ns = TestNamespace::new("parity-ghost");
    let ghost = format!("{}-ghost", ns.name);
    let content =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: {ghost}\n");
    let (kubectl_ok, kubectl_said, hawser_ok, hawser_said) =
        verdicts("lost.yaml", content.as_bytes(), &ns);
    assert!(!kubectl_ok, "kubectl: {kubectl_said}");
    assert!(!hawser_ok);
    assert!(
        hawser_said.contains(&format!("namespaces \"{ghost}\" not found")),
        "{hawser_said}"
    );
}
