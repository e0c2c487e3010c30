//! The generated inputs of `tests/kustomize_patch.rs`: base objects of several
//! built-in kinds and a custom resource, hand-picked strategic-merge and JSON 6902
//! patches, and seeded random env and port lists.

use serde_json::{Value, json};

/// A base object made for a case's name.
pub type Make = fn(&str) -> Value;

pub enum Patch {
    Smp(Value),
    Json(Vec<Value>),
}

pub struct Case {
    pub name: String,
    pub base: Value,
    pub patch: Patch,
}

pub fn deployment(name: &str) -> Value {
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
pub fn smp_for(base: &Value, body: Value) -> Value {
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
pub fn smp_cases() -> Vec<(&'static str, Make, Value)> {
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
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random env lists and env patches (set, change, null value, delete element), and
/// random port lists with and without protocols.
pub fn random_cases(rng: &mut Rng) -> Vec<(String, Value, Value)> {
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

pub fn json_cases() -> Vec<(&'static str, Make, Vec<Value>)> {
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
pub fn json_errors() -> Vec<(&'static str, Vec<Value>)> {
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
