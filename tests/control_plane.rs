//! The test control plane itself (`tests/env/up`): the properties every other
//! integration test relies on. Needs `eval "$(tests/env/up)"` first (scripts/test
//! does it).

mod support;

use std::time::Duration;

use support::cluster::{TestNamespace, eventually, get_field, kubectl, kubectl_raw, sa_kubeconfig};

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  k: v\n";

#[test]
fn apiserver_is_ready_and_reports_the_pinned_version() {
    assert_eq!(kubectl(&["get", "--raw", "/readyz"]).trim(), "ok");
    let version: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "--raw", "/version"])).unwrap();
    assert_eq!(
        version["gitVersion"], "v1.35.4",
        "tests/env/k8s pins v1.35.4: {version}"
    );
}

#[test]
fn service_account_token_is_scoped_to_its_namespace() {
    let own = TestNamespace::new("cp-own");
    let other = TestNamespace::new("cp-other");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&own.name, "agent", &[], dir.path());
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(&manifest, CONFIGMAP).unwrap();
    let manifest = manifest.to_str().unwrap();

    let who = kubectl_raw(
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        &kubeconfig,
    );
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        format!("system:serviceaccount:{}:agent", own.name)
    );

    let allowed = kubectl_raw(
        &["apply", "--server-side", "-f", manifest, "-n", &own.name],
        &kubeconfig,
    );
    assert!(
        allowed.status.success(),
        "apply in its own namespace: {}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(
        get_field("configmap", &own.name, "probe", "{.data.k}").as_deref(),
        Some("v")
    );

    let denied = kubectl_raw(
        &["apply", "--server-side", "-f", manifest, "-n", &other.name],
        &kubeconfig,
    );
    assert!(
        !denied.status.success(),
        "apply in another namespace must be refused"
    );
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("forbidden"),
        "expected an RBAC refusal, got: {stderr}"
    );
}

#[test]
fn audit_log_records_writes() {
    let ns = TestNamespace::new("cp-audit");
    kubectl(&[
        "create",
        "configmap",
        "audited",
        "-n",
        &ns.name,
        "--from-literal=k=v",
    ]);
    let log = std::env::var("HAWSER_TEST_AUDIT_LOG")
        .expect("HAWSER_TEST_AUDIT_LOG is exported by tests/env/up");
    let recorded = || {
        std::fs::read_to_string(&log).unwrap().lines().any(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["verb"] == "create"
                && event["objectRef"]["resource"] == "configmaps"
                && event["objectRef"]["namespace"] == ns.name.as_str()
                && event["objectRef"]["name"] == "audited"
        })
    };
    eventually(
        "the create in the audit log",
        Duration::from_secs(10),
        recorded,
    );
}

#[test]
fn deployments_become_available_when_kwok_runs() {
    if std::env::var("HAWSER_TEST_KWOK").as_deref() != Ok("1") {
        eprintln!("kwok is not running (HAWSER_TEST_KWOK != 1): pods cannot become Ready here");
        return;
    }
    let ns = TestNamespace::new("cp-deploy");
    kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "-n",
        &ns.name,
    ]);
    eventually(
        "deployment web to have 2 available replicas",
        Duration::from_secs(60),
        || {
            get_field("deployment", &ns.name, "web", "{.status.availableReplicas}").as_deref()
                == Some("2")
        },
    );
}

#[test]
fn deleted_namespaces_go_away() {
    // The namespace controller and the garbage collector run: nothing stays Terminating.
    let name = support::cluster::unique("cp-gone");
    kubectl(&["create", "namespace", &name]);
    kubectl(&[
        "create",
        "configmap",
        "x",
        "-n",
        &name,
        "--from-literal=k=v",
    ]);
    kubectl(&["create", "deployment", "web", "--image=nginx", "-n", &name]);
    kubectl(&["delete", "namespace", &name, "--wait=false"]);
    eventually("namespace to be deleted", Duration::from_secs(90), || {
        get_field("namespace", "", &name, "{.metadata.name}").is_none()
    });
}
