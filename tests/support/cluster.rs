//! Helpers for tests against the real control plane started by `tests/env/up`.
//!
//! Tests need `eval "$(tests/env/up)"` first (scripts/test does it); without it they
//! fail with a message saying so rather than pass without checking anything.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root, for the scripts under tests/env.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The admin kubeconfig of the test control plane.
pub fn admin_kubeconfig() -> PathBuf {
    let path = std::env::var_os("KUBECONFIG").expect(
        "KUBECONFIG is not set: these tests need the test control plane; run `eval \"$(tests/env/up)\"` or scripts/test",
    );
    PathBuf::from(path)
}

/// A name no other test (or earlier run) uses: prefix, process id and a counter.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs kubectl as the admin; panics with its stderr when it fails.
pub fn kubectl(args: &[&str]) -> String {
    let out = kubectl_raw(args, &admin_kubeconfig());
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn kubectl_raw(args: &[&str], kubeconfig: &Path) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs (tests/env/up puts the built kubectl first on PATH)")
}

/// Reads a field with a JSONPath; None when the object does not exist.
pub fn get_field(kind: &str, namespace: &str, name: &str, jsonpath: &str) -> Option<String> {
    let out = kubectl_raw(
        &[
            "get",
            kind,
            name,
            "-n",
            namespace,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ],
        &admin_kubeconfig(),
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn exists(kind: &str, namespace: &str, name: &str) -> bool {
    get_field(kind, namespace, name, "{.metadata.name}").is_some()
}

/// Polls until `check` holds or the deadline passes; panics with `what` then.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A namespace for one test, deleted when dropped.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        kubectl(&["create", "namespace", &name]);
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl_raw(
            &["delete", "namespace", &self.name, "--wait=false"],
            &admin_kubeconfig(),
        );
    }
}

/// A Role like the one hawser's install grants in a managed namespace
/// (packaging/kubernetes/base/role-manage.yaml, which is tested on its own and is
/// tighter: no `update`, no pod reads): the usual namespaced kinds, `bind`/`escalate` on Roles so it can
/// manage RBAC objects whose Role arrives in the same revision (the API server checks
/// a RoleBinding's roleRef at dry run otherwise), and Events for reporting.
pub const AGENT_RULES: &[&str] = &[
    "get,list,watch,create,update,patch,delete:configmaps,secrets,services,serviceaccounts,persistentvolumeclaims",
    "get,list,watch,create,update,patch,delete:deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps",
    "get,list,watch,create,update,patch,delete:jobs.batch,cronjobs.batch",
    "get,list,watch,create,update,patch,delete:ingresses.networking.k8s.io,networkpolicies.networking.k8s.io",
    "get,list,watch,create,update,patch,delete:roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
    "bind,escalate:roles.rbac.authorization.k8s.io",
    "get,list,watch,create,update,patch,delete:poddisruptionbudgets.policy,horizontalpodautoscalers.autoscaling",
    "get,list,watch:pods",
    "get,list,watch,create,patch:events,events.events.k8s.io",
];

/// A kubeconfig for a ServiceAccount in `namespace` bound to a Role with `rules`
/// (tests/env/sa-kubeconfig's VERBS:RESOURCES form; empty = its defaults).
pub fn sa_kubeconfig(namespace: &str, sa: &str, rules: &[&str], dir: &Path) -> PathBuf {
    let path = dir.join(format!("{sa}.kubeconfig"));
    let out = Command::new(repo_root().join("tests/env/sa-kubeconfig"))
        .arg("-o")
        .arg(&path)
        .args([namespace, sa])
        .args(rules)
        .env("KUBECONFIG", admin_kubeconfig())
        .output()
        .expect("tests/env/sa-kubeconfig runs");
    assert!(
        out.status.success(),
        "sa-kubeconfig failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The outcome of running the hawser binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built hawser binary with the given kubeconfig and no HAWSER_* leaking in.
pub fn hawser(args: &[&str], kubeconfig: &Path) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HAWSER_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("hawser runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes files (relative path → content) under `dir`, replacing what was there.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Write requests (create, update, patch, delete) that `user` made, as the API
/// server's audit log records them; dry runs are not writes. Call [`audit_sync`]
/// first so that requests which already returned are in the log.
pub fn audit_writes(user: &str) -> Vec<String> {
    audit_events(user)
        .into_iter()
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            )
        })
        .filter(|e| {
            !e["requestURI"]
                .as_str()
                .unwrap_or_default()
                .contains("dryRun=")
        })
        .map(|e| {
            format!(
                "{} {}",
                e["verb"].as_str().unwrap_or_default(),
                e["requestURI"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Every audit event of `user` so far, in order (one per request: the log records
/// the ResponseComplete stage only).
pub fn audit_events(user: &str) -> Vec<serde_json::Value> {
    let path = std::env::var("HAWSER_TEST_AUDIT_LOG")
        .expect("HAWSER_TEST_AUDIT_LOG is set by tests/env/up");
    let text = std::fs::read_to_string(path).expect("audit log readable");
    let quoted = format!("\"{user}\"");
    text.lines()
        .filter(|line| line.contains(&quoted))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["user"]["username"] == user)
        .collect()
}

/// Makes a marker request and waits until the audit log shows it: every request
/// that completed before it is then in the log too.
pub fn audit_sync() {
    let marker = unique("audit-marker");
    kubectl(&["create", "configmap", &marker, "-n", "default"]);
    let path = std::env::var("HAWSER_TEST_AUDIT_LOG")
        .expect("HAWSER_TEST_AUDIT_LOG is set by tests/env/up");
    eventually("the audit log to catch up", Duration::from_secs(20), || {
        std::fs::read_to_string(&path)
            .map(|t| t.contains(&marker))
            .unwrap_or(false)
    });
    let _ = kubectl_raw(
        &[
            "delete",
            "configmap",
            &marker,
            "-n",
            "default",
            "--wait=false",
        ],
        &admin_kubeconfig(),
    );
}

/// The user name a ServiceAccount's token authenticates as.
pub fn sa_user(namespace: &str, sa: &str) -> String {
    format!("system:serviceaccount:{namespace}:{sa}")
}
