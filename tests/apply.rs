//! The apply engine against the real control plane, with the agent running under a
//! namespaced ServiceAccount token as it would in a pod.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use support::cluster::{
    TestNamespace, audit_sync, audit_writes, get_field, hawser, kubectl, kubectl_raw,
    sa_kubeconfig, sa_user, write_tree,
};

fn app(ns: &str, replicas: u32, greeting: &str) -> Vec<(String, String)> {
    vec![
        (
            "app/config.yaml".into(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: {greeting}\n  port: \"8080\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\ntype: Opaque\nstringData:\n  password: hunter2-{greeting}\n"
            ),
        ),
        (
            "app/deploy.yaml".into(),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      serviceAccountName: web\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports: [{{containerPort: 8080}}]\n"
            ),
        ),
        (
            "app/service.yaml".into(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n    targetPort: 8080\n".into(),
        ),
        (
            "app/rbac.yaml".into(),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: web-read\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: web-read\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: web-read\nsubjects:\n- kind: ServiceAccount\n  name: web\n".into(),
        ),
        (
            "app/policy.yaml".into(),
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 1\n  maxReplicas: 3\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: web}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\nspec:\n  podSelector:\n    matchLabels: {app: web}\n  ingress:\n  - ports: [{port: 8080}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules:\n  - host: web.example.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service: {name: web, port: {number: 80}}\n".into(),
        ),
    ]
}

const MEMBERS: &[(&str, &str)] = &[
    ("configmap", "web-config"),
    ("secret", "web-secret"),
    ("deployment.apps", "web"),
    ("service", "web"),
    ("serviceaccount", "web"),
    ("role.rbac.authorization.k8s.io", "web-read"),
    ("rolebinding.rbac.authorization.k8s.io", "web-read"),
    ("horizontalpodautoscaler.autoscaling", "web"),
    ("poddisruptionbudget.policy", "web"),
    ("networkpolicy.networking.k8s.io", "web"),
    ("ingress.networking.k8s.io", "web"),
];

