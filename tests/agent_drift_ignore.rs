//! Drift ignore rules end to end against the real API server: a field that
//! `--drift-ignore` or the `hawser.dev/drift-ignore` annotation names is set at
//! creation, then left to whoever else writes it (an HPA-like writer: another field
//! manager scaling the Deployment), while the object's other fields are still
//! corrected; `hawser diff` leaves the field out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::cluster::{get_field, hawser, kubectl};
use support::world::{World, until};

/// Which top-level spec fields the manager `hawser` owns on the Deployment.
fn hawser_owns_replicas(ns: &str) -> bool {
    let fields = kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        ns,
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[?(@.manager==\"hawser\")]}{.fieldsV1}{end}",
    ]);
    fields.contains("\"f:replicas\"")
}

#[test]
fn ignored_fields_survive_another_managers_writes_while_the_rest_is_corrected() {
    let w = World::new("agent-ignore");
    w.repo.write(
        "app/tuned.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tuned\n  annotations:\n    hawser.dev/drift-ignore: /data/level\ndata:\n  level: \"1\"\n  other: a\n",
    );
    w.push("one", 2, "");
    let agent = w.agent(&["--drift-ignore", "kind=Deploy*,name=web:/spec/replicas"]);
    w.wait_greeting("one", &agent);
    assert_eq!(w.replicas(), "2", "set at creation");
    let drift_checks = || agent.logs().matches("no drift").count();

    let image = || {
        get_field(
            "deployment",
            &w.ns.name,
            "web",
            "{.spec.template.spec.containers[0].image}",
        )
    };
    let set_image = |image: &str| {
        kubectl(&[
            "set",
            "image",
            "deployment/web",
            &format!("web={image}"),
            "-n",
            &w.ns.name,
        ]);
    };

    // hawser alone owns replicas after creation: correcting another field without
    // them must not remove them (the server would default them to 1).
    set_image("nginx:1.25");
    until(&agent, "the image corrected", || {
        image().as_deref() == Some("nginx:1.27")
    });
    let seen = drift_checks();
    until(&agent, "three drift checks", || drift_checks() >= seen + 3);
    assert_eq!(w.replicas(), "2");
    assert!(
        hawser_owns_replicas(&w.ns.name),
        "until another manager writes them, hawser keeps the live value (and owns it)"
    );

    // The HPA-like writer (field manager kubectl, the scale subresource) takes
    // replicas; another field of the same object drifts too.
    w.scale(5);
    kubectl(&[
        "set",
        "image",
        "deployment/web",
        "web=nginx:1.26",
        "-n",
        &w.ns.name,
    ]);
    let image = || {
        get_field(
            "deployment",
            &w.ns.name,
            "web",
            "{.spec.template.spec.containers[0].image}",
        )
    };
    until(&agent, "the image corrected", || {
        image().as_deref() == Some("nginx:1.27")
    });
    assert_eq!(w.replicas(), "5", "replicas left to the other manager");
    let seen = drift_checks();
    until(&agent, "three more drift checks", || {
        drift_checks() >= seen + 3
    });
    assert_eq!(w.replicas(), "5");
    assert!(
        !hawser_owns_replicas(&w.ns.name),
        "hawser gave up ownership of spec.replicas"
    );

    // The annotation: data.level is another manager's, data.other is corrected.
    kubectl(&[
        "patch",
        "configmap",
        "tuned",
        "-n",
        &w.ns.name,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"level":"9","other":"b"}}"#,
    ]);
    let data = |key: &str| {
        get_field(
            "configmap",
            &w.ns.name,
            "tuned",
            &format!("{{.data.{key}}}"),
        )
    };
    until(&agent, "data.other corrected", || {
        data("other").as_deref() == Some("a")
    });
    let seen = drift_checks();
    until(&agent, "three more drift checks", || {
        drift_checks() >= seen + 3
    });
    assert_eq!(data("level").as_deref(), Some("9"));
    let logs = agent.logs();
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("drift")
                && (l.contains("spec.replicas") || l.contains("data.level"))),
        "drift reports leave ignored fields out"
    );

    // `hawser diff` leaves them out too; without the rule it shows replicas.
    let dir = w.repo.work_dir().join("app").display().to_string();
    let base = ["diff", "--dir", &dir, "--namespace", &w.ns.name];
    let mut with_rule = base.to_vec();
    with_rule.extend(["--drift-ignore", "kind=Deployment:/spec/replicas"]);
    let diff = hawser(&with_rule, &w.kubeconfig);
    assert_eq!(diff.code, 0, "nothing but ignored fields differ: {diff:?}");
    let diff = hawser(&base, &w.kubeconfig);
    assert_eq!(diff.code, 1, "{diff:?}");
    assert!(diff.stdout.contains("replicas"), "{}", diff.stdout);
    assert!(
        !diff.stdout.contains("level"),
        "the annotation still applies: {}",
        diff.stdout
    );

    let bad = hawser(
        &[
            "diff",
            "--dir",
            &dir,
            "--namespace",
            &w.ns.name,
            "--drift-ignore",
            "kind=Deployment",
        ],
        &w.kubeconfig,
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("--drift-ignore \"kind=Deployment\": expected SELECTOR:/json/pointer"),
        "{}",
        bad.stderr
    );
}
