//! `hawser run` end to end: a real Git server, the real control plane, the agent as a
//! child process under a namespaced ServiceAccount, as in a pod.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forge_recorder/mod.rs"]
mod forge_recorder;
mod support;

use std::time::Duration;

use support::cluster::{audit_events, audit_sync, get_field, kubectl, sa_user};
use support::world::{WAIT, World, until};

#[test]
fn new_commits_are_applied_and_drift_is_corrected() {
    let w = World::new("agent-basic");
    let v1 = w.push("one", 2, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    agent.wait_ready(WAIT);
    until(&agent, "status success for v1", || {
        w.status()["applied"] == v1.as_str() && w.status()["result"] == "success"
    });
    assert_eq!(w.cache_state()["good"]["revision"], v1.as_str());

    let v2 = w.push("two", 2, "");
    w.wait_greeting("two", &agent);
    until(&agent, "status success for v2", || {
        w.status()["good"] == v2.as_str()
    });

    w.scale(5);
    until(&agent, "replicas back to 2", || w.replicas() == "2");
    until(&agent, "a drift log line", || {
        agent.logs().contains("drift corrected")
    });
    let logs = agent.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("drift corrected"))
        .unwrap();
    assert!(
        line.contains(&format!("Deployment {}/web", w.ns.name)) && line.contains("spec.replicas"),
        "{line}"
    );
    assert!(line.contains(&v2), "log lines carry the revision: {line}");
    until(&agent, "a DriftCorrected event", || {
        w.events().contains("DriftCorrected")
    });

    let json = support::cluster::hawser(
        &["status", "--namespace", &w.ns.name, "-o", "json"],
        &w.kubeconfig,
    );
    assert_eq!(json.code, 0, "{json:?}");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["applied"], v2.as_str());
    assert_eq!(json["good"], v2.as_str());
    assert_eq!(json["result"], "success");
    assert_eq!(json["managedObjects"], 2);
    let table = support::cluster::hawser(&["status", "--namespace", &w.ns.name], &w.kubeconfig);
    assert!(
        table.stdout.contains(&format!("applied            {v2}")),
        "{}",
        table.stdout
    );

    let (code, metrics) = agent.http("GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    for family in [
        "hawser_reconciles_total",
        "hawser_drift_corrections_total",
        "hawser_applied_revision_info",
        "hawser_source_polls_total",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "hawser_applied_revision_info{{revision=\"{v2}\"}} 1"
        )),
        "{metrics}"
    );
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not Prometheus text: {line}");
    }
}

/// Once every object is what a dry run of its manifest produced, a drift tick lists
/// the members and dry-runs none of them; a hand edit gets exactly that object
/// dry-run again, and corrected. Nothing reads the Deployment on its own: health
/// uses the member lists too.
#[test]
fn a_steady_drift_tick_dry_runs_nothing_until_an_object_drifts() {
    let w = World::new("agent-steady");
    w.push("one", 1, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "status success", || {
        w.status()["result"] == "success"
    });

    let user = sa_user(&w.ns.name, "hawser");
    let uri = |e: &serde_json::Value| e["requestURI"].as_str().unwrap_or_default().to_string();
    let is_dry_run = |e: &serde_json::Value| e["verb"] == "patch" && uri(e).contains("dryRun=All");
    let is_member_list = |e: &serde_json::Value| e["verb"] == "list" && uri(e).contains("part-of");
    // Two kinds (ConfigMap, Deployment): four member lists are two drift ticks.
    until(&agent, "two drift ticks in a row without a dry run", || {
        let events = audit_events(&user);
        let since = events.iter().rposition(is_dry_run).map_or(0, |i| i + 1);
        events[since..].iter().filter(|e| is_member_list(e)).count() >= 4
    });
    audit_sync();
    let before = audit_events(&user);
    let steady = before.len();
    // Health and the plan read the Deployment through the member lists, never alone.
    let gets: Vec<String> = before
        .iter()
        .filter(|e| e["verb"] == "get" && uri(e).contains("/deployments/web"))
        .map(uri)
        .collect();
    assert!(gets.is_empty(), "{gets:?}");

    w.scale(4);
    until(&agent, "replicas back to 1", || w.replicas() == "1");
    audit_sync();
    let dry_runs: Vec<String> = audit_events(&user)[steady..]
        .iter()
        .filter(|e| is_dry_run(e))
        .map(uri)
        .collect();
    assert!(
        !dry_runs.is_empty() && dry_runs.iter().all(|u| u.contains("/deployments/web")),
        "only the edited Deployment is dry-run: {dry_runs:?}"
    );
}