struct Fixture {
    ns: TestNamespace,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

impl Fixture {
    fn new(prefix: &str) -> Self {
        Fixture::with_rules(prefix, support::cluster::AGENT_RULES)
    }
    /// The agent's ServiceAccount gets `rules` (tests/env/sa-kubeconfig's form).
    fn with_rules(prefix: &str, rules: &[&str]) -> Self {
        let ns = TestNamespace::new(prefix);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = sa_kubeconfig(&ns.name, "hawser", rules, dir.path());
        Fixture {
            ns,
            dir,
            kubeconfig,
        }
    }
    fn user(&self) -> String {
        sa_user(&self.ns.name, "hawser")
    }
    fn tree(&self) -> std::path::PathBuf {
        self.dir.path().join("tree")
    }
    fn write(&self, files: &[(String, String)]) {
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        write_tree(&self.tree(), &files);
    }
    fn run(&self, command: &str, extra: &[&str]) -> support::cluster::Run {
        let tree = self.tree();
        let mut args = vec![command];
        if command == "apply" {
            args.push("--once");
        }
        args.extend([
            "--dir",
            tree.to_str().unwrap(),
            "--namespace",
            &self.ns.name,
        ]);
        args.extend(extra);
        hawser(&args, &self.kubeconfig)
    }
    fn resource_versions(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (kind, name) in MEMBERS.iter().chain([("configmap", "hawser")].iter()) {
            let rv = get_field(kind, &self.ns.name, name, "{.metadata.resourceVersion}")
                .unwrap_or_else(|| panic!("{kind} {name} exists"));
            out.insert(format!("{kind}/{name}"), rv);
        }
        out
    }
}

fn applyset_id(ns: &str) -> String {
    get_field(
        "configmap",
        ns,
        "hawser",
        "{.metadata.labels.applyset\\.kubernetes\\.io/id}",
    )
    .expect("parent exists")
}

#[test]
fn realistic_app_applies_and_reapplying_writes_nothing() {
    let f = Fixture::new("apply-app");
    f.write(&app(&f.ns.name, 2, "hello"));
    let first = f.run("apply", &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("11 created"), "{}", first.stdout);

    let id = applyset_id(&f.ns.name);
    for (kind, name) in MEMBERS {
        let label = get_field(
            kind,
            &f.ns.name,
            name,
            "{.metadata.labels.applyset\\.kubernetes\\.io/part-of}",
        );
        assert_eq!(
            label.as_deref(),
            Some(id.as_str()),
            "{kind} {name} carries the member label"
        );
    }
    // kubectl finds the members through the ApplySet label, as for its own ApplySets.
    let listed = kubectl(&[
        "get",
        "cm",
        "-n",
        &f.ns.name,
        "-l",
        &format!("applyset.kubernetes.io/part-of={id}"),
        "-o",
        "name",
    ]);
    assert_eq!(listed.trim(), "configmap/web-config");
    let tooling = get_field(
        "configmap",
        &f.ns.name,
        "hawser",
        "{.metadata.annotations.applyset\\.kubernetes\\.io/tooling}",
    );
    assert!(tooling.unwrap().starts_with("hawser/"));

    let before = f.resource_versions();
    audit_sync();
    let writes_before = audit_writes(&f.user());
    assert_eq!(
        writes_before.len(),
        12,
        "11 objects and the parent: {writes_before:#?}"
    );
    let second = f.run("apply", &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second.stdout.contains("11 unchanged") && second.stdout.contains("(0 API writes)"),
        "{}",
        second.stdout
    );
    audit_sync();
    assert_eq!(
        audit_writes(&f.user()),
        writes_before,
        "the API server saw no write from the agent"
    );
    let after = f.resource_versions();
    for (key, rv) in &before {
        // Controllers update the status of these on their own schedule.
        if !key.starts_with("horizontalpodautoscaler")
            && !key.starts_with("poddisruptionbudget")
            && !key.starts_with("deployment")
        {
            assert_eq!(&after[key], rv, "{key} was not written");
        }
    }
}

#[test]
fn changing_one_field_writes_one_object_and_removing_a_file_prunes() {
    let f = Fixture::new("apply-change");
    f.write(&app(&f.ns.name, 2, "hello"));
    assert_eq!(f.run("apply", &[]).code, 0);
    let before = f.resource_versions();

    f.write(&app(&f.ns.name, 3, "hello"));
    let changed = f.run("apply", &[]);
    assert_eq!(changed.code, 0, "{changed:?}");
    assert!(changed.stdout.contains("1 updated"), "{}", changed.stdout);
    assert!(
        changed.stdout.contains("updated Deployment"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("spec.replicas"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("(1 API writes)"),
        "{}",
        changed.stdout
    );
    audit_sync();
    let writes = audit_writes(&f.user());
    let last = writes.last().unwrap();
    assert!(
        last.starts_with("patch /apis/apps/v1/namespaces/") && last.contains("/deployments/web"),
        "{writes:#?}"
    );
    assert_eq!(
        writes.len(),
        13,
        "one write after the first apply's 12: {writes:#?}"
    );
    let after = f.resource_versions();
    assert_ne!(before["deployment.apps/web"], after["deployment.apps/web"]);
    assert_eq!(
        before["configmap/web-config"],
        after["configmap/web-config"]
    );

    let mut files = app(&f.ns.name, 3, "hello");
    files.retain(|(path, _)| path != "app/service.yaml");
    f.write(&files);
    let pruned = f.run("apply", &[]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(
        pruned.stdout.contains("pruned Service"),
        "{}",
        pruned.stdout
    );
    support::cluster::eventually(
        "service deleted",
        std::time::Duration::from_secs(20),
        || get_field("service", &f.ns.name, "web", "{.metadata.name}").is_none(),
    );
    let inventory = get_field("configmap", &f.ns.name, "hawser", "{.data.inventory}").unwrap();
    assert!(
        !inventory.contains("\"Service\""),
        "pruned object left the inventory: {inventory}"
    );
}

#[test]
fn empty_revision_and_mass_prune_are_refused() {
    let f = Fixture::new("apply-guard");
    f.write(&app(&f.ns.name, 1, "hello"));
    assert_eq!(f.run("apply", &[]).code, 0);

    f.write(&[("README.md".to_string(), "nothing here".to_string())]);
    let empty = f.run("apply", &[]);
    assert_eq!(empty.code, 2, "{empty:?}");
    assert!(
        empty.stderr.contains("contains no objects"),
        "{}",
        empty.stderr
    );
    assert_eq!(
        empty.stderr.trim().lines().count(),
        1,
        "one-line error: {}",
        empty.stderr
    );

    // Keep 2 of 11 objects: 9 prunes is more than half.
    let keep: Vec<(String, String)> = app(&f.ns.name, 1, "hello")
        .into_iter()
        .filter(|(p, _)| p == "app/config.yaml")
        .collect();
    f.write(&keep);
    let mass = f.run("apply", &[]);
    assert_eq!(mass.code, 2, "{mass:?}");
    assert!(
        mass.stderr.contains("would prune 9 of 11"),
        "{}",
        mass.stderr
    );
    assert!(
        get_field("deployment", &f.ns.name, "web", "{.metadata.name}").is_some(),
        "nothing was pruned"
    );

    let allowed = f.run("apply", &["--allow-mass-prune"]);
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert!(allowed.stdout.contains("9 pruned"), "{}", allowed.stdout);
}

#[test]
fn an_object_outside_the_scope_rejects_the_whole_revision() {
    let f = Fixture::new("apply-scope");
    let mut files = app(&f.ns.name, 1, "hello");
    files.push((
        "other.yaml".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-system\n"
            .into(),
    ));
    f.write(&files);
    let run = f.run("apply", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("ConfigMap kube-system/elsewhere"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("outside the scope"), "{}", run.stderr);
    assert!(
        get_field("configmap", &f.ns.name, "web-config", "{.metadata.name}").is_none(),
        "nothing written"
    );
    assert!(
        get_field("configmap", &f.ns.name, "hawser", "{.metadata.name}").is_none(),
        "no inventory written"
    );
}

#[test]
fn a_kind_the_service_account_may_not_create_fails_the_dry_run_and_nothing_is_written() {
    let f = Fixture::new("apply-forbidden");
    let mut files = app(&f.ns.name, 1, "hello");
    files.push((
        "quota.yaml".into(),
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: small\nspec:\n  hard:\n    pods: \"10\"\n".into(),
    ));
    f.write(&files);
    let run = f.run("apply", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("ResourceQuota {}/small", f.ns.name)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("forbidden"), "{}", run.stderr);
    for (kind, name) in MEMBERS {
        assert!(
            get_field(kind, &f.ns.name, name, "{.metadata.name}").is_none(),
            "{kind} {name} was not written"
        );
    }
}

#[test]
fn a_hand_edit_by_another_field_manager_is_restored_and_reported() {
    let f = Fixture::new("apply-edit");
    f.write(&app(&f.ns.name, 1, "hello"));
    assert_eq!(f.run("apply", &[]).code, 0);
    kubectl(&[
        "patch",
        "configmap",
        "web-config",
        "-n",
        &f.ns.name,
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"edited"}}"#,
    ]);
    assert_eq!(
        get_field("configmap", &f.ns.name, "web-config", "{.data.greeting}").as_deref(),
        Some("edited")
    );

    let run = f.run("apply", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        get_field("configmap", &f.ns.name, "web-config", "{.data.greeting}").as_deref(),
        Some("hello")
    );
    assert!(
        run.stdout.contains("updated ConfigMap") && run.stdout.contains("data.greeting"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("kubectl-patch"),
        "the other manager is reported: {}",
        run.stdout
    );
}

#[test]
fn an_immutable_change_fails_clearly_and_succeeds_with_force() {
    let f = Fixture::new("apply-immutable");
    let cm = |value: &str, force: bool| {
        let annotations = if force {
            "\n  annotations:\n    hawser.dev/force: enabled"
        } else {
            ""
        };
        vec![(
            "cm.yaml".to_string(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen{annotations}\nimmutable: true\ndata:\n  value: {value}\n"
            ),
        )]
    };
    f.write(&cm("one", false));
    assert_eq!(f.run("apply", &[]).code, 0);
    let uid = get_field("configmap", &f.ns.name, "frozen", "{.metadata.uid}").unwrap();

    f.write(&cm("two", false));
    let refused = f.run("apply", &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("ConfigMap {}/frozen", f.ns.name)),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("immutable") && refused.stderr.contains("hawser.dev/force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        get_field("configmap", &f.ns.name, "frozen", "{.data.value}").as_deref(),
        Some("one")
    );

    f.write(&cm("two", true));
    let forced = f.run("apply", &[]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(
        forced.stdout.contains("recreated ConfigMap"),
        "{}",
        forced.stdout
    );
    assert_eq!(
        get_field("configmap", &f.ns.name, "frozen", "{.data.value}").as_deref(),
        Some("two")
    );
    assert_ne!(
        get_field("configmap", &f.ns.name, "frozen", "{.metadata.uid}").unwrap(),
        uid,
        "a new object"
    );
}

#[test]
fn diff_reports_changes_with_secret_values_masked() {
    let f = Fixture::new("apply-diff");
    f.write(&app(&f.ns.name, 1, "hello"));
    let before = f.run("diff", &[]);
    assert_eq!(before.code, 1, "changes found: {before:?}");
    assert!(
        before.stdout.contains("+  greeting: hello"),
        "{}",
        before.stdout
    );
    assert!(
        !before.stdout.contains("hunter2") && !before.stdout.contains("aHVudGVyM"),
        "secret masked: {}",
        before.stdout
    );
    assert!(
        get_field("configmap", &f.ns.name, "web-config", "{.metadata.name}").is_none(),
        "diff writes nothing"
    );

    assert_eq!(f.run("apply", &[]).code, 0);
    let clean = f.run("diff", &[]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.trim().is_empty(), "{}", clean.stdout);

    f.write(&app(&f.ns.name, 1, "bye"));
    let changed = f.run("diff", &[]);
    assert_eq!(changed.code, 1, "{changed:?}");
    assert!(
        changed.stdout.contains("-  greeting: hello")
            && changed.stdout.contains("+  greeting: bye"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("password: \"*** (before)\""),
        "{}",
        changed.stdout
    );
    assert!(!changed.stdout.contains("hunter2"), "{}", changed.stdout);
}

#[test]
fn with_cluster_scope_a_crd_and_its_resource_apply_in_one_revision() {
    let ns = TestNamespace::new("apply-crd");
    let dir = tempfile::tempdir().unwrap();
    let group = format!("{}.hawser.test", ns.name);
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\nspec:\n  group: {group}\n  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              size: {{type: integer}}\n"
    );
    let cr =
        format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n");
    // A Namespace the revision creates, holding a resource of the new CRD and a
    // ConfigMap: neither can be dry-run before the Namespace exists.
    let new_ns = format!("{}-new", ns.name);
    let in_new_ns = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {new_ns}\n---\napiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w2\n  namespace: {new_ns}\nspec:\n  size: 5\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: {new_ns}\ndata: {{k: v}}\n"
    );
    let tree = dir.path().join("tree");
    write_tree(
        &tree,
        &[
            ("crd.yaml", &crd),
            ("widget.yaml", &cr),
            ("new-ns.yaml", &in_new_ns),
        ],
    );
    let admin = support::cluster::admin_kubeconfig();
    let args = [
        "apply",
        "--once",
        "--dir",
        tree.to_str().unwrap(),
        "--namespace",
        &ns.name,
        "--allow-cluster-scoped",
        "--allow-kinds",
        "CustomResourceDefinition",
        "--allow-namespaces",
        &new_ns,
    ];
    let run = hawser(&args, &admin);
    let cleanup = || {
        kubectl_raw(&["delete", "namespace", &new_ns, "--wait=false"], &admin);
        kubectl_raw(
            &["delete", "crd", &format!("widgets.{group}"), "--wait=false"],
            &admin,
        )
    };
    if run.code != 0 {
        cleanup();
    }
    assert_eq!(run.code, 0, "{run:?}");
    let size = get_field(&format!("widgets.{group}"), &ns.name, "w1", "{.spec.size}");
    let size_in_new = get_field(&format!("widgets.{group}"), &new_ns, "w2", "{.spec.size}");
    let cm_in_new = get_field("configmap", &new_ns, "c", "{.data.k}");
    let again = hawser(&args, &admin);
    cleanup();
    assert_eq!(size.as_deref(), Some("3"));
    assert_eq!(size_in_new.as_deref(), Some("5"));
    assert_eq!(cm_in_new.as_deref(), Some("v"));
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("(0 API writes)"),
        "the second apply writes nothing: {}",
        again.stdout
    );
}

#[test]
fn hostile_manifests_give_one_line_errors_before_any_contact() {
    let f = Fixture::new("apply-hostile");
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    for (file, content, expect) in [
        ("bomb.yaml", bomb, "bomb.yaml"),
        (
            "dup.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n",
            "dup.yaml",
        ),
        ("bad.yaml", "apiVersion: v1\nkind: [unclosed\n", "bad.yaml"),
    ] {
        f.write(&[(file.to_string(), content.to_string())]);
        let run = f.run("apply", &[]);
        assert_eq!(run.code, 2, "{file}: {run:?}");
        assert!(run.stderr.contains(expect), "{file}: {}", run.stderr);
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{file}: one line: {}",
            run.stderr
        );
    }
    assert!(
        get_field("configmap", &f.ns.name, "hawser", "{.metadata.name}").is_none(),
        "nothing written"
    );
}

#[test]
fn applies_from_a_git_source_and_names_the_revision() {
    let f = Fixture::new("apply-git");
    let server = support::GitServer::start(support::GitServerOptions::default());
    let repo = support::Repo::create(&server);
    for (path, content) in app(&f.ns.name, 1, "from-git") {
        repo.write(&format!("clusters/edge/{path}"), content);
    }
    repo.write(
        "clusters/other/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: not-this-cluster\n",
    );
    let commit = repo.commit("edge app");
    repo.push();
    let args = [
        "apply",
        "--once",
        "--source",
        repo.url(),
        "--ref",
        "main",
        "--path",
        "clusters/edge",
        "--namespace",
        &f.ns.name,
    ];
    let run = hawser(&args, &f.kubeconfig);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("revision {commit}")),
        "{}",
        run.stdout
    );
    assert_eq!(
        get_field("configmap", &f.ns.name, "web-config", "{.data.greeting}").as_deref(),
        Some("from-git")
    );
    assert!(
        get_field(
            "configmap",
            &f.ns.name,
            "not-this-cluster",
            "{.metadata.name}"
        )
        .is_none()
    );
}

