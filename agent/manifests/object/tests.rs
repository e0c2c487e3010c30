use serde_json::json;

use super::*;
use crate::manifests::{BuiltinNamespacing, Stage};

fn doc(file: &str, document: usize, value: Value) -> Document {
    Document::new(
        Location {
            file: file.into(),
            document,
            line: Some(document * 10),
            item: None,
        },
        value,
    )
}

fn scope() -> Scope {
    Scope {
        namespace: "edge".into(),
        ..Scope::default()
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

fn build_err(docs: Vec<Document>, scope: &Scope) -> String {
    build(docs, scope, &BuiltinNamespacing)
        .unwrap_err()
        .to_string()
}

#[test]
fn fills_in_the_namespace_of_namespaced_objects() {
    let set = build(
        vec![doc("a.yaml", 1, cm("c"))],
        &scope(),
        &BuiltinNamespacing,
    )
    .unwrap();
    let m = &set.objects[0];
    assert_eq!(m.id.namespace.as_deref(), Some("edge"));
    assert_eq!(m.object.tree()["metadata"]["namespace"], "edge");
    assert_eq!(m.id.to_string(), "ConfigMap edge/c");
    assert_eq!(m.id.group_kind(), "ConfigMap");
    assert_eq!(m.stage, Stage::Namespaced);
    assert!(set.warnings.is_empty());
}

#[test]
fn drops_the_namespace_of_cluster_scoped_objects_with_a_warning() {
    let scope = Scope {
        allow_cluster_scoped: true,
        ..scope()
    };
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high", "namespace": "edge"}, "value": 10});
    let set = build(vec![doc("a.yaml", 1, pc)], &scope, &BuiltinNamespacing).unwrap();
    let m = &set.objects[0];
    assert_eq!(m.id.namespace, None);
    assert_eq!(m.object.tree()["metadata"].get("namespace"), None);
    assert_eq!(m.id.to_string(), "PriorityClass high");
    assert_eq!(m.id.group_kind(), "PriorityClass.scheduling.k8s.io");
    assert_eq!(
        set.warnings,
        [
            "a.yaml: document 1 (line 10): PriorityClass high: metadata.namespace edge ignored: the kind is cluster-scoped"
        ]
    );
}

#[test]
fn missing_fields_name_file_document_and_line() {
    let cases = [
        (
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
            "apiVersion is missing",
        ),
        (
            json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
            "kind is missing",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            "metadata.name is missing",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
            "metadata.name is missing",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ""}}),
            "metadata.name is missing",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 12}}),
            "metadata.name must be a string, found a number",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": []}),
            "metadata must be a mapping, found a sequence",
        ),
        (
            json!({"apiVersion": 1, "kind": "ConfigMap", "metadata": {"name": "a"}}),
            "apiVersion must be a string, found a number",
        ),
        (
            json!({"apiVersion": "a/b/c", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            "apiVersion \"a/b/c\" is not `version` or `group/version`",
        ),
        (
            json!({"apiVersion": "/v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            "apiVersion \"/v1\" is not `version` or `group/version`",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "a-"}}),
            "metadata.name is missing (generateName is not supported: hawser tracks and prunes objects by name, and a generated one changes on every apply)",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a/b"}}),
            "metadata.name \"a/b\" is not a valid object name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ".."}}),
            "metadata.name \"..\" is not a valid object name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "Shop"}}),
            "metadata.namespace \"Shop\" is not a valid namespace name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": true}}),
            "metadata.namespace must be a string, found a boolean",
        ),
        (json!(["a"]), "document is a sequence, not a mapping"),
        (json!("text"), "document is a string, not a mapping"),
    ];
    for (value, rule) in cases {
        let docs = vec![
            doc("apps/a.yaml", 1, cm("ok")),
            doc("apps/a.yaml", 2, value),
        ];
        assert_eq!(
            build_err(docs, &scope()),
            format!("apps/a.yaml: document 2 (line 20): {rule}")
        );
    }
}

#[test]
fn the_same_object_twice_is_an_error() {
    let docs = vec![
        doc("a.yaml", 1, cm("c")),
        doc("b.yaml", 1, cm("d")),
        doc(
            "b.yaml",
            2,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "edge"}}),
        ),
    ];
    assert_eq!(
        build_err(docs, &scope()),
        "b.yaml: document 2 (line 20): ConfigMap edge/c is defined twice (first in a.yaml: document 1 (line 10))"
    );
}

