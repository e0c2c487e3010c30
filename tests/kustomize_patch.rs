//! The patch appliers against the real `kustomize build` (v5.8.1, from
//! `tests/env/build-tools`, found through `HAWSER_TEST_TOOLS`).
//!
//! A generated set of base objects (Deployments with containers, env, ports, volumes;
//! Services with ports; a custom resource) and patches, strategic merge and JSON 6902,
//! hand-picked corner cases plus seeded random ones, is written into one
//! kustomization directory (one base object and one patch per case, each case its own
//! object name), built once by kustomize, and compared object by object with
//! `strategic_merge` / `json6902` applied to the same inputs. Patches kustomize
//! refuses are built one directory each: hawser must refuse them too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawser::render::patch::{Merged, json6902, strategic_merge};
use serde_json::{Value, json};

fn kustomize() -> PathBuf {
    let dir = std::env::var_os("HAWSER_TEST_TOOLS").unwrap_or_else(|| {
        panic!("HAWSER_TEST_TOOLS is not set: run tests/env/build-tools and export its output")
    });
    let bin = Path::new(&dir).join("kustomize");
    assert!(bin.is_file(), "no kustomize in {}", bin.display());
    bin
}

/// `kustomize build DIR`: the documents, or kustomize's error text.
fn build(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new(kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .expect("run kustomize");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    serde_saphyr::from_multiple::<Value>(&text).map_err(|e| format!("parse output: {e}"))
}

/// A base object made for a case's name.
type Make = fn(&str) -> Value;

enum Patch {
    Smp(Value),
    Json(Vec<Value>),
}

struct Case {
    name: String,
    base: Value,
    patch: Patch,
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": "base"},
            "finalizers": ["example.com/a", "example.com/b"]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1"}],
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.25",
                            "args": ["--port", "8080"],
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"}
                            ],
                            "ports": [
                                {"containerPort": 8080, "protocol": "TCP", "name": "http"},
                                {"containerPort": 9090, "name": "metrics"}
                            ],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                        },
                        {"name": "sidecar", "image": "envoy:1"}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "imagePullSecrets": [{"name": "regcred"}],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg"}}
                    ]
                }
            }
        }
    })
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                {"name": "https", "port": 443, "targetPort": 8443}
            ]
        }
    })
}

fn widget(name: &str) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {
            "size": 3,
            "parts": [{"name": "a", "n": 1}, {"name": "b", "n": 2}],
            "nested": {"x": 1, "y": {"z": 2}}
        }
    })
}

/// Other built-in kinds, to reach the merge lists of the table beyond Deployments.
fn cronjob(name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "job", "image": "j:1", "env": [{"name": "X", "value": "1"}]}]
        }}}}}
    })
}

fn pod_kind(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "a", "image": "a:1", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                 "volumes": [{"name": "v", "emptyDir": {}}]}
    })
}

fn statefulset(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"serviceName": "s", "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"a": "b"}},
                "spec": {"containers": [{"name": "db", "image": "pg:15"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}
    })
}

fn service_account(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name},
           "secrets": [{"name": "s1"}], "imagePullSecrets": [{"name": "p1"}]})
}

fn role(name: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
           "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"a": "1", "b": "2"}})
}

/// A strategic-merge patch for the object `base` names, with `body` merged in.
fn smp_for(base: &Value, body: Value) -> Value {
    let mut p = json!({
        "apiVersion": base["apiVersion"],
        "kind": base["kind"],
        "metadata": {"name": base["metadata"]["name"]}
    });
    merge_json(&mut p, body);
    p
}

