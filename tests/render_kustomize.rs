//! `hawser render` against the real `kustomize build` v5.8.1 (the oracle, from
//! `tests/env/build-tools`, found through HAWSER_TEST_TOOLS) on real-world-shaped
//! overlays: the same objects, in the same order, with the same values. Field order
//! inside objects is not compared (hawser's values keep no input order; see README).
//!
//! Overlays that need patches are checked only once the patch appliers are in
//! (`render::patch` no longer refuses): until then they must fail with the
//! applier's refusal, not render something else.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawser::manifests::ParseLimits;
use hawser::manifests::yaml::parse_yaml;
use serde_json::Value;

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

#[path = "support/oracle.rs"]
#[allow(dead_code)]
mod oracle;

fn kustomize_bin() -> PathBuf {
    oracle::tool("kustomize")
}

#[allow(clippy::unwrap_used)]
fn documents(text: &str) -> Vec<Value> {
    parse_yaml(text, "output", &ParseLimits::default())
        .unwrap()
        .into_iter()
        .map(|p| p.value)
        .collect()
}

#[allow(clippy::unwrap_used)]
fn hawser_render(root: &Path, sub: &str) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HAWSER_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("render").arg("--dir").arg(root);
    if !sub.is_empty() {
        cmd.arg("--subdir").arg(sub);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    match out.status.code() {
        Some(0) => Ok(documents(&String::from_utf8(out.stdout).unwrap())),
        Some(2) => {
            assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr}");
            Err(stderr)
        }
        other => panic!("hawser render exited {other:?}: {stderr}"),
    }
}

#[allow(clippy::unwrap_used)]
fn kustomize_build(root: &Path, sub: &str) -> Vec<Value> {
    let out = Command::new(kustomize_bin())
        .arg("build")
        .arg(root.join(sub))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kustomize build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

fn patches_available() -> bool {
    let mut target = serde_json::json!({"a": 1});
    hawser::render::patch::strategic_merge(&mut target, &serde_json::json!({"b": 2})).is_ok()
}

/// Renders with both and compares object by object.
fn same_as_kustomize(files: &[(&str, &str)], sub: &str) -> Vec<Value> {
    let dir = tree(files);
    let want = kustomize_build(dir.path(), sub);
    let got = match hawser_render(dir.path(), sub) {
        Ok(got) => got,
        Err(e) => panic!("hawser render failed where kustomize build succeeded: {e}"),
    };
    let ids = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .map(|d| {
                format!(
                    "{} {}/{}",
                    d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]
                )
            })
            .collect()
    };
    assert_eq!(ids(&got), ids(&want), "objects or their order differ");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "object {} differs", w["metadata"]["name"]);
    }
    assert!(!want.is_empty());
    got
}

const GUESTBOOK_DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      containers:
      - image: gcr.io/heptio-images/ks-guestbook-demo:0.1
        name: guestbook-ui
        ports:
        - containerPort: 80
";
const GUESTBOOK_SVC: &str = "apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: guestbook-ui
";

#[test]
fn guestbook_name_prefix_matches_kustomize() {
    let out = same_as_kustomize(
        &[
            (
                "kustomize-guestbook/kustomization.yaml",
                "namePrefix: kustomize-\nresources:\n- guestbook-ui-deployment.yaml\n- guestbook-ui-svc.yaml\n",
            ),
            (
                "kustomize-guestbook/guestbook-ui-deployment.yaml",
                GUESTBOOK_DEPLOY,
            ),
            ("kustomize-guestbook/guestbook-ui-svc.yaml", GUESTBOOK_SVC),
        ],
        "kustomize-guestbook",
    );
    assert_eq!(out[0]["metadata"]["name"], "kustomize-guestbook-ui");
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels: {{name: {name}}}\nspec:\n  ports:\n  - port: 80\n  selector:\n    name: {name}\n"
    )
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{name: {name}}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{name: {name}}}\n  template:\n    metadata:\n      labels: {{name: {name}}}\n    spec:\n      serviceAccountName: sock-shop\n      containers:\n      - name: {name}\n        image: {image}\n        envFrom:\n        - configMapRef: {{name: shop-settings}}\n"
    )
}