#[test]
fn prune_spares_opted_out_and_relabelled_objects_and_keeps_what_it_may_not_delete() {
    // This agent may not delete Secrets.
    let f = Fixture::with_rules(
        "apply-prune",
        &[
            "get,list,watch,create,update,patch,delete:configmaps",
            "get,list,watch,create,update,patch:secrets",
        ],
    );
    let ns = &f.ns;
    let cm = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{extra}\ndata:\n  k: v\n"
        )
    };
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: keep-secret\nstringData:\n  k: v\n";
    let all = [
        ("a.yaml", cm("stays", "")),
        ("b.yaml", cm("goes", "")),
        (
            "c.yaml",
            cm(
                "opted-out",
                "\n  annotations:\n    hawser.dev/prune: disabled",
            ),
        ),
        ("d.yaml", cm("relabelled", "")),
        ("e.yaml", secret.to_string()),
    ];
    let write = |files: &[(&str, String)]| {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.clone()))
            .collect();
        f.write(&files);
    };
    write(&all);
    assert_eq!(f.run("apply", &[]).code, 0);
    // Someone takes "relabelled" over: it is no longer a member.
    kubectl(&[
        "label",
        "configmap",
        "relabelled",
        "-n",
        &ns.name,
        "applyset.kubernetes.io/part-of-",
    ]);

    write(&all[..1]);
    let run = f.run("apply", &["--allow-mass-prune"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("pruned ConfigMap {}/goes", ns.name)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("hawser.dev/prune: disabled"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no longer labelled"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("could not prune Secret {}/keep-secret", ns.name)),
        "{}",
        run.stdout
    );
    support::cluster::eventually("goes deleted", std::time::Duration::from_secs(20), || {
        get_field("configmap", &ns.name, "goes", "{.metadata.name}").is_none()
    });
    for name in ["stays", "opted-out", "relabelled"] {
        assert!(
            get_field("configmap", &ns.name, name, "{.metadata.name}").is_some(),
            "{name} is still there"
        );
    }
    assert!(get_field("secret", &ns.name, "keep-secret", "{.metadata.name}").is_some());
    let inventory = get_field("configmap", &ns.name, "hawser", "{.data.inventory}").unwrap();
    assert!(
        inventory.contains("keep-secret"),
        "what could not be deleted stays managed: {inventory}"
    );
    assert!(
        !inventory.contains("opted-out")
            && !inventory.contains("relabelled")
            && !inventory.contains("\"goes\""),
        "{inventory}"
    );
}

/// A ServiceAccount that may not list its kinds still gets a correct plan: the
/// planner then reads each existing object on its own instead of from the list.
#[test]
fn without_list_permission_each_object_is_read_on_its_own() {
    let f = Fixture::with_rules(
        "apply-nolist",
        &[
            "get,create,update,patch:configmaps",
            "get,create,update,patch:secrets",
        ],
    );
    let ns = &f.ns;
    f.write(&[
        (
            "a.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n".into(),
        ),
        (
            "s.yaml".into(),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: v\n".into(),
        ),
    ]);
    let apply = || f.run("apply", &[]);
    let first = apply();
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("2 created"), "{}", first.stdout);

    audit_sync();
    let user = f.user();
    let seen = support::cluster::audit_events(&user).len();
    let second = apply();
    assert!(
        second.stdout.contains("2 unchanged") && second.stdout.contains("(0 API writes)"),
        "{second:?}"
    );
    audit_sync();
    let events = support::cluster::audit_events(&user);
    let requests: Vec<String> = events[seen..]
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["verb"].as_str().unwrap_or_default(),
                e["responseStatus"]["code"],
                e["requestURI"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let path = format!("/api/v1/namespaces/{}/configmaps/a", ns.name);
    assert!(
        requests.iter().any(|r| r.starts_with("list 403")),
        "the list was tried and refused: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("get 200") && r.ends_with(&path)),
        "the object was read on its own: {requests:#?}"
    );

    kubectl(&[
        "patch",
        "configmap",
        "a",
        "-n",
        &ns.name,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"k":"edited"}}"#,
    ]);
    let third = apply();
    assert!(
        third
            .stdout
            .contains(&format!("updated ConfigMap {}/a (data.k)", ns.name)),
        "{third:?}"
    );
    assert_eq!(
        get_field("configmap", &ns.name, "a", "{.data.k}").as_deref(),
        Some("v")
    );
}