#[test]
fn same_name_in_another_kind_group_or_namespace_is_not_a_duplicate() {
    let scope = Scope {
        allowed_namespaces: vec!["shop".into()],
        ..scope()
    };
    let docs = vec![
        doc("a.yaml", 1, cm("c")),
        doc(
            "a.yaml",
            2,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}),
        ),
        doc(
            "a.yaml",
            3,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}),
        ),
        doc(
            "a.yaml",
            4,
            json!({"apiVersion": "example.com/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ),
    ];
    assert_eq!(
        build(docs, &scope, &BuiltinNamespacing)
            .unwrap()
            .objects
            .len(),
        4
    );
}

#[test]
fn lists_are_flattened_with_item_locations() {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        cm("a"),
        {"apiVersion": "v1", "kind": "ConfigMapList", "items": [cm("b")]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
    ]});
    let err = build_err(vec![doc("l.yaml", 1, list.clone())], &scope());
    assert_eq!(
        err,
        "l.yaml: document 1 (line 10), item 3: metadata.name is missing"
    );

    let mut list = list;
    list["items"].as_array_mut().unwrap().pop();
    let set = build(vec![doc("l.yaml", 1, list)], &scope(), &BuiltinNamespacing).unwrap();
    let names: Vec<&str> = set.objects.iter().map(|m| m.id.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(set.objects[1].location.item, Some(1));

    let empty = json!({"apiVersion": "v1", "kind": "List", "items": null});
    assert!(
        build(vec![doc("l.yaml", 1, empty)], &scope(), &BuiltinNamespacing)
            .unwrap()
            .objects
            .is_empty()
    );
    let bad = json!({"apiVersion": "v1", "kind": "List", "items": {"a": 1}});
    assert_eq!(
        build_err(vec![doc("l.yaml", 1, bad)], &scope()),
        "l.yaml: document 1 (line 10): items of kind List must be a sequence, found a mapping"
    );
}

#[test]
fn expanding_lists_yields_the_items_nested_lists_too() {
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "r"}});
    let inner = json!({"apiVersion": "v1", "kind": "List", "items": [cron.clone()]});
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [cm("a"), inner]});
    let docs = expand_lists(vec![doc("l.yaml", 1, list), doc("l.yaml", 2, cm("b"))]).unwrap();
    let kinds: Vec<(String, Option<usize>)> = docs
        .iter()
        .map(|d| {
            (
                d.tree()["apiVersion"].as_str().unwrap().to_string(),
                d.location.item,
            )
        })
        .collect();
    // What discovery is asked about: the items' apiVersions, never the Lists' `v1` alone.
    assert_eq!(
        kinds,
        [
            ("v1".to_string(), Some(1)),
            ("batch/v1".to_string(), Some(1)),
            ("v1".to_string(), None)
        ]
    );
    assert_eq!(docs[1].tree(), cron);
}

#[test]
fn nested_lists_are_bounded() {
    let mut value = cm("a");
    for _ in 0..6 {
        value = json!({"apiVersion": "v1", "kind": "List", "items": [value]});
    }
    let err = build_err(vec![doc("l.yaml", 1, value)], &scope());
    assert!(
        err.ends_with(": Lists are nested more than 4 deep"),
        "{err}"
    );
}

#[test]
fn one_object_outside_the_scope_rejects_the_set_naming_it() {
    let docs = vec![
        doc("a.yaml", 1, cm("c")),
        doc(
            "a.yaml",
            2,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}),
        ),
        doc(
            "a.yaml",
            3,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        ),
        doc(
            "a.yaml",
            4,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "db"}}),
        ),
    ];
    assert_eq!(
        build_err(docs, &scope()),
        "a.yaml: document 2 (line 20): Deployment shop/api: namespace shop is outside the scope (allowed: edge) (and 2 more objects outside the scope)"
    );
}

#[test]
fn a_crd_in_the_same_set_makes_its_kind_known() {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Gadget", "plural": "gadgets"}, "scope": "Cluster"},
    });
    let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "edge"}});
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let scope = Scope {
        allow_cluster_scoped: true,
        allow_kinds: vec!["CustomResourceDefinition".into()],
        ..scope()
    };
    let docs = vec![
        doc("a.yaml", 1, gadget),
        doc("a.yaml", 2, widget),
        doc("crds.yaml", 1, crd),
    ];
    let set = build(docs, &scope, &BuiltinNamespacing).unwrap();
    let ids: Vec<String> = set.objects.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "CustomResourceDefinition gadgets.example.com",
            "Gadget g",
            "Widget edge/w"
        ]
    );
    assert_eq!(
        set.warnings,
        [
            "a.yaml: document 1 (line 10): Gadget g: metadata.namespace edge ignored: the kind is cluster-scoped",
            "a.yaml: document 2 (line 20): kind Widget.example.com is not known (and no CRD for it is in these manifests); treated as namespaced",
        ]
    );
}