#[test]
fn sock_shop_root_listing_base_directories_matches_kustomize() {
    let carts_d = deployment("carts", "weaveworksdemos/carts:0.4.8");
    let carts_s = service("carts");
    let front_d = deployment("front-end", "weaveworksdemos/front-end:0.3.12");
    let front_s = service("front-end");
    same_as_kustomize(
        &[
            (
                "kustomization.yaml",
                "resources:\n- base/carts\n- base/front-end\n- base/common\nnamespace: sock-shop\n",
            ),
            (
                "base/carts/kustomization.yaml",
                "resources: [carts-dep.yaml, carts-svc.yaml]\n",
            ),
            ("base/carts/carts-dep.yaml", &carts_d),
            ("base/carts/carts-svc.yaml", &carts_s),
            (
                "base/front-end/kustomization.yaml",
                "resources: [front-end-dep.yaml, front-end-svc.yaml]\n",
            ),
            ("base/front-end/front-end-dep.yaml", &front_d),
            ("base/front-end/front-end-svc.yaml", &front_s),
            (
                "base/common/kustomization.yaml",
                "resources: [ns.yaml, sa.yaml]\nconfigMapGenerator:\n- name: shop-settings\n  literals: [JAVA_OPTS=-Xms64m, \"GREETING='hello & <welcome>'\"]\n",
            ),
            (
                "base/common/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sock-shop\n",
            ),
            (
                "base/common/sa.yaml",
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sock-shop\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reader\nrules:\n- apiGroups: ['']\n  resources: [configmaps]\n  resourceNames: [shop-settings]\n  verbs: [get]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reader\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: reader\nsubjects:\n- kind: ServiceAccount\n  name: sock-shop\n- kind: ServiceAccount\n  name: default\n",
            ),
        ],
        "",
    );
}

const PODINFO_DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  minReadySeconds: 3
  selector:
    matchLabels:
      app: backend
  template:
    metadata:
      labels:
        app: backend
    spec:
      containers:
      - name: backend
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        command: [./podinfo, --port=9898]
        env:
        - name: PODINFO_UI_COLOR
          valueFrom:
            configMapKeyRef: {name: podinfo-config, key: color}
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: podinfo-token, key: token}
        volumeMounts:
        - {name: data, mountPath: /data}
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: backend-data}
      - name: config
        configMap: {name: podinfo-config}
";
const PODINFO_HPA: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: backend
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: backend
  minReplicas: 2
  maxReplicas: 4
";

#[test]
fn podinfo_overlay_with_bases_a_label_transformer_and_generators_matches_kustomize() {
    let out = same_as_kustomize(
        &[
            (
                "deploy/bases/backend/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, hpa.yaml, pvc.yaml]\nconfigMapGenerator:\n- name: podinfo-config\n  literals: [color=blue]\n",
            ),
            ("deploy/bases/backend/deployment.yaml", PODINFO_DEPLOY),
            ("deploy/bases/backend/hpa.yaml", PODINFO_HPA),
            (
                "deploy/bases/backend/pvc.yaml",
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: backend-data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 1Gi}\n",
            ),
            (
                "deploy/overlays/production/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: production\nnameSuffix: -prod\nresources:\n- ../../bases/backend\ntransformers:\n- labels.yaml\nconfigMapGenerator:\n- name: podinfo-config\n  behavior: merge\n  files: [settings.json]\n  envs: [prod.env]\nsecretGenerator:\n- name: podinfo-token\n  literals: [token=s3cr3t-value-long-enough-to-wrap-the-base64-text-at-seventy-columns-yes]\n  options:\n    labels: {kind: token}\ngeneratorOptions:\n  annotations: {generated: \"true\"}\nimages:\n- name: ghcr.io/stefanprodan/podinfo\n  newTag: 6.5.4\nreplicas:\n- name: backend\n  count: 3\ncommonAnnotations:\n  owner: platform\n",
            ),
            (
                "deploy/overlays/production/labels.yaml",
                "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: labels\nlabels:\n  env: production\nfieldSpecs:\n- path: metadata/labels\n  create: true\n- path: spec/template/metadata/labels\n  kind: Deployment\n  create: true\n",
            ),
            (
                "deploy/overlays/production/settings.json",
                "{\"ui\": {\"logo\": \"<b>&</b>\"}}\n",
            ),
            (
                "deploy/overlays/production/prod.env",
                "# production\nLEVEL=info\nEMPTY\n  SPACED=a b \n",
            ),
        ],
        "deploy/overlays/production",
    );
    let cm = out
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .map(|d| d["metadata"]["name"].clone());
    let name = cm.as_ref().and_then(Value::as_str).unwrap_or_default();
    assert!(name.starts_with("podinfo-config-prod-"), "{name}");
}