/// Plain recursive JSON merge, to build patch documents.
fn merge_json(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge_json(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn containers(body: Value) -> Value {
    json!({"spec": {"template": {"spec": {"containers": body}}}})
}

fn pod(body: Value) -> Value {
    json!({"spec": {"template": {"spec": body}}})
}

/// The hand-picked strategic-merge corner cases: (name, base kind, patch body).
fn smp_cases() -> Vec<(&'static str, Make, Value)> {
    vec![
        (
            "image",
            deployment,
            containers(json!([{"name": "app", "image": "nginx:1.27"}])),
        ),
        (
            "new-container",
            deployment,
            containers(json!([{"name": "extra", "image": "redis:7"}])),
        ),
        (
            "env-merge",
            deployment,
            containers(
                json!([{"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]),
            ),
        ),
        (
            "delete-container",
            deployment,
            containers(json!([{"name": "sidecar", "$patch": "delete"}])),
        ),
        (
            "replace-containers",
            deployment,
            containers(json!([{"name": "only", "image": "x:1"}, {"$patch": "replace"}])),
        ),
        (
            "delete-list",
            deployment,
            containers(json!([{"name": "app", "env": [{"$patch": "delete"}]}])),
        ),
        (
            "merge-list-directive",
            deployment,
            containers(json!([{"$patch": "merge"}, {"name": "app", "image": "y:2"}])),
        ),
        (
            "replace-element",
            deployment,
            containers(json!([{"name": "app", "image": "z:3", "$patch": "replace"}])),
        ),
        (
            "replace-map",
            deployment,
            json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
        ),
        (
            "delete-map",
            deployment,
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
        ),
        (
            "merge-map",
            deployment,
            json!({"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}}),
        ),
        (
            "null-deletes",
            deployment,
            json!({"spec": {"replicas": null}, "metadata": {"labels": {"tier": null}}}),
        ),
        (
            "null-on-missing",
            deployment,
            json!({"spec": {"paused": null}}),
        ),
        (
            "args-replaced",
            deployment,
            containers(json!([{"name": "app", "args": ["--other"]}])),
        ),
        (
            "tolerations-replaced",
            deployment,
            pod(json!({"tolerations": [{"key": "b", "operator": "Exists"}]})),
        ),
        (
            "finalizers-set",
            deployment,
            json!({"metadata": {"finalizers": ["example.com/c", "example.com/a"]}}),
        ),
        (
            "ports-by-port-protocol",
            deployment,
            containers(
                json!([{"name": "app", "ports": [{"containerPort": 8080, "protocol": "UDP", "name": "dns"}]}]),
            ),
        ),
        (
            "ports-no-protocol",
            deployment,
            containers(
                json!([{"name": "app", "ports": [{"containerPort": 9090, "name": "prom"}]}]),
            ),
        ),
        (
            "ports-protocol-vs-none",
            deployment,
            containers(
                json!([{"name": "app", "ports": [{"containerPort": 9090, "protocol": "TCP", "name": "prom"}]}]),
            ),
        ),
        (
            "ports-new",
            deployment,
            containers(json!([{"name": "app", "ports": [{"containerPort": 7070}]}])),
        ),
        (
            "volumes",
            deployment,
            pod(
                json!({"volumes": [{"name": "cfg", "$patch": "delete"}, {"name": "tmp", "emptyDir": {}}]}),
            ),
        ),
        (
            "volume-change-source",
            deployment,
            pod(
                json!({"volumes": [{"name": "data", "emptyDir": null, "hostPath": {"path": "/srv"}}]}),
            ),
        ),
        (
            "init-containers",
            deployment,
            pod(
                json!({"initContainers": [{"name": "init", "command": ["sh"]}, {"name": "init2", "image": "b:2"}]}),
            ),
        ),
        (
            "pull-secrets",
            deployment,
            pod(json!({"imagePullSecrets": [{"name": "other"}]})),
        ),
        (
            "set-element-order",
            deployment,
            pod(
                json!({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}], "containers": [{"name": "app", "image": "q:1"}]}),
            ),
        ),
        (
            "retain-keys",
            deployment,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        ),
        (
            "delete-from-primitive-list",
            deployment,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
        ),
        (
            "container-without-name",
            deployment,
            containers(json!([{"image": "anon:1"}])),
        ),
        (
            "nested-new-with-directives",
            deployment,
            pod(
                json!({"affinity": {"nodeAffinity": {"x": 1, "gone": {"$patch": "delete"}, "nil": null}}}),
            ),
        ),
        (
            "new-list-with-replace",
            deployment,
            pod(
                json!({"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}, {"$patch": "replace"}]}),
            ),
        ),
        (
            "duplicate-patch-elements",
            deployment,
            containers(json!([{"name": "app", "image": "d:1"}, {"name": "app", "image": "d:2"}])),
        ),
        (
            "annotations",
            deployment,
            json!({"metadata": {"annotations": {"new": "x", "note": "patched"}}}),
        ),
        (
            "labels-replace",
            deployment,
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
        ),
        ("delete-whole", deployment, json!({"$patch": "delete"})),
        (
            "service-port-udp",
            service,
            json!({"spec": {"ports": [{"name": "dns", "port": 80, "protocol": "UDP"}]}}),
        ),
        (
            "service-port-change",
            service,
            json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
        ),
        (
            "service-port-delete",
            service,
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "$patch": "delete"}]}}),
        ),
        (
            "service-type",
            service,
            json!({"spec": {"type": "NodePort", "selector": {"app": null, "role": "x"}}}),
        ),
        (
            "cr-list-replaced",
            widget,
            json!({"spec": {"parts": [{"name": "b", "n": 20}]}}),
        ),
        (
            "cr-map-merged",
            widget,
            json!({"spec": {"nested": {"y": {"w": 3}, "x": null}, "size": 5}}),
        ),
        (
            "cr-delete-directive",
            widget,
            json!({"spec": {"nested": {"$patch": "delete"}}}),
        ),
        (
            "cr-replace-directive",
            widget,
            json!({"spec": {"nested": {"$patch": "replace", "q": 1}}}),
        ),
        (
            "cr-list-directive",
            widget,
            json!({"spec": {"parts": [{"$patch": "replace"}, {"name": "c"}]}}),
        ),
        (
            "cronjob-deep",
            cronjob,
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "env": [{"name": "Y", "value": "2"}]}, {"name": "extra"}]}}}}}}),
        ),
        (
            "pod-volumes-mounts",
            pod_kind,
            json!({"spec": {"containers": [{"name": "a", "volumeMounts": [{"mountPath": "/w", "name": "w"}]}], "volumes": [{"name": "w", "emptyDir": {}}]}}),
        ),
        (
            "statefulset-kept-null",
            statefulset,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "pg:16"}]}}}}),
        ),
        (
            "statefulset-claims-replaced",
            statefulset,
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "logs"}}]}}),
        ),
        (
            "serviceaccount-secrets",
            service_account,
            json!({"secrets": [{"name": "s2"}], "imagePullSecrets": [{"name": "p2"}]}),
        ),
        (
            "role-rules-replaced",
            role,
            json!({"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}]}),
        ),
        (
            "configmap-data",
            config_map,
            json!({"data": {"b": null, "c": "3"}}),
        ),
    ]
}

