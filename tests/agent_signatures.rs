//! `hawser run --verify-commits` end to end: a commit signed with an SSH key
//! (`git commit -S`, `gpg.format=ssh`) is applied and its signer reported; an
//! unsigned commit pushed after it is refused and leaves the cluster untouched; a
//! restart with Git down re-verifies the cached revision; and once its key is no
//! longer trusted, the cached revision is discarded instead of enforced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::process::Command;

use support::run;
use support::world::{WAIT, World, until};

fn signed_commit(w: &World, key: &std::path::Path, message: &str) -> String {
    w.repo.git(&["add", "--all"]);
    let mut cmd = w.repo.command();
    cmd.args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("user.signingkey={}", key.display()))
        .args(["commit", "--quiet", "-S", "-m", message]);
    run(&mut cmd);
    w.repo.push();
    w.repo.head()
}

fn write_app(w: &World, greeting: &str) {
    w.repo.write(
        "app/config.yaml",
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"),
    );
}

#[test]
fn only_signed_commits_are_applied_and_the_cache_is_re_verified() {
    let mut w = World::new("agent-signed");
    let key = w.dir.path().join("signing");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
        .arg(&key));
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = w.dir.path().join("allowed_signers");
    fs::write(
        &signers,
        format!("ops@example.com namespaces=\"git\" {public}"),
    )
    .unwrap();
    let signers_arg = signers.display().to_string();

    write_app(&w, "one");
    let v1 = signed_commit(&w, &key, "one");
    let mut agent = w.agent(&["--verify-commits", "--trusted-keys", &signers_arg]);
    w.wait_greeting("one", &agent);
    until(&agent, "the signer in the status", || {
        w.status()["message"]
            .as_str()
            .is_some_and(|m| m.contains("commit signed by ops@example.com (ssh key SHA256:"))
    });

    // An unsigned commit: refused, never retried, nothing of it written.
    write_app(&w, "two");
    let v2 = w.repo.commit("two, unsigned");
    w.repo.push();
    until(&agent, "the unsigned commit rejected", || {
        w.status()["result"] == "rejected"
    });
    let status = w.status();
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("commit {v2} is unsigned")),
        "{status}"
    );
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(w.greeting().as_deref(), Some("one"));
    assert_eq!(w.cache_state()["rejected"]["revision"], v2.as_str());
    assert!(
        !w.dir.path().join(format!("cache/snapshots/{v2}")).exists(),
        "an unverified revision never reaches the cache"
    );

    // Restart with Git down: the cached revision is verified again and enforced.
    w.server.stop();
    agent.kill();
    let before = agent.logs().len();
    agent.restart(&[]);
    agent.wait_ready(WAIT);
    let logs = agent.logs()[before..].to_string();
    assert!(logs.contains("cached revision re-verified"), "{logs}");
    assert!(
        logs.contains("loaded the applied revision from the cache"),
        "{logs}"
    );

    // The key is no longer trusted: the cached revision is discarded, not enforced.
    agent.kill();
    let other = w.dir.path().join("other");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
        .arg(&other));
    let other_public = fs::read_to_string(other.with_extension("pub")).unwrap();
    fs::write(
        &signers,
        format!("ops@example.com namespaces=\"git\" {other_public}"),
    )
    .unwrap();
    let before = agent.logs().len();
    agent.restart(&[]);
    until(&agent, "the cached revision discarded", || {
        agent.logs()[before..].contains("cached revision no longer verifies; discarding it")
    });
    // The log line comes first; the state file is saved right after it.
    until(&agent, "the applied record dropped", || {
        w.cache_state()["applied"].is_null()
    });
    assert!(!w.dir.path().join(format!("cache/snapshots/{v1}")).exists());
    w.server.restart();
}