#[test]
fn components_labels_with_templates_and_fifo_order_match_kustomize() {
    same_as_kustomize(
        &[
            (
                "kustomization.yaml",
                "resources: [svc.yaml, deploy.yaml]\ncomponents: [monitoring]\nlabels:\n- pairs: {tier: web}\n  includeTemplates: true\n- pairs: {app.kubernetes.io/part-of: shop}\n  includeSelectors: true\nsortOptions:\n  order: fifo\nnamePrefix: shop-\n",
            ),
            ("svc.yaml", GUESTBOOK_SVC),
            ("deploy.yaml", GUESTBOOK_DEPLOY),
            (
                "monitoring/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [sm.yaml]\nconfigMapGenerator:\n- name: dashboards\n  literals: [a=1]\n  options: {disableNameSuffixHash: true}\ncommonAnnotations: {monitored: \"yes\"}\n",
            ),
            (
                "monitoring/sm.yaml",
                "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: guestbook\nspec:\n  selector:\n    matchLabels: {app: guestbook-ui}\n",
            ),
        ],
        "",
    );
}

#[test]
fn targeted_patches_match_kustomize_once_the_appliers_are_in() {
    let files: &[(&str, &str)] = &[
        (
            "kustomization.yaml",
            "resources: [deploy.yaml]\npatches:\n- target: {kind: Deploy.*, labelSelector: \"app!=other\"}\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 5\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: guestbook-ui}\n    spec:\n      template:\n        spec:\n          containers:\n          - name: guestbook-ui\n            resources: {limits: {cpu: 100m}}\n",
        ),
        ("deploy.yaml", GUESTBOOK_DEPLOY),
    ];
    if patches_available() {
        let out = same_as_kustomize(files, "");
        assert_eq!(out[0]["spec"]["replicas"], 5);
    } else {
        let dir = tree(files);
        let err = hawser_render(dir.path(), "").unwrap_err();
        assert!(err.contains("patches are not supported yet"), "{err}");
    }
}

#[test]
fn refusals_are_one_line_and_name_the_file_and_field() {
    let dir = tree(&[
        ("kustomization.yaml", "resources: [base]\n"),
        (
            "base/kustomization.yaml",
            "resources: [cm.yaml]\nvars:\n- name: X\n  objref: {kind: ConfigMap, name: cm, apiVersion: v1}\n",
        ),
        (
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
        ),
    ]);
    let err = hawser_render(dir.path(), "").unwrap_err();
    assert_eq!(
        err,
        "hawser: base/kustomization.yaml: vars: vars are not rendered; use replacements\n"
    );
}

#[test]
fn replacements_match_kustomize() {
    same_as_kustomize(
        &[
            (
                "kustomization.yaml",
                "resources: [deploy.yaml, svc.yaml, cm.yaml]\nreplacements:\n- source:\n    kind: ConfigMap\n    name: versions\n    fieldPath: data.tag\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths:\n    - spec.template.spec.containers.[name=guestbook-ui].image\n    options: {delimiter: ':', index: 1}\n- source: {kind: ConfigMap, name: versions, fieldPath: data.replicas}\n  targets:\n  - select: {kind: Deployment, name: guestbook-.*}\n    fieldPaths: [spec.replicas]\n- path: more.yaml\n",
            ),
            ("deploy.yaml", GUESTBOOK_DEPLOY),
            ("svc.yaml", GUESTBOOK_SVC),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\ndata:\n  tag: \"0.2\"\n  replicas: \"4\"\n  port: \"8080\"\n",
            ),
            (
                "more.yaml",
                "source: {kind: ConfigMap, name: versions, fieldPath: data.port}\ntargets:\n- select: {kind: Service}\n  reject: [{name: other}]\n  fieldPaths: [spec.ports.0.targetPort, metadata.annotations.port]\n  options: {create: true}\n",
            ),
        ],
        "",
    );
}

