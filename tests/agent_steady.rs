//! A steady drift tick checks the applied revision without rendering it, and still
//! finds every kind of drift a full plan finds: an edited object, a member the
//! inventory records beyond the revision. The agent runs as in a pod, against a real
//! Git server and the real control plane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::cluster::{get_field, kubectl};
use support::world::{World, until};

const NOT_RENDERED: &str = "the revision was not rendered";

#[test]
fn a_steady_drift_tick_renders_nothing_and_an_edit_is_still_corrected() {
    let w = World::new("agent-steady-edit");
    w.push("one", 1, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "a drift tick without a render", || {
        agent.logs().contains(NOT_RENDERED)
    });

    w.scale(4);
    until(&agent, "replicas back to 1", || w.replicas() == "1");
    let corrected = agent.logs().len();
    until(&agent, "steady again, without a render", || {
        agent.logs()[corrected..].contains(NOT_RENDERED)
    });
    assert_eq!(w.replicas(), "1");
}

#[test]
fn a_member_recorded_beyond_the_revision_is_pruned_by_a_steady_agent() {
    let w = World::new("agent-steady-prune");
    w.push("one", 1, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "a drift tick without a render", || {
        agent.logs().contains(NOT_RENDERED)
    });

    // An object of this ApplySet that the revision does not hold, recorded in the
    // inventory (as a revision whose apply was cut short leaves it): drift prunes it.
    let id = get_field(
        "configmap",
        &w.ns.name,
        "hawser",
        r"{.metadata.labels.applyset\.kubernetes\.io/id}",
    )
    .unwrap();
    let orphan = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orphan", "namespace": w.ns.name,
            "labels": {"applyset.kubernetes.io/part-of": id}},
        "data": {"k": "v"},
    });
    let file = w.dir.path().join("orphan.json");
    std::fs::write(&file, orphan.to_string()).unwrap();
    kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let inventory = get_field("configmap", &w.ns.name, "hawser", "{.data.inventory}").unwrap();
    let line = serde_json::json!({"group": "", "version": "v1", "kind": "ConfigMap",
        "namespace": w.ns.name, "name": "orphan"});
    let patch = serde_json::json!({"data": {"inventory": format!("{inventory}{line}\n")}});
    kubectl(&[
        "patch",
        "configmap",
        "hawser",
        "-n",
        &w.ns.name,
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    until(&agent, "the recorded orphan pruned", || {
        get_field("configmap", &w.ns.name, "orphan", "{.metadata.name}").is_none()
    });
    assert_eq!(w.greeting().as_deref(), Some("one"));
}
