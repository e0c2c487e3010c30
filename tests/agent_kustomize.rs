//! `hawser run` on a Kustomize overlay from Git, end to end: the real Git server, the
//! real control plane, the agent under a scoped ServiceAccount. The live objects carry
//! the names `kustomize build` (the oracle, HAWSER_TEST_TOOLS) gives the same
//! checkout, hash suffix included; a revision that fails to render is rejected with
//! nothing written and the applied revision kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::cluster::{exists, get_field};
use support::world::{World, until};

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        envFrom:
        - configMapRef: {name: settings}
";

/// The generated ConfigMap's name as `kustomize build` renders the checkout.
fn oracle_configmap_name(checkout: &Path) -> String {
    let out = Command::new(support::oracle::tool("kustomize"))
        .arg("build")
        .arg(checkout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = hawser::manifests::yaml::parse_yaml(
        &String::from_utf8(out.stdout).unwrap(),
        "kustomize",
        &hawser::manifests::ParseLimits::default(),
    )
    .unwrap();
    docs.iter()
        .find(|d| d.value["kind"] == "ConfigMap")
        .and_then(|d| d.value["metadata"]["name"].as_str())
        .unwrap()
        .to_string()
}

#[test]
fn an_overlay_with_a_generated_configmap_is_applied_under_its_hashed_name() {
    let w = World::new("agent-kustomize");
    w.repo.write("base/deploy.yaml", DEPLOY);
    w.repo
        .write("base/kustomization.yaml", "resources: [deploy.yaml]\n");
    w.repo.write(
        "kustomization.yaml",
        "resources: [base]\nnamePrefix: shop-\ncommonLabels: {team: shop}\nconfigMapGenerator:\n- name: settings\n  literals: [GREETING=one]\n",
    );
    let v1 = w.repo.commit("overlay one");
    w.repo.push();
    let cm = oracle_configmap_name(w.repo.work_dir());
    assert!(cm.starts_with("shop-settings-"), "{cm}");

    let agent = w.agent(&[]);
    until(
        &agent,
        "the generated ConfigMap is live under its hashed name",
        || exists("configmap", &w.ns.name, &cm),
    );
    until(&agent, "the Deployment refers to the hashed name", || {
        get_field(
            "deployment",
            &w.ns.name,
            "shop-web",
            "{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}",
        )
        .as_deref()
            == Some(cm.as_str())
    });
    assert_eq!(
        get_field("configmap", &w.ns.name, &cm, "{.data.GREETING}").as_deref(),
        Some("one")
    );
    until(&agent, "status applied", || {
        w.status()["applied"] == v1.as_str()
    });

    // A revision that fails to render: rejected, nothing written, v1 kept.
    w.repo.write(
        "kustomization.yaml",
        "resources: [base]\nnamePrefix: shop-\nconfigMapGenerator:\n- name: settings\n  literals: [GREETING=two]\nvars:\n- name: X\n  objref: {kind: Deployment, name: web, apiVersion: apps/v1}\n",
    );
    let bad = w.repo.commit("uses vars");
    w.repo.push();
    until(&agent, "status rejected", || {
        w.status()["result"] == "rejected"
    });
    let status = w.status();
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("kustomization.yaml: vars:"), "{status}");
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(status["desired"], bad.as_str());
    assert_eq!(
        w.cache_state()["applied"]["revision"],
        v1.as_str(),
        "{}",
        w.cache_state()
    );
    assert_eq!(
        get_field("configmap", &w.ns.name, &cm, "{.data.GREETING}").as_deref(),
        Some("one"),
        "nothing of the rejected revision was written"
    );
}

/// podinfo's layout: `--path deploy/overlays/production` whose kustomization lists
/// `../../base`. The snapshot holds the whole tree, so the overlay renders as
/// `kustomize build` renders that directory of the checkout; files outside the path
/// are not applied, and a path leaving the revision is rejected with nothing written.
#[test]
fn a_path_overlay_reaching_its_base_outside_the_path_is_applied() {
    let w = World::new("agent-kustomize-path");
    w.repo.write("deploy/base/deploy.yaml", DEPLOY);
    w.repo.write(
        "deploy/base/kustomization.yaml",
        "resources: [deploy.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [GREETING=base]\n",
    );
    w.repo.write(
        "deploy/overlays/production/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: prod-\n",
    );
    w.repo.write(
        "deploy/other.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: not-in-the-path\n",
    );
    let v1 = w.repo.commit("overlay with a base outside the path");
    w.repo.push();
    let cm = oracle_configmap_name(&w.repo.work_dir().join("deploy/overlays/production"));
    assert!(cm.starts_with("prod-settings-"), "{cm}");

    let agent = w.agent(&["--path", "deploy/overlays/production"]);
    until(&agent, "status applied", || {
        w.status()["applied"] == v1.as_str()
    });
    assert!(exists("configmap", &w.ns.name, &cm), "{cm} is live");
    assert_eq!(
        get_field(
            "deployment",
            &w.ns.name,
            "prod-web",
            "{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}",
        )
        .as_deref(),
        Some(cm.as_str())
    );
    assert!(!exists("configmap", &w.ns.name, "not-in-the-path"));

    // `../` may go anywhere inside the revision, never above its root.
    w.repo.write(
        "deploy/overlays/production/kustomization.yaml",
        "resources: [../../base, ../../../../outside]\nnamePrefix: prod-\n",
    );
    let bad = w.repo.commit("leaves the revision");
    w.repo.push();
    until(&agent, "status rejected", || {
        w.status()["result"] == "rejected"
    });
    let status = w.status();
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("deploy/overlays/production/kustomization.yaml: resources:")
            && message.contains("leaves the revision"),
        "{status}"
    );
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(status["desired"], bad.as_str());
}