#[test]
fn rbac_namespaces_secrets_configurations_and_the_legacy_order_match_kustomize() {
    same_as_kustomize(
        &[
            (
                "base/kustomization.yaml",
                "resources: [rbac.yaml, app.yaml]\nsecretGenerator:\n- name: creds\n  type: kubernetes.io/basic-auth\n  literals: [username=admin, password=hunter2]\nconfigMapGenerator:\n- name: env\n  literals: [A=1]\n",
            ),
            (
                "base/rbac.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: viewer\nrules: []\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: viewer\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer}\nsubjects:\n- {kind: ServiceAccount, name: app, namespace: apps}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: hook\nwebhooks:\n- name: hook.example.com\n  clientConfig:\n    service: {name: app, namespace: apps}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n",
            ),
            (
                "base/app.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector: {app: app}\n  ports: [{port: 443}]\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: app\nspec:\n  serviceName: app\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec:\n      serviceAccountName: app\n      priorityClassName: high\n      imagePullSecrets: [{name: creds}]\n      containers:\n      - name: app\n        image: registry.example.com:5000/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000\n        envFrom: [{secretRef: {name: creds}}, {configMapRef: {name: env}}]\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  envName: env\n  containers: [{name: x, image: busybox}]\n",
            ),
            (
                "kustomization.yaml",
                "resources: [base]\nnamespace: apps\nnameSuffix: -v2\nconfigurations: [widget.yaml]\nconfigMapGenerator:\n- name: env\n  behavior: replace\n  literals: [B=2]\nimages:\n- name: registry.example.com:5000/team/app\n  newName: mirror.example.com/app\n  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n- name: busybox\n  newTag: '1.36'\ncommonAnnotations: {note: 'a & <b>'}\n",
            ),
            (
                "widget.yaml",
                "nameReference:\n- kind: ConfigMap\n  version: v1\n  fieldSpecs:\n  - path: spec/envName\n    kind: Widget\n",
            ),
        ],
        "",
    );
}

#[allow(clippy::unwrap_used)]
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Scalars YAML 1.1 and 1.2 read differently, quoting, key order and long lines:
/// kustomize reads resources with goyaml v3 (`yes`, `on`, `y` are strings, `0777`
/// is 511) and prints through goyaml v2 (sorted keys, quotes for what v2 would read
/// as another type, folding at column 80). hawser render prints the same bytes.
#[test]
fn scalars_quoting_and_key_order_print_byte_for_byte_as_kustomize() {
    let config_map = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: scalars
  labels:
    a10: x
    a9: y
    A_: z
    _a: w
data:
  yes: yes
  on: on
  y: y
  oct: 0777
  hex: 0x1f
  f: 1.0
  e: 1e3
  big: 1234567.5
  small: 0.00001
  tl: True
  q: "0777"
  colon: "a: b"
  ml: "line1\nline2"
  lead: "  two\nlines"
  trail: "a\n\n"
  sp: "a \nb"
  tab: "a\tb"
  star: "*x"
  pct: "90%"
  base60: "1:20"
  long: "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq"
  longq: "aaaa: bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp"
  "1": one
  list:
  - - b
    - c
  - {}
  - x: 1
    y: 2
"#;
    let dir = tree(&[
        ("kustomization.yaml", "resources:\n- cm.yaml\n"),
        ("cm.yaml", config_map),
    ]);
    let want = stdout_of(Command::new(kustomize_bin()).arg("build").arg(dir.path()));
    let got = stdout_of(
        Command::new(env!("CARGO_BIN_EXE_hawser"))
            .args(["render", "--dir"])
            .arg(dir.path()),
    );
    assert_eq!(got, want);
    // The YAML 1.2 reading, asserted on its own: these stay strings.
    let doc = &documents(&got)[0];
    assert_eq!(doc["data"]["yes"], "yes");
    assert_eq!(doc["data"]["on"], "on");
    assert_eq!(doc["data"]["oct"], 511);
}

/// kustomize reads a kustomization without strict mode: a repeated key keeps its
/// last value (resources still refuse duplicates).
#[test]
fn a_repeated_key_in_a_kustomization_keeps_the_last_value_as_kustomize_does() {
    let got = same_as_kustomize(
        &[
            (
                "kustomization.yaml",
                "namePrefix: first-\nnamePrefix: last-\nresources:\n- cm.yaml\n",
            ),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
        ],
        "",
    );
    assert_eq!(got[0]["metadata"]["name"], "last-c");
}