#[test]
fn a_signed_webhook_triggers_a_poll_and_an_unsigned_one_is_refused() {
    let w = World::new("agent-hook");
    let secret = w.dir.path().join("hook-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    w.push("one", 1, "");
    let agent = w.agent(&[
        "--interval",
        "1h",
        "--hook-secret-file",
        secret.to_str().unwrap(),
    ]);
    w.wait_greeting("one", &agent);
    w.push("two", 1, "");

    let body = br#"{"ref":"refs/heads/main"}"#;
    let (code, _) = agent
        .http(
            "POST",
            "/hook",
            &[("X-Hub-Signature-256", "sha256=00")],
            body,
        )
        .unwrap();
    assert_eq!(code, 401);
    let (code, _) = agent.http("POST", "/hook", &[], body).unwrap();
    assert_eq!(code, 401);
    assert!(
        !agent.logs().contains("webhook: polling now"),
        "refused hooks do no work"
    );

    let signature = format!("sha256={}", openssl_hmac("s3cret", body));
    let (code, _) = agent
        .http(
            "POST",
            "/hook",
            &[("X-Hub-Signature-256", &signature)],
            body,
        )
        .unwrap();
    assert_eq!(code, 202);
    w.wait_greeting("two", &agent);
}

#[test]
fn drift_report_mode_reports_and_changes_nothing() {
    let w = World::new("agent-report");
    w.push("one", 2, "");
    let agent = w.agent(&["--drift", "report"]);
    w.wait_greeting("one", &agent);
    until(&agent, "deployment applied", || w.replicas() == "2");
    w.scale(4);
    until(&agent, "a DriftDetected event", || {
        w.events().contains("DriftDetected")
    });
    assert!(
        w.events().contains("not corrected: --drift=report"),
        "{}",
        w.events()
    );
    assert_eq!(w.replicas(), "4", "report mode leaves the drift in place");
}

#[test]
fn git_outage_and_restart_with_git_down_keep_enforcing_the_cache() {
    let mut w = World::new("agent-outage");
    let v1 = w.push("one", 2, "");
    let mut agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "deployment applied", || w.replicas() == "2");

    w.server.stop();
    until(&agent, "the outage noticed", || {
        agent.logs().contains("source unreachable")
    });
    w.scale(6);
    until(&agent, "drift corrected during the outage", || {
        w.replicas() == "2"
    });
    until(&agent, "outage recorded in the status", || {
        w.status()["sourceUnreachableSince"].is_string()
    });

    agent.kill();
    let before = agent.logs().len();
    agent.restart(&[]);
    agent.wait_ready(WAIT);
    let since_restart = agent.logs()[before..].to_string();
    assert!(
        since_restart.contains("loaded the applied revision from the cache"),
        "{since_restart}"
    );
    assert!(since_restart.contains(&v1));
    w.scale(7);
    until(
        &agent,
        "drift corrected after a restart with Git down",
        || w.replicas() == "2",
    );
    w.server.restart();
}

#[test]
fn a_bad_revision_is_rejected_and_the_previous_one_stays_enforced() {
    let w = World::new("agent-reject");
    let v1 = w.push("one", 2, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    w.repo.write(
        "app/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-system\n",
    );
    w.repo.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: two\n",
    );
    let bad = w.repo.commit("out of scope");
    w.repo.push();
    until(&agent, "status rejected", || {
        w.status()["result"] == "rejected"
    });
    let status = w.status();
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("ConfigMap kube-system/elsewhere"),
        "{status}"
    );
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(status["desired"], bad.as_str());
    assert_eq!(
        w.greeting().as_deref(),
        Some("one"),
        "nothing of the bad revision was written"
    );
    assert!(w.events().contains("Rejected"));
    w.scale(3);
    until(&agent, "the previous revision is still enforced", || {
        w.replicas() == "2"
    });
}

