//! An agent whose source is an OCI artifact in the real `distribution` registry (TLS,
//! htpasswd), pushed by the real `oras` in Flux's format and signed cosign-style: it
//! applies the tag, picks up a re-pushed tag, and keeps enforcing the cached artifact
//! through a registry outage and a restart during it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "oci_support/mod.rs"]
mod oci_support;
mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_support::{Access, PASSWORD, Registry, USER};
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, kubectl, sa_kubeconfig};

const WAIT: Duration = Duration::from_secs(60);

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

/// Pushes a ConfigMap with `greeting` as a Flux artifact to `app:live`, signs it
/// with `key`, and returns the manifest digest.
fn publish(registry: &Registry, dir: &Path, greeting: &str, key: &Path) -> String {
    let name = format!("{greeting}.tar.gz");
    oci_support::tar_gz(
        dir,
        &name,
        &[(
            "config.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"
            ),
        )],
    );
    fs::write(dir.join("flux-config.json"), "{}").unwrap();
    let digest = registry.push(
        dir,
        "app:live",
        true,
        &[
            "--config",
            "flux-config.json:application/vnd.cncf.flux.config.v1+json",
            &format!("{name}:application/vnd.cncf.flux.content.v1.tar+gzip"),
        ],
    );
    oci_support::push_signature(registry, dir, "app", &digest, key, true);
    digest
}

#[test]
fn an_agent_follows_a_signed_tag_and_enforces_it_through_an_outage_and_a_restart() {
    let ns = TestNamespace::new("agent-oci");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let mut registry = Registry::start(true, Access::Htpasswd);
    let (key, public) = oci_support::p256_keys(dir.path(), "cosign");
    let v1 = publish(&registry, dir.path(), "one", &key);

    let auth = dir.path().join("basic-auth");
    fs::write(&auth, format!("{USER}:{PASSWORD}\n")).unwrap();
    let cache = dir.path().join("cache");
    let url = registry.url("app");
    let ca = registry.ca();
    let args = [
        "--source",
        &url,
        "--ref",
        "live",
        "--basic-auth-file",
        auth.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--verify-cosign-key",
        public.to_str().unwrap(),
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
    until(&agent, "v1 applied", || {
        greeting().as_deref() == Some("one")
    });
    let read_state = || -> serde_json::Value {
        fs::read_to_string(cache.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    until(&agent, "v1 recorded as applied", || {
        read_state()["applied"]["revision"] == format!("live@{v1}").as_str()
    });

    // The tag is pushed again: the agent picks up the new digest.
    let v2 = publish(&registry, dir.path(), "two", &key);
    until(&agent, "v2 applied", || {
        greeting().as_deref() == Some("two")
    });
    until(&agent, "v2 recorded as applied", || {
        read_state()["applied"]["revision"] == format!("live@{v2}").as_str()
    });

    // The registry goes away: drift is still corrected from the cache.
    registry.stop();
    kubectl(&["delete", "configmap", "cfg", "-n", &ns.name]);
    until(
        &agent,
        "the deleted ConfigMap restored during the outage",
        || greeting().as_deref() == Some("two"),
    );

    // A restart while the registry is still down enforces the cached artifact too.
    agent.kill();
    kubectl(&["delete", "configmap", "cfg", "-n", &ns.name]);
    agent.restart(&[]);
    until(&agent, "the ConfigMap restored after the restart", || {
        greeting().as_deref() == Some("two")
    });

    // The registry is back with an unsigned re-push: refused, v2 stays.
    registry.restart();
    oci_support::tar_gz(
        dir.path(),
        "unsigned.tar.gz",
        &[(
            "config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: unsigned\n",
        )],
    );
    registry.push(
        dir.path(),
        "app:live",
        true,
        &["unsigned.tar.gz:application/vnd.cncf.flux.content.v1.tar+gzip"],
    );
    until(&agent, "the unsigned artifact refused", || {
        agent
            .logs()
            .contains("is not signed: no cosign signature at tag")
    });
    assert_eq!(greeting().as_deref(), Some("two"));
}