/// A small deterministic generator (xorshift), so the random cases are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random env lists and env patches (set, change, null value, delete element), and
/// random port lists with and without protocols.
fn random_cases(rng: &mut Rng) -> Vec<(String, Value, Value)> {
    let names = ["A", "B", "C", "D", "E"];
    let mut out = Vec::new();
    for i in 0..40 {
        let mut base = deployment(&format!("rand-env-{i}"));
        let mut env = Vec::new();
        for n in names {
            if rng.below(2) == 0 {
                env.push(json!({"name": n, "value": format!("b{}", rng.below(9))}));
            }
        }
        base["spec"]["template"]["spec"]["containers"][0]["env"] = Value::Array(env);
        let mut penv = Vec::new();
        for n in names {
            match rng.below(5) {
                0 => penv.push(json!({"name": n, "value": format!("p{}", rng.below(9))})),
                1 => penv.push(json!({"name": n, "$patch": "delete"})),
                2 => penv.push(json!({"name": n, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}, "value": null})),
                _ => {}
            }
        }
        let patch = smp_for(&base, containers(json!([{"name": "app", "env": penv}])));
        out.push((format!("rand-env-{i}"), base, patch));
    }
    let protocols = [None, Some("TCP"), Some("UDP")];
    for i in 0..20 {
        let mut base = deployment(&format!("rand-port-{i}"));
        let port = |rng: &mut Rng| {
            let mut p =
                json!({"containerPort": 8000 + rng.below(3), "name": format!("n{}", rng.below(9))});
            if let Some(proto) = protocols[rng.below(3) as usize] {
                p["protocol"] = json!(proto);
            }
            p
        };
        let count = 1 + rng.below(3);
        let ports: Vec<Value> = (0..count).map(|_| port(rng)).collect();
        base["spec"]["template"]["spec"]["containers"][0]["ports"] = Value::Array(ports);
        let count = 1 + rng.below(2);
        let pports: Vec<Value> = (0..count).map(|_| port(rng)).collect();
        let patch = smp_for(&base, containers(json!([{"name": "app", "ports": pports}])));
        out.push((format!("rand-port-{i}"), base, patch));
    }
    out
}