#[test]
fn objects_come_out_in_apply_order() {
    let scope = Scope {
        allow_cluster_scoped: true,
        allow_kinds: vec![
            "ValidatingWebhookConfiguration".into(),
            "ClusterRole".into(),
        ],
        ..scope()
    };
    let docs = vec![
        doc(
            "a.yaml",
            1,
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"}}),
        ),
        doc(
            "a.yaml",
            2,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
        ),
        doc("a.yaml", 3, cm("c2")),
        doc(
            "a.yaml",
            4,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}),
        ),
        doc("a.yaml", 5, cm("c1")),
        doc(
            "a.yaml",
            6,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
        ),
        doc(
            "a.yaml",
            7,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge"}}),
        ),
    ];
    let set = build(docs, &scope, &BuiltinNamespacing).unwrap();
    let stages: Vec<(Stage, usize)> = set
        .by_stage()
        .iter()
        .map(|(s, objects)| (*s, objects.len()))
        .collect();
    assert_eq!(
        stages,
        [
            (Stage::ClusterFoundation, 1),
            (Stage::ClusterScoped, 1),
            (Stage::Namespaced, 4),
            (Stage::Admission, 1)
        ]
    );
    assert_eq!(
        set.group_kinds(),
        [
            "ClusterRole.rbac.authorization.k8s.io",
            "ConfigMap",
            "Deployment.apps",
            "Namespace",
            "ServiceAccount",
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io",
        ]
    );
    assert_eq!(set.namespaces(), ["edge"]);
    let order: Vec<(Stage, String)> = set
        .objects
        .iter()
        .map(|m| (m.stage, m.id.to_string()))
        .collect();
    assert_eq!(
        order,
        [
            (Stage::ClusterFoundation, "Namespace edge".to_string()),
            (Stage::ClusterScoped, "ClusterRole r".to_string()),
            (Stage::Namespaced, "ServiceAccount edge/sa".to_string()),
            (Stage::Namespaced, "ConfigMap edge/c2".to_string()),
            (Stage::Namespaced, "ConfigMap edge/c1".to_string()),
            (Stage::Namespaced, "Deployment edge/d".to_string()),
            (
                Stage::Admission,
                "ValidatingWebhookConfiguration v".to_string()
            ),
        ]
    );
}

#[test]
fn untrusted_text_in_messages_stays_on_one_line() {
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Config\nMap", "metadata": {"name": "a"}}),
            "kind \"Config\\nMap\" is not a valid kind (letters and digits, starting with a letter)",
        ),
        (
            json!({"apiVersion": "Apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}),
            "apiVersion \"Apps/v1\" is not `version` or `group/version`",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a\u{1b}[2J"}}),
            "metadata.name \"a\\u{1b}[2J\" is not a valid object name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a b"}}),
            "metadata.name \"a b\" is not a valid object name",
        ),
    ];
    for (value, rule) in cases {
        assert_eq!(
            build_err(vec![doc("a.yaml", 1, value)], &scope()),
            format!("a.yaml: document 1 (line 10): {rule}")
        );
    }
    let long = "x".repeat(300);
    let err = build_err(
        vec![doc(
            "a.yaml",
            1,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": long}}),
        )],
        &scope(),
    );
    assert!(err.len() < 200, "{err}");
    assert!(err.contains("xxx…\""), "{err}");
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "evil\nname"}});
    let err = build_err(vec![doc("a.yaml", 1, binding)], &scope());
    assert!(
        err.contains("ClusterRole \"evil\\nname\" grants power"),
        "{err}"
    );
}

#[test]
fn string_maps_reject_yaml_1_1_booleans_and_numbers() {
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"enabled": true}}),
            "data.enabled must be a string, found a boolean (quote it: unquoted yes, no, on, off, true, false are booleans)",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labels": {"port": 8080}}}),
            "metadata.labels.port must be a string, found a number (quote it)",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "annotations": {"x y": ["a"]}}}),
            "metadata.annotations.\"x y\" must be a string, found a sequence",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "stringData": {"n": 1.5}}),
            "stringData.n must be a string, found a number (quote it)",
        ),
    ];
    for (value, rule) in cases {
        assert_eq!(
            build_err(vec![doc("a.yaml", 1, value)], &scope()),
            format!("a.yaml: document 1 (line 10): {rule}")
        );
    }
    // Other kinds' `data` is theirs to define; strings and nulls are fine.
    let ok = [
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "data": {"n": 1}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "yes", "b": null}}, "data": {"k": "on"}}),
    ];
    let docs = ok
        .into_iter()
        .enumerate()
        .map(|(i, v)| doc("a.yaml", i + 1, v))
        .collect();
    assert!(build(docs, &scope(), &BuiltinNamespacing).is_ok());
}