#[test]
fn the_suspend_annotation_stops_every_write_until_removed() {
    let w = World::new("agent-suspend");
    w.push("one", 2, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "deployment applied", || w.replicas() == "2");
    kubectl(&[
        "annotate",
        "configmap",
        "hawser",
        "-n",
        &w.ns.name,
        "hawser.dev/suspend=true",
    ]);
    w.scale(5);
    w.push("two", 2, "");
    until(&agent, "the new revision held back", || {
        w.status()["result"] == "suspended"
    });
    until(&agent, "drift reported, not corrected", || {
        w.events().contains("not corrected: suspended")
    });
    assert_eq!(w.replicas(), "5");
    assert_eq!(w.greeting().as_deref(), Some("one"));
    let (_, metrics) = agent.http("GET", "/metrics", &[], b"").unwrap();
    assert!(metrics.contains("hawser_suspended 1"), "{metrics}");

    kubectl(&[
        "annotate",
        "configmap",
        "hawser",
        "-n",
        &w.ns.name,
        "hawser.dev/suspend-",
    ]);
    w.wait_greeting("two", &agent);
    until(&agent, "drift corrected after resuming", || {
        w.replicas() == "2"
    });
}

#[test]
fn an_unhealthy_revision_is_reported_and_rolled_back() {
    let w = World::new("agent-unhealthy");
    let v1 = w.push("one", 1, "");
    let agent = w.agent(&["--health-timeout", "4s", "--rollback-on-unhealthy"]);
    w.wait_greeting("one", &agent);
    until(&agent, "v1 good", || {
        w.cache_state()["good"]["revision"] == v1.as_str()
    });
    // No node matches: the pod stays Pending and the Deployment never becomes available.
    let v2 = w.push(
        "two",
        1,
        "      nodeSelector: {hawser.test/no-such-node: \"true\"}\n",
    );
    until(&agent, "rolled back", || {
        agent
            .logs()
            .contains("rolling back to the last good revision")
    });
    until(&agent, "v1 enforced again", || {
        w.greeting().as_deref() == Some("one")
    });
    until(
        &agent,
        "the unhealthy revision recorded as rejected",
        || w.cache_state()["rejected"]["revision"] == v2.as_str(),
    );
    let state = w.cache_state();
    assert_eq!(state["good"]["revision"], v1.as_str(), "{state}");
    assert!(
        w.events().contains("Unhealthy") && w.events().contains("RolledBack"),
        "{}",
        w.events()
    );
    let node_selector = get_field(
        "deployment",
        &w.ns.name,
        "web",
        "{.spec.template.spec.nodeSelector}",
    );
    assert_eq!(
        node_selector.as_deref(),
        Some(""),
        "the bad pod spec is gone"
    );
}

#[test]
fn sigterm_exits_zero_quickly_with_the_state_persisted() {
    let w = World::new("agent-term");
    let v1 = w.push("one", 1, "");
    let mut agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "v1 recorded", || {
        w.cache_state()["applied"]["revision"] == v1.as_str()
    });
    let (code, took) = agent.terminate();
    assert_eq!(code, Some(0), "{}", agent.logs());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(w.cache_state()["applied"]["revision"], v1.as_str());
}

#[test]
fn a_crash_while_caching_leaves_a_consistent_cache() {
    let w = World::new("agent-crash");
    w.push("one", 1, "");
    for failpoint in ["store:after-tree", "store:before-rename"] {
        let mut crashing = w.agent(&["--failpoint", failpoint]);
        let status = crashing.wait_exit(WAIT);
        assert!(!status.success(), "the failpoint aborted the process");
        assert!(w.greeting().is_none(), "nothing applied before the crash");
    }
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    agent.wait_ready(WAIT);
    let snapshots: Vec<_> = std::fs::read_dir(w.dir.path().join("cache/snapshots"))
        .unwrap()
        .collect();
    assert_eq!(snapshots.len(), 1, "one complete entry");
}