fn json_cases() -> Vec<(&'static str, Make, Vec<Value>)> {
    vec![
        (
            "j-add-replace-remove",
            deployment,
            vec![
                json!({"op": "replace", "path": "/spec/replicas", "value": 5}),
                json!({"op": "add", "path": "/metadata/labels/new", "value": "x"}),
                json!({"op": "remove", "path": "/metadata/annotations/note"}),
            ],
        ),
        (
            "j-escapes",
            deployment,
            vec![
                json!({"op": "add", "path": "/metadata/annotations/example.com~1path", "value": "slash"}),
                json!({"op": "add", "path": "/metadata/annotations/tilde~0key", "value": "tilde"}),
            ],
        ),
        (
            "j-append-and-index",
            deployment,
            vec![
                json!({"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "c3", "image": "c:3"}}),
                json!({"op": "add", "path": "/spec/template/spec/containers/0/env/0", "value": {"name": "Z", "value": "0"}}),
            ],
        ),
        (
            "j-negative-index",
            deployment,
            vec![
                json!({"op": "replace", "path": "/spec/template/spec/containers/-1/image", "value": "last:1"}),
                json!({"op": "remove", "path": "/spec/template/spec/volumes/-2"}),
            ],
        ),
        (
            "j-move-copy",
            deployment,
            vec![
                json!({"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}),
                json!({"op": "move", "from": "/spec/template/spec/containers/1", "path": "/spec/template/spec/containers/0"}),
            ],
        ),
        (
            "j-test-passes",
            service,
            vec![
                json!({"op": "test", "path": "/spec/ports/0/port", "value": 80}),
                json!({"op": "test", "path": "/spec/missing", "value": null}),
                json!({"op": "replace", "path": "/spec/ports/0/port", "value": 8080}),
            ],
        ),
        (
            "j-replace-missing-key",
            service,
            vec![json!({"op": "replace", "path": "/spec/type", "value": "LoadBalancer"})],
        ),
        (
            "j-replace-whole-list",
            widget,
            vec![
                json!({"op": "replace", "path": "/spec/parts", "value": []}),
                json!({"op": "add", "path": "/spec/nested/y", "value": {"deep": [1, 2]}}),
            ],
        ),
    ]
}

/// JSON patches kustomize refuses; hawser must refuse them too.
fn json_errors() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "e-test-fails",
            vec![json!({"op": "test", "path": "/spec/replicas", "value": 3})],
        ),
        (
            "e-remove-missing",
            vec![json!({"op": "remove", "path": "/spec/paused"})],
        ),
        (
            "e-add-missing-parent",
            vec![json!({"op": "add", "path": "/spec/nope/x", "value": 1})],
        ),
        (
            "e-index-out-of-range",
            vec![
                json!({"op": "replace", "path": "/spec/template/spec/containers/5/image", "value": "x"}),
            ],
        ),
        (
            "e-unknown-op",
            vec![json!({"op": "frobnicate", "path": "/spec"})],
        ),
    ]
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, make, body) in smp_cases() {
        let base = make(name);
        let patch = Patch::Smp(smp_for(&base, body));
        cases.push(Case {
            name: name.to_string(),
            base,
            patch,
        });
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, base, patch) in random_cases(&mut rng) {
        cases.push(Case {
            name,
            base,
            patch: Patch::Smp(patch),
        });
    }
    for (name, make, ops) in json_cases() {
        cases.push(Case {
            name: name.to_string(),
            base: make(name),
            patch: Patch::Json(ops),
        });
    }
    cases
}

