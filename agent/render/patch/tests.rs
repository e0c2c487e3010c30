//! The appliers' rules, one by one. `tests/kustomize_patch.rs` checks the same
//! against the real `kustomize build`.

use serde_json::{Value, json};

use super::*;

fn deploy(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": containers}}}
    })
}

fn names(doc: &Value) -> Vec<&str> {
    doc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn containers_merge_by_name_with_the_patch_elements_first() {
    let mut t = deploy(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    let p = deploy(json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]));
    assert_eq!(strategic_merge(&mut t, &p).unwrap(), Merged::Patched);
    assert_eq!(names(&t), ["b", "c", "a"]);
    assert_eq!(
        t["spec"]["template"]["spec"]["containers"][0]["image"],
        "b:2"
    );
}

#[test]
fn delete_and_replace_directives_on_elements_lists_and_maps() {
    let base = deploy(json!([{"name": "a"}, {"name": "b"}]));
    let mut t = base.clone();
    strategic_merge(&mut t, &deploy(json!([{"name": "a", "$patch": "delete"}]))).unwrap();
    assert_eq!(names(&t), ["b"]);

    let mut t = base.clone();
    strategic_merge(
        &mut t,
        &deploy(json!([{"$patch": "replace"}, {"name": "z"}])),
    )
    .unwrap();
    assert_eq!(names(&t), ["z"]);

    let mut t = base.clone();
    let p =
        json!({"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"x": "y"}}}}});
    strategic_merge(&mut t, &p).unwrap();
    assert_eq!(
        t["spec"]["template"],
        json!({"metadata": {"labels": {"x": "y"}}})
    );

    let mut t = base;
    assert_eq!(
        strategic_merge(&mut t, &json!({"$patch": "delete"})).unwrap(),
        Merged::Deleted
    );
}

#[test]
fn null_deletes_and_plain_lists_are_replaced() {
    let mut t = deploy(json!([{"name": "a", "args": ["x", "y"], "image": "i"}]));
    strategic_merge(
        &mut t,
        &deploy(json!([{"name": "a", "args": ["z"], "image": null}])),
    )
    .unwrap();
    let c = &t["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"], json!(["z"]));
    assert!(c.get("image").is_none());
}

#[test]
fn custom_resources_replace_lists_whole() {
    let mut t = json!({"apiVersion": "x.io/v1", "kind": "W", "spec": {"l": [{"name": "a", "v": 1}, {"name": "b"}]}});
    let p = json!({"spec": {"l": [{"name": "a", "v": 2}]}});
    strategic_merge(&mut t, &p).unwrap();
    assert_eq!(t["spec"]["l"], json!([{"name": "a", "v": 2}]));
}

#[test]
fn finalizers_merge_as_a_set() {
    let mut t =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": ["a", "b"]}});
    let p = json!({"metadata": {"finalizers": ["c", "a"]}});
    strategic_merge(&mut t, &p).unwrap();
    assert_eq!(t["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn bad_patches_name_the_path_and_leave_the_target_alone() {
    let base = deploy(json!([{"name": "a"}]));
    let mut t = base.clone();
    let err = strategic_merge(&mut t, &json!({"spec": {"template": "oops"}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge at spec.template: the patch has a scalar where the target has a map"
    );
    assert_eq!(t, base);
    let err = strategic_merge(&mut t, &json!({"spec": {"$patch": "explode"}})).unwrap_err();
    assert!(
        err.to_string()
            .contains("at spec: unknown patch strategy \"explode\""),
        "{err}"
    );
    assert_eq!(t, base);
}

#[test]
fn json6902_operations_and_pointer_escapes() {
    let mut t = json!({"a": {"b/c": 1, "d~e": [1, 2]}});
    let ops = [
        json!({"op": "add", "path": "/a/d~0e/-", "value": 3}),
        json!({"op": "replace", "path": "/a/b~1c", "value": 9}),
        json!({"op": "copy", "from": "/a/d~0e", "path": "/copy"}),
        json!({"op": "move", "from": "/a/b~1c", "path": "/moved"}),
        json!({"op": "remove", "path": "/a/d~0e/0"}),
        json!({"op": "test", "path": "/moved", "value": 9.0}),
    ];
    json6902(&mut t, &ops).unwrap();
    assert_eq!(
        t,
        json!({"a": {"d~e": [2, 3]}, "copy": [1, 2, 3], "moved": 9})
    );
}

#[test]
fn json6902_is_all_or_nothing_and_names_the_failing_operation() {
    let base = json!({"a": [1]});
    let mut t = base.clone();
    let ops = [
        json!({"op": "add", "path": "/b", "value": 1}),
        json!({"op": "remove", "path": "/a/3"}),
    ];
    let err = json6902(&mut t, &ops).unwrap_err().to_string();
    assert_eq!(
        err,
        "json patch operation 1 (remove \"/a/3\"): index \"3\" is out of range for a list of 1"
    );
    assert_eq!(t, base);
    let err = json6902(&mut t, &[json!({"op": "test", "path": "/a/0", "value": 2})]).unwrap_err();
    assert!(
        err.to_string().contains("does not hold the tested value"),
        "{err}"
    );
}
