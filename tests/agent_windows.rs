//! `--sync-window` end to end: the agent as a child process under a scoped
//! ServiceAccount, a real Git server, the real control plane, commit statuses
//! recorded. A closed window holds a new revision (`pending`, waiting for the
//! window) while the applied one stays enforced; an open one applies it.
//!
//! The windows are written around the wall clock's current hour, so they are
//! closed (or open) for at least an hour whatever time the test runs; the
//! schedule arithmetic itself (DST, midnight, weekdays) is tested with a hand-set
//! clock in `agent/window/tests.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forge_recorder/mod.rs"]
mod forge_recorder;
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::world::{World, until};

/// `deny * HH:00-HH+2:00 UTC` around now, and the UTC hour it ends.
fn deny_around_now() -> (String, u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hour = now / 3600 % 24;
    let end = (hour + 2) % 24;
    let opens = (now / 3600 + 2) * 3600;
    (format!("deny * {hour:02}:00-{end:02}:00 UTC"), end, opens)
}

#[test]
fn a_closed_window_holds_a_new_revision_pending_and_an_open_one_applies_it() {
    let w = World::new("agent-window");
    let forge = forge_recorder::Server::start(vec![]);
    let token_file = w.dir.path().join("forge-token");
    std::fs::write(&token_file, "ghp_windowToken0123456789\n").unwrap();
    let v1 = w.push("one", 2, "");
    let forge_args = [
        "--status-provider",
        "github",
        "--status-api-url",
        &forge.url,
        "--status-repo",
        "acme/fleet",
        "--status-token-file",
        token_file.to_str().unwrap(),
        "--cluster-name",
        "edge-1",
    ];
    let posted = |commit: &str, state: &str| {
        forge
            .requests()
            .into_iter()
            .find(|r| r.target.ends_with(commit) && r.body["state"] == state)
    };

    // Open (an allow window around the clock, kept across restarts): v1 applies.
    let mut base = forge_args.to_vec();
    base.extend(["--sync-window", "allow * 00:00-24:00 UTC"]);
    let mut agent = w.agent(&base);
    w.wait_greeting("one", &agent);
    until(&agent, "success posted for v1", || {
        posted(&v1, "success").is_some()
    });
    let metrics = agent.http("GET", "/metrics", &[], b"").unwrap().1;
    assert!(metrics.contains("hawser_sync_window_open 1"), "{metrics}");
    until(&agent, "the status shows the open window", || {
        w.status()["syncWindow"]["open"] == true
    });

    // Closed: v2 waits, pending with the opening time; v1 stays enforced.
    let (deny, end_hour, opens) = deny_around_now();
    // Closed: the deny window wins over the allow window.
    agent.kill();
    agent.restart(&["--sync-window", &deny]);
    let v2 = w.push("two", 2, "");
    let want = format!("waiting for the change window (opens {end_hour:02}:00 UTC)");
    until(&agent, "pending posted for v2", || {
        posted(&v2, "pending").is_some()
    });
    let pending = posted(&v2, "pending").unwrap();
    assert_eq!(pending.body["description"], want.as_str());
    assert_eq!(pending.body["context"], "hawser/edge-1");
    until(&agent, "the status says waiting", || {
        w.status()["result"] == "waiting"
    });
    let status = w.status();
    assert_eq!(status["message"], want.as_str());
    assert_eq!(status["desired"], v2.as_str());
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(status["syncWindow"]["open"], false);
    assert_eq!(
        status["syncWindow"]["description"],
        format!("opens {end_hour:02}:00 UTC")
    );
    let metrics = agent.http("GET", "/metrics", &[], b"").unwrap().1;
    assert!(metrics.contains("hawser_sync_window_open 0"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "hawser_sync_window_next_open_timestamp_seconds {opens}"
        )),
        "{metrics}"
    );
    let table = support::cluster::hawser(&["status", "--namespace", &w.ns.name], &w.kubeconfig);
    assert!(
        table.stdout.contains(&format!(
            "sync window        closed (opens {end_hour:02}:00 UTC"
        )),
        "{}",
        table.stdout
    );
    // Drift is still corrected while closed (the default), on v1's objects.
    w.scale(5);
    until(&agent, "replicas back to 2", || w.replicas() == "2");
    assert_eq!(w.greeting().as_deref(), Some("one"), "v2 was not applied");
    assert!(
        posted(&v2, "success").is_none() && posted(&v2, "failure").is_none(),
        "{:#?}",
        forge.requests()
    );

    // Closed with --sync-window-drift=report: drift is only reported.
    agent.kill();
    agent.restart(&["--sync-window", &deny, "--sync-window-drift", "report"]);
    w.scale(4);
    until(&agent, "a drift event naming the window", || {
        w.events()
            .contains("not corrected: outside the change window")
    });
    assert_eq!(w.replicas(), "4", "drift not corrected while closed");
    assert_eq!(w.greeting().as_deref(), Some("one"));

    // Open again: v2 applies and succeeds.
    agent.kill();
    agent.restart(&[]);
    w.wait_greeting("two", &agent);
    until(&agent, "success posted for v2", || {
        posted(&v2, "success").is_some()
    });
    assert_eq!(w.replicas(), "2");
}