#[test]
fn commit_statuses_go_pending_then_success_or_failure_and_a_restart_reposts_nothing() {
    let w = World::new("agent-status");
    let forge = forge_recorder::Server::start(vec![]);
    let token_file = w.dir.path().join("forge-token");
    let token = "ghp_hawserTestToken0123456789";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let v1 = w.push("one", 1, "");
    let extra = [
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
    let mut agent = w.agent(&extra);
    let posted = |commit: &str, state: &str| {
        forge
            .requests()
            .into_iter()
            .find(|r| r.target.ends_with(commit) && r.body["state"] == state)
    };
    until(&agent, "success posted for v1", || {
        posted(&v1, "success").is_some()
    });
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "pending then success: {requests:#?}");
    let pending = &requests[0];
    assert_eq!(pending.method, "POST");
    assert_eq!(pending.target, format!("/repos/acme/fleet/statuses/{v1}"));
    assert_eq!(
        pending.header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(pending.body["state"], "pending");
    assert_eq!(pending.body["context"], "hawser/edge-1");
    assert_eq!(pending.body["description"], "applying 2 objects");
    let success = &requests[1];
    let description = success.body["description"].as_str().unwrap();
    assert!(
        description.starts_with("applied 2 objects (2 changed, 0 pruned), healthy in"),
        "{description}"
    );

    let bad = w.push_out_of_scope();
    until(&agent, "failure posted for the bad revision", || {
        posted(&bad, "failure").is_some()
    });
    let failure = posted(&bad, "failure").unwrap();
    let description = failure.body["description"].as_str().unwrap();
    assert!(
        description.starts_with("rejected: ") && description.contains("kube-system"),
        "{description}"
    );
    assert!(description.chars().count() <= 140);
    assert!(
        posted(&bad, "pending").is_none(),
        "nothing was applied, so nothing was pending"
    );

    agent.kill();
    let before = forge.requests().len();
    let logs_before = agent.logs().len();
    agent.restart(&[]);
    until(&agent, "a poll after the restart", || {
        agent.logs()[logs_before..]
            .contains("revision was rejected; waiting for the source to move")
    });
    assert_eq!(forge.requests().len(), before, "a restart reposts nothing");

    let everything = format!("{}{}{}", agent.logs(), w.events(), w.status());
    assert!(!everything.contains(token), "the token leaked");
}

/// HMAC-SHA256 in hex, computed by openssl: an oracle independent of hawser's code.
fn openssl_hmac(key: &str, message: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_tampered_cache_entry_is_discarded_never_applied() {
    let mut w = World::new("agent-tamper");
    let v1 = w.push("one", 1, "");
    let mut agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    until(&agent, "v1 recorded", || {
        w.cache_state()["applied"]["revision"] == v1.as_str()
    });
    agent.kill();

    // Someone edits the cached manifests on disk while the agent is down.
    let cached = w
        .dir
        .path()
        .join("cache/snapshots")
        .join(&v1)
        .join("tree/app/config.yaml");
    let text = std::fs::read_to_string(&cached).unwrap();
    std::fs::write(&cached, text.replace("greeting: one", "greeting: evil")).unwrap();
    w.server.stop();
    let before = agent.logs().len();
    agent.restart(&[]);
    until(&agent, "the tampered entry refused", || {
        agent.logs()[before..].contains("the cached applied revision is corrupt")
    });
    let (code, _) = agent.http("GET", "/readyz", &[], b"").unwrap();
    assert_eq!(code, 503, "nothing verified to enforce: not ready");
    assert_eq!(
        w.greeting().as_deref(),
        Some("one"),
        "the tampered file was never applied"
    );

    // With Git back, the revision is fetched and verified again.
    w.server.restart();
    agent.wait_ready(WAIT);
    assert_eq!(w.greeting().as_deref(), Some("one"));
}
