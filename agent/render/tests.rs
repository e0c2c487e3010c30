//! Unit tests of the render stage over small trees written to a temporary directory.
//! The comparison with the real `kustomize build` is in `tests/render_kustomize.rs`.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

fn render(files: &[(&str, &str)]) -> Result<Vec<Value>, RenderError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    let (docs, _) = kustomize(dir.path(), None, &ParseLimits::default())?.expect("a kustomization");
    Ok(docs.iter().map(Document::tree).collect())
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.0
        envFrom:
        - configMapRef: {name: settings}
";

#[test]
fn prefix_namespace_labels_images_and_a_generated_configmap_referenced_by_its_hashed_name() {
    let out = render(&[
        ("base/kustomization.yaml", "resources: [deploy.yaml]\n"),
        ("base/deploy.yaml", DEPLOY),
        (
            "kustomization.yaml",
            "resources: [base]\nnamePrefix: p-\nnamespace: prod\ncommonLabels: {team: a}\n\
             images: [{name: nginx, newTag: '2.0'}]\n\
             configMapGenerator: [{name: settings, literals: [A=1]}]\n",
        ),
    ])
    .unwrap();
    assert_eq!(out.len(), 2);
    let cm = &out[0];
    assert_eq!(cm["kind"], "ConfigMap");
    let cm_name = cm["metadata"]["name"].as_str().unwrap();
    assert!(cm_name.starts_with("p-settings-"), "{cm_name}");
    assert_eq!(cm["metadata"]["namespace"], "prod");
    let deploy = &out[1];
    assert_eq!(deploy["metadata"]["name"], "p-web");
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"],
        json!({"app": "web", "team": "a"})
    );
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:2.0");
    assert_eq!(container["envFrom"][0]["configMapRef"]["name"], cm_name);
}

#[test]
fn refusals_name_the_file_and_the_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("kustomization.yaml", "vars: []\n")],
            "kustomization.yaml: vars:",
        ),
        (
            &[("kustomization.yaml", "helmCharts: []\n")],
            "kustomization.yaml: helmCharts:",
        ),
        (
            &[("kustomization.yaml", "openapi: {path: x}\n")],
            "kustomization.yaml: openapi:",
        ),
        (
            &[(
                "kustomization.yaml",
                "resources: [https://github.com/x/y//base]\n",
            )],
            "kustomization.yaml: resources: \"https://github.com/x/y//base\": remote resources are refused",
        ),
        (
            &[("kustomization.yaml", "resources: [/etc/passwd]\n")],
            "absolute paths are refused",
        ),
        (
            &[("kustomization.yaml", "resources: [../../x]\n")],
            "the path leaves the revision",
        ),
        (
            &[
                ("a/kustomization.yaml", "resources: [../b]\n"),
                ("b/kustomization.yaml", "resources: [../a]\n"),
                ("kustomization.yaml", "resources: [a]\n"),
            ],
            "cycle detected",
        ),
        (
            &[
                ("kustomization.yaml", "resources: [a.yaml, b.yaml]\n"),
                (
                    "a.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
                ),
                (
                    "b.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
                ),
            ],
            "b.yaml: document 1 (line 1): may not add resource with an already registered id: ConfigMap.v1.[noGrp]/x.[noNs]",
        ),
        (
            &[
                ("kustomization.yaml", "transformers: [t.yaml]\n"),
                (
                    "t.yaml",
                    "apiVersion: example.com/v1\nkind: Mine\nmetadata: {name: m}\n",
                ),
            ],
            "is a plugin",
        ),
        (
            &[("kustomization.yaml", "bogus: 1\n")],
            "unknown field `bogus`",
        ),
    ];
    for (files, want) in cases {
        let err = render(files).unwrap_err().to_string();
        assert!(err.contains(want), "{err} does not contain {want}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn symlinks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("kustomization.yaml", "resources: [link.yaml]\n"),
            (
                "real.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            ),
        ],
    );
    std::os::unix::fs::symlink(dir.path().join("real.yaml"), dir.path().join("link.yaml")).unwrap();
    let err = kustomize(dir.path(), None, &ParseLimits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("link.yaml: symlinks are refused"), "{err}");
}

#[test]
fn components_nested_past_the_bound_are_refused() {
    let mut files = vec![(
        "kustomization.yaml".to_string(),
        "components: [c0]\n".to_string(),
    )];
    for i in 0..=build::MAX_COMPONENT_DEPTH {
        files.push((
            format!("c{i}/kustomization.yaml"),
            format!("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncomponents: [../c{}]\n", i + 1),
        ));
    }
    files.push((
        format!("c{}/kustomization.yaml", build::MAX_COMPONENT_DEPTH + 1),
        "kind: Component\n".to_string(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let err = render(&refs).unwrap_err().to_string();
    assert!(err.contains("components nest more than"), "{err}");
}

#[test]
fn a_directory_without_a_kustomization_is_not_rendered() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )],
    );
    assert!(
        kustomize(dir.path(), None, &ParseLimits::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(
        load(dir.path(), None, &ParseLimits::default())
            .unwrap()
            .documents
            .len(),
        1
    );
}
