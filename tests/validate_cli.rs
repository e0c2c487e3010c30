//! `hawser validate` as users run it: the built binary on fixture directories,
//! checking exit codes and the exact one-line messages.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

#[allow(clippy::unwrap_used)] // test helper: a failure here is a test failure
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

#[allow(clippy::unwrap_used)] // test helper: a failure here is a test failure
/// Runs `hawser validate --dir DIR ARGS..` with no HAWSER_* variables inherited.
fn validate(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HAWSER_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("validate").arg("--dir").arg(dir).args(args);
    cmd.output().unwrap()
}

#[allow(clippy::unwrap_used)] // test helper: a failure here is a test failure
fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Asserts exit code 2 and exactly this one error line on stderr.
fn assert_error(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), format!("hawser: {message}\n"));
    assert_eq!(text(&out.stdout), "");
}

const DEPLOY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
";

const SERVICE_AND_CONFIG: &str = "\
# service and its settings
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: api
data:
  enabled: \"yes\"
";

#[test]
fn a_valid_directory_prints_a_summary() {
    let dir = tree(&[
        ("apps/deploy.yaml", DEPLOY),
        ("apps/service.yaml", SERVICE_AND_CONFIG),
        ("README.md", "not a manifest"),
    ]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "valid: 3 objects in 2 files\n");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn warnings_go_to_stderr_and_are_counted() {
    let dir = tree(&[
        ("apps/deploy.yaml", DEPLOY),
        ("apps/kustomization.yaml", "resources: [deploy.yaml]\n"),
        (
            "apps/widget.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
        ),
    ]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "valid: 2 objects in 2 files (2 warnings)\n"
    );
    assert_eq!(
        text(&out.stderr),
        "hawser: warning: apps/kustomization.yaml: skipped: kustomizations are not rendered; the other files here are applied as they are\n\
         hawser: warning: apps/widget.yaml: document 1 (line 1): kind Widget.example.com is not known (and no CRD for it is in these manifests); treated as namespaced\n"
    );
}

#[test]
fn a_missing_name_names_file_document_and_line() {
    let broken =
        format!("{DEPLOY}---\napiVersion: v1\nkind: Service\nmetadata:\n  labels: {{app: api}}\n");
    let dir = tree(&[("apps/deploy.yaml", &broken)]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "apps/deploy.yaml: document 2 (line 8): metadata.name is missing",
    );
}

#[test]
fn yaml_errors_name_the_line() {
    let dir = tree(&[("a.yaml", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n")]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "a.yaml: document 1 (line 3): invalid yaml: duplicate key kind",
    );
}

#[test]
fn duplicates_are_rejected() {
    let dir = tree(&[("a.yaml", DEPLOY), ("b.yaml", DEPLOY)]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "b.yaml: document 1 (line 1): Deployment edge/api is defined twice (first in a.yaml: document 1 (line 1))",
    );
}

#[test]
fn objects_outside_the_scope_reject_the_set() {
    let other = DEPLOY.replace("  name: api\n", "  name: api\n  namespace: shop\n");
    let dir = tree(&[("apps/deploy.yaml", &other)]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "apps/deploy.yaml: document 1 (line 1): Deployment shop/api: namespace shop is outside the scope (allowed: edge)",
    );
    let out = validate(
        dir.path(),
        &["--namespace", "edge", "--allow-namespaces", "web,shop"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn cluster_scoped_and_power_kinds_need_flags() {
    let dir = tree(&[(
        "rbac.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n",
    )]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "rbac.yaml: document 1 (line 1): ClusterRole reader: kind ClusterRole.rbac.authorization.k8s.io grants power and is not allowed (allow with --allow-kinds ClusterRole)",
    );
    let out = validate(
        dir.path(),
        &["--namespace", "edge", "--allow-kinds", "ClusterRole"],
    );
    assert_error(
        &out,
        "rbac.yaml: document 1 (line 1): ClusterRole reader: cluster-scoped objects are outside the scope (allow with --allow-cluster-scoped)",
    );
    let out = validate(
        dir.path(),
        &[
            "--namespace",
            "edge",
            "--allow-kinds",
            "ClusterRole",
            "--allow-cluster-scoped",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "valid: 1 object in 1 file\n");
}

#[test]
fn scope_flags_are_read_from_the_environment() {
    let dir = tree(&[(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    )]);
    let run = |cluster_scoped: &str| {
        Command::new(env!("CARGO_BIN_EXE_hawser"))
            .args(["validate", "--dir"])
            .arg(dir.path())
            .env("HAWSER_NAMESPACE", "edge")
            .env("HAWSER_ALLOW_NAMESPACES", "shop")
            .env("HAWSER_ALLOW_CLUSTER_SCOPED", cluster_scoped)
            .output()
            .unwrap()
    };
    for yes in ["true", "1", "yes"] {
        let out = run(yes);
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "valid: 1 object in 1 file\n");
    }
    for no in ["false", "0"] {
        let out = run(no);
        assert_error(
            &out,
            "ns.yaml: document 1 (line 1): Namespace shop: cluster-scoped objects are outside the scope (allow with --allow-cluster-scoped)",
        );
    }
}

#[test]
fn a_kustomization_is_rendered_and_its_missing_base_named() {
    let dir = tree(&[(
        "overlays/prod/kustomization.yaml",
        "resources: [../../base]\n",
    )]);
    let out = validate(
        dir.path(),
        &["--namespace", "edge", "--path", "overlays/prod"],
    );
    assert_error(
        &out,
        "overlays/prod/kustomization.yaml: resources: \"../../base\": no such file or directory",
    );
    fs::create_dir_all(dir.path().join("base")).unwrap();
    fs::write(
        dir.path().join("base/kustomization.yaml"),
        "namespace: edge\nconfigMapGenerator: [{name: settings, literals: [a=1]}]\n",
    )
    .unwrap();
    let out = validate(
        dir.path(),
        &["--namespace", "edge", "--path", "overlays/prod"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("valid: 1 object in 2 files"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn path_selects_a_subdirectory() {
    let dir = tree(&[
        ("clusters/edge/deploy.yaml", DEPLOY),
        ("clusters/other/broken.yaml", "kind: [\n"),
    ]);
    let out = validate(
        dir.path(),
        &["--namespace", "edge", "--path", "clusters/edge"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "valid: 1 object in 1 file\n");
}

#[test]
fn an_invalid_namespace_flag_is_an_error() {
    let dir = tree(&[("deploy.yaml", DEPLOY)]);
    let out = validate(dir.path(), &["--namespace", "Edge"]);
    assert_error(&out, "--namespace \"Edge\" is not a valid namespace name");
}

#[test]
fn a_missing_directory_is_an_error() {
    let dir = tree(&[]);
    let missing = dir.path().join("nope");
    let out = validate(&missing, &["--namespace", "edge"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("hawser: cannot read {}: ", missing.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn an_empty_directory_is_valid_with_a_warning() {
    let dir = tree(&[("empty.yaml", "# nothing yet\n---\n")]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "valid: 0 objects in 1 file (1 warning)\n"
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "hawser: warning: no objects found under {}\n",
            dir.path().display()
        )
    );
}

#[test]
fn unquoted_yes_in_a_config_map_is_caught_offline() {
    let dir = tree(&[(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\ndata:\n  enabled: yes\n  mode: \"0644\"\n",
    )]);
    let out = validate(dir.path(), &["--namespace", "edge"]);
    assert_error(
        &out,
        "cm.yaml: document 1 (line 1): data.enabled must be a string, found a boolean (quote it: unquoted yes, no, on, off, true, false are booleans)",
    );
}
