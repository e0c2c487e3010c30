//! An air-gapped agent: its only source is an inbox directory of git bundles made by
//! the real `git bundle create` and signed by the real `ssh-keygen -Y sign`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bundle_support/mod.rs"]
mod bundle_support;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bundle_support::{Keys, git_bundle, sig};
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, kubectl, sa_kubeconfig};
use support::{GitServer, GitServerOptions, Repo};

const WAIT: Duration = Duration::from_secs(40);

fn until(agent: &AgentProcess, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; agent log:\n{}",
            agent.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_app(repo: &Repo, greeting: &str) -> String {
    repo.write("app/config.yaml", format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"));
    repo.write(
        "app/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    repo.commit(greeting)
}

/// Bundles `main` into the inbox as `name`, signature last (as a careful copy would).
fn deliver(repo: &Repo, keys: &Keys, staging: &Path, inbox: &Path, name: &str) {
    let file = staging.join(name);
    git_bundle(repo, &file, &["main"]);
    keys.sign("trusted", &file);
    std::fs::copy(&file, inbox.join(name)).unwrap();
    std::fs::copy(sig(&file), sig(&inbox.join(name))).unwrap();
}

#[test]
fn an_inbox_of_signed_bundles_drives_the_agent_and_survives_a_restart() {
    let ns = TestNamespace::new("agent-bundle");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    // The server only hosts the work repository; the agent never talks to it.
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let keys = Keys::new();
    let (inbox, staging) = (dir.path().join("inbox"), dir.path().join("staging"));
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(&staging).unwrap();

    let v1 = write_app(&repo, "one");
    // A bundle whose signature has not arrived yet is left alone.
    git_bundle(&repo, &inbox.join("a-v1.bundle"), &["main"]);
    let cache = dir.path().join("cache");
    let allowed = keys.allowed();
    let args = [
        "--source",
        inbox.to_str().unwrap(),
        "--trusted-keys",
        allowed.to_str().unwrap(),
        "--namespace",
        &ns.name,
        "--interval",
        "1s",
        "--drift-interval",
        "2s",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let log = dir.path().join("agent.log");
    let mut agent = AgentProcess::start(&args, &kubeconfig, &log);
    let greeting = || get_field("configmap", &ns.name, "cfg", "{.data.greeting}");
    until(&agent, "the unsigned bundle to be noticed", || {
        agent.logs().contains("source unreachable")
    });
    assert!(greeting().is_none(), "an unsigned bundle is not applied");

    keys.sign("trusted", &inbox.join("a-v1.bundle"));
    until(&agent, "v1 applied", || {
        greeting().as_deref() == Some("one")
    });

    // A bundle signed by a key that is not trusted is refused.
    let v2 = write_app(&repo, "two");
    let untrusted = staging.join("b-v2.bundle");
    git_bundle(&repo, &untrusted, &["main"]);
    keys.sign("other", &untrusted);
    std::fs::copy(&untrusted, inbox.join("b-v2.bundle")).unwrap();
    std::fs::copy(sig(&untrusted), sig(&inbox.join("b-v2.bundle"))).unwrap();
    until(&agent, "the untrusted signature refused", || {
        agent
            .logs()
            .contains("which is not a trusted key for hawser-bundle")
    });
    assert_eq!(greeting().as_deref(), Some("one"));

    // Properly signed, the newer bundle wins.
    deliver(&repo, &keys, &staging, &inbox, "b-v2.bundle");
    until(&agent, "v2 applied", || {
        greeting().as_deref() == Some("two")
    });
    // The object is visible before the apply (and its health wait) ends and the
    // state is saved.
    let read_state = || -> serde_json::Value {
        std::fs::read_to_string(cache.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    until(&agent, "v2 recorded as applied", || {
        read_state()["applied"]["revision"] == v2.as_str()
    });
    let state = read_state();
    assert!(
        state["applied"]["committer_time"].is_i64(),
        "the commit time is kept for the downgrade check: {state}"
    );

    // The inbox is emptied and only the older bundle comes back: it is refused as a
    // downgrade, and the agent restarted with it keeps enforcing v2 from its cache.
    agent.kill();
    for entry in std::fs::read_dir(&inbox).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    repo.git(&["checkout", "-q", "-B", "old", &v1]);
    let file = staging.join("c-old.bundle");
    git_bundle(&repo, &file, &["old"]);
    keys.sign("trusted", &file);
    let before = agent.logs().len();
    agent.restart(&["--ref", "old"]);
    agent.wait_ready(WAIT);
    assert!(agent.logs()[before..].contains("loaded the applied revision from the cache"));
    std::fs::copy(&file, inbox.join("c-old.bundle")).unwrap();
    std::fs::copy(sig(&file), sig(&inbox.join("c-old.bundle"))).unwrap();
    until(&agent, "the downgrade refused", || {
        agent.logs()[before..].contains("(pass --allow-downgrade to accept it)")
    });
    assert_eq!(greeting().as_deref(), Some("two"));
    kubectl(&["scale", "deployment", "web", "-n", &ns.name, "--replicas=3"]);
    until(&agent, "drift corrected from the cache", || {
        get_field("deployment", &ns.name, "web", "{.spec.replicas}").as_deref() == Some("1")
    });
}
