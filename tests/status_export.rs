//! Status reports across an air gap, end to end: an agent without any forge
//! configuration (the air-gapped site) records its outcomes; `hawser status --export`
//! writes them signed; `hawser status post` at the "connected side" checks the
//! signature and posts them to a recording GitHub-like server, which must receive
//! exactly what a connected agent posts (tests/agent.rs checks that one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forge_recorder/mod.rs"]
mod forge_recorder;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::cluster::hawser;
use support::run;
use support::world::{World, until};

/// Whether the agent recorded `state` for `commit` in the parent's status.
fn recorded(w: &World, commit: &str, state: &str) -> bool {
    w.status()["outcomes"].as_array().is_some_and(|o| {
        o.iter()
            .any(|r| r["commit"] == commit && r["state"] == state)
    })
}

fn sig(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", file.display()))
}

/// `ssh-keygen -Y sign` as an operator would run it: the oracle for signatures.
fn ssh_sign(key: &Path, namespace: &str, file: &Path) {
    let _ = std::fs::remove_file(sig(file));
    run(Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(file));
}

#[test]
fn an_exported_report_posted_at_the_connected_side_gives_the_statuses_a_connected_agent_posts() {
    let w = World::new("status-export");
    for name in ["site-key", "stranger-key"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(w.dir.path().join(name)));
    }
    let public = std::fs::read_to_string(w.dir.path().join("site-key.pub")).unwrap();
    let allowed = w.dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("site-7@example.com namespaces=\"hawser-status\" {public}"),
    )
    .unwrap();

    // The air-gapped site: no forge flags at all.
    let v1 = w.push("one", 1, "");
    let agent = w.agent(&["--cluster-name", "site-7"]);
    until(&agent, "success recorded for v1", || {
        recorded(&w, &v1, "success")
    });
    let bad = w.push_out_of_scope();
    until(&agent, "failure recorded for the bad revision", || {
        recorded(&w, &bad, "failure")
    });
    assert_eq!(w.status()["cluster"], "site-7");

    let report = w.dir.path().join("report.json");
    let key = w.dir.path().join("site-key");
    let out = hawser(
        &[
            "status",
            "--namespace",
            &w.ns.name,
            "--export",
            report.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
        ],
        &w.kubeconfig,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read(&report).unwrap();
    let parsed: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(parsed["kind"], "hawser-status-report");
    assert_eq!(parsed["cluster"], "site-7");
    assert_eq!(parsed["context"], "hawser/site-7");
    // ssh-keygen itself accepts the signature: the format is real sshsig.
    let check = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "hawser-status",
            "-I",
            "site-7@example.com",
            "-f",
        ])
        .arg(&allowed)
        .arg("-s")
        .arg(sig(&report))
        .stdin(std::fs::File::open(&report).unwrap())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // The connected side.
    let forge = forge_recorder::Server::start(vec![]);
    let token = "ghp_hawserTestToken0123456789";
    let token_file = w.dir.path().join("forge-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let post = |file: &Path| {
        hawser(
            &[
                "status",
                "post",
                "--file",
                file.to_str().unwrap(),
                "--trusted-keys",
                allowed.to_str().unwrap(),
                "--status-provider",
                "github",
                "--status-api-url",
                &forge.url,
                "--status-repo",
                "acme/fleet",
                "--status-token-file",
                token_file.to_str().unwrap(),
            ],
            &w.kubeconfig,
        )
    };
    let refused = |file: &Path, why: &str| {
        let out = post(file);
        assert_eq!(out.code, 2, "{why}: {out:?}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
        assert!(forge.requests().is_empty(), "{why}: nothing posted");
        out.stderr
    };

    // A flipped byte: refused, nothing posted.
    let tampered = w.dir.path().join("tampered.json");
    let mut bytes = text.clone();
    let at = bytes.iter().position(|&b| b == b'1').unwrap();
    bytes[at] = b'2';
    std::fs::write(&tampered, &bytes).unwrap();
    std::fs::copy(sig(&report), sig(&tampered)).unwrap();
    let err = refused(&tampered, "a changed report");
    assert!(err.contains("does not match"), "{err}");
    // Signed by a key the connected side does not trust.
    let stranger = w.dir.path().join("stranger.json");
    std::fs::write(&stranger, &text).unwrap();
    ssh_sign(
        &w.dir.path().join("stranger-key"),
        "hawser-status",
        &stranger,
    );
    let err = refused(&stranger, "an untrusted signer");
    assert!(err.contains("not a trusted key for hawser-status"), "{err}");
    // The trusted key, but a signature made for bundles, not status reports.
    let bundle_ns = w.dir.path().join("bundle-ns.json");
    std::fs::write(&bundle_ns, &text).unwrap();
    ssh_sign(&key, "hawser-bundle", &bundle_ns);
    let err = refused(&bundle_ns, "another namespace");
    assert!(err.contains("namespace \"hawser-bundle\""), "{err}");
    // No signature at all.
    let unsigned = w.dir.path().join("unsigned.json");
    std::fs::write(&unsigned, &text).unwrap();
    let err = refused(&unsigned, "an unsigned report");
    assert!(err.contains("unsigned"), "{err}");

    // A report is posted only under its own cluster's name.
    let out = hawser(
        &[
            "status",
            "post",
            "--file",
            report.to_str().unwrap(),
            "--trusted-keys",
            allowed.to_str().unwrap(),
            "--status-provider",
            "github",
            "--status-api-url",
            &forge.url,
            "--status-repo",
            "acme/fleet",
            "--status-token-file",
            token_file.to_str().unwrap(),
            "--cluster-name",
            "site-8",
        ],
        &w.kubeconfig,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("not --cluster-name \"site-8\""),
        "{out:?}"
    );
    assert!(forge.requests().is_empty());

    let out = post(&report);
    assert_eq!(out.code, 0, "{out:?}");
    let summary: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary, serde_json::json!({"posted": 3, "skipped": 0}));

    // Exactly what the connected agent in tests/agent.rs posts, in order.
    let requests = forge.requests();
    let seen: Vec<(String, String, String, String)> = requests
        .iter()
        .map(|r| {
            (
                r.target.clone(),
                r.body["state"].as_str().unwrap().to_string(),
                r.body["context"].as_str().unwrap().to_string(),
                r.body["description"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 3, "pending, success, failure: {seen:#?}");
    let target = |c: &str| format!("/repos/acme/fleet/statuses/{c}");
    assert_eq!(
        seen[0],
        (
            target(&v1),
            "pending".into(),
            "hawser/site-7".into(),
            "applying 2 objects".into()
        )
    );
    assert_eq!((&seen[1].0, seen[1].1.as_str()), (&target(&v1), "success"));
    assert_eq!(seen[1].2, "hawser/site-7");
    assert!(
        seen[1]
            .3
            .starts_with("applied 2 objects (2 changed, 0 pruned), healthy in"),
        "{seen:?}"
    );
    assert_eq!((&seen[2].0, seen[2].1.as_str()), (&target(&bad), "failure"));
    assert_eq!(seen[2].2, "hawser/site-7");
    assert!(
        seen[2].3.starts_with("rejected: ") && seen[2].3.contains("kube-system"),
        "{seen:?}"
    );
    assert!(seen[2].3.chars().count() <= 140);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("Authorization"),
            Some(format!("Bearer {token}").as_str())
        );
    }
}