/// Writes every case into one kustomization: `base-N.json`, `patch-N.json`.
fn write_kustomization(dir: &Path, cases: &[Case]) {
    let mut resources = Vec::new();
    let mut patches = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let base = format!("base-{i}.json");
        write_json(&dir.join(&base), &case.base);
        resources.push(json!(base));
        let file = format!("patch-{i}.json");
        match &case.patch {
            Patch::Smp(p) => {
                write_json(&dir.join(&file), p);
                patches.push(json!({"path": file}));
            }
            Patch::Json(ops) => {
                write_json(&dir.join(&file), &Value::Array(ops.clone()));
                patches.push(json!({
                    "path": file,
                    "target": {"kind": case.base["kind"], "name": case.base["metadata"]["name"]}
                }));
            }
        }
    }
    let k = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "patches": patches,
    });
    write_json(&dir.join("kustomization.yaml"), &k);
}

fn hawser_result(case: &Case) -> Result<Option<Value>, String> {
    let mut target = case.base.clone();
    match &case.patch {
        Patch::Smp(p) => match strategic_merge(&mut target, p).map_err(|e| e.to_string())? {
            Merged::Patched => {
                // kustomize keeps the target's name, kind and namespace.
                target["metadata"]["name"] = case.base["metadata"]["name"].clone();
                Ok(Some(target))
            }
            Merged::Deleted => Ok(None),
        },
        Patch::Json(ops) => {
            json6902(&mut target, ops).map_err(|e| e.to_string())?;
            Ok(Some(target))
        }
    }
}

/// kustomize drops an empty `metadata.annotations` from every object it prints (its
/// own bookkeeping annotations come and go there), patched or not: not the patch's doing.
fn normalize(mut doc: Value) -> Value {
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        && m.get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
    {
        m.remove("annotations");
    }
    doc
}

fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return first_difference(p, q, &format!("{path}.{k}")),
                    (p, q) => return format!("{path}.{k}: hawser {p:?}, kustomize {q:?}"),
                }
            }
            String::new()
        }
        _ => format!("{path}: hawser {a}, kustomize {b}"),
    }
}

#[test]
fn appliers_match_kustomize_build_on_generated_patches() {
    let cases = all_cases();
    let dir = tempfile::tempdir().unwrap();
    write_kustomization(dir.path(), &cases);
    let built = build(dir.path()).unwrap_or_else(|e| panic!("kustomize build failed: {e}"));
    let by_name: BTreeMap<String, Value> = built
        .into_iter()
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_string(), d))
        .collect();

    let mut failures = Vec::new();
    for case in &cases {
        let expected = by_name.get(&case.name);
        match (hawser_result(case).map(|r| r.map(normalize)), expected) {
            (Ok(Some(ours)), Some(theirs)) if ours == *theirs => {}
            (Ok(None), None) => {}
            (Ok(Some(ours)), Some(theirs)) => failures.push(format!(
                "{}: {}",
                case.name,
                first_difference(&ours, theirs, "")
            )),
            (Ok(ours), theirs) => failures.push(format!(
                "{}: hawser kept it: {}, kustomize kept it: {}",
                case.name,
                ours.is_some(),
                theirs.is_some()
            )),
            (Err(e), _) => failures.push(format!("{}: hawser refused: {e}", case.name)),
        }
    }
    eprintln!(
        "{} of {} patch cases match kustomize",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "differences from kustomize:\n{}",
        failures.join("\n")
    );
    // The set must be what it says: deletions, merges and replacements all happened.
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    assert!(!by_name.contains_key("delete-whole"));
}

#[test]
fn json_patches_kustomize_refuses_are_refused() {
    for (name, ops) in json_errors() {
        let case = Case {
            name: name.to_string(),
            base: deployment(name),
            patch: Patch::Json(ops),
        };
        let dir = tempfile::tempdir().unwrap();
        write_kustomization(dir.path(), std::slice::from_ref(&case));
        let theirs = build(dir.path());
        assert!(theirs.is_err(), "{name}: kustomize accepted it: {theirs:?}");
        let ours = hawser_result(&case);
        let err = ours.expect_err(&format!("{name}: hawser accepted it"));
        assert!(err.contains("json patch operation 0"), "{name}: {err}");
    }
}
