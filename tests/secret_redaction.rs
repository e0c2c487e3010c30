//! Secret values never travel in error text (issue #21, finding 4), against the real
//! API server: each malformed Secret shape the probe found is pushed to Git, the real
//! `hawser run` rejects it, and the value is looked for everywhere the reason goes:
//! the JSON log, the inventory parent's status, `hawser status -o json`, Events, the
//! commit status posted to the forge, and `hawser diff`'s stderr. The field path and
//! the class of the problem must still be there, and the revision must be rejected
//! (not retried as transient).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forge_recorder/mod.rs"]
mod forge_recorder;
mod support;

use support::cluster::hawser;
use support::world::{World, until};

struct Shape {
    file: &'static str,
    /// What the error must still say.
    kept: &'static str,
    /// What must appear nowhere.
    secret: &'static str,
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            file: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\nstringData: \"password=hunter2-string\"\n",
            kept: "stringData: expected a map",
            secret: "hunter2-string",
        },
        Shape {
            file: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s2\nstringData:\n- password=hunter2-list\n",
            kept: "stringData: expected a map",
            secret: "hunter2-list",
        },
        Shape {
            // base64 of "hunter2-data"
            file: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s3\ndata: aHVudGVyMi1kYXRh\n",
            kept: "data: expected a map",
            secret: "aHVudGVyMi1kYXRh",
        },
        Shape {
            file: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s4\ndata:\n  k: \"!hunter2-b64\"\n",
            kept: "data: a value is not valid base64",
            secret: "hunter2-b64",
        },
        Shape {
            // base64 of "Xunter2-docker{": not JSON, its first character is quoted
            // by the server's parser.
            file: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s5\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: WHVudGVyMi1kb2NrZXJ7\n",
            kept: "data[.dockerconfigjson]: invalid value",
            secret: "'X'",
        },
    ]
}

#[test]
fn malformed_secrets_are_rejected_without_their_values_anywhere() {
    let w = World::new("secret-redact");
    let v1 = w.push("one", 1, "");
    let forge = forge_recorder::Server::start(vec![]);
    let token_file = w.dir.path().join("forge-token");
    std::fs::write(&token_file, "ghp_hawserTestToken0123456789\n").unwrap();
    let agent = w.agent(&[
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
    ]);
    w.wait_greeting("one", &agent);
    let mut checked = Vec::new();
    for shape in shapes() {
        w.repo.write("app/secret.yaml", shape.file);
        let commit = w.repo.commit(shape.secret);
        w.repo.push();
        // The cache's state is recorded before the parent's status is told: wait
        // for both.
        until(&agent, &format!("{} rejected", shape.kept), || {
            w.cache_state()["rejected"]["revision"] == commit.as_str()
                && w.status()["result"] == "rejected"
        });
        let status = w.status();
        let message = status["message"].as_str().unwrap_or_default().to_string();
        assert_eq!(status["result"], "rejected", "{status}");
        assert!(message.contains(shape.kept), "{message}");
        assert_eq!(status["applied"], v1.as_str(), "nothing was applied");
        until(&agent, "the failure posted", || {
            forge
                .requests()
                .iter()
                .any(|r| r.target.ends_with(&commit) && r.body["state"] == "failure")
        });

        // `diff` of the same tree says the same, on stderr.
        let tree = w.repo.work_dir().join("app");
        let diff = hawser(
            &[
                "diff",
                "--dir",
                tree.to_str().unwrap(),
                "--namespace",
                &w.ns.name,
            ],
            &w.kubeconfig,
        );
        assert_eq!(diff.code, 2, "{}", diff.stderr);
        assert!(diff.stderr.contains(shape.kept), "{}", diff.stderr);
        checked.push((shape, diff.stderr));
    }

    // Everywhere the reasons went, no value (and for the dockerconfigjson, not the
    // quoted character) is found.
    let shown = hawser(
        &["status", "--namespace", &w.ns.name, "-o", "json"],
        &w.kubeconfig,
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let posted: String = forge
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    let places = [
        ("log", agent.logs()),
        ("parent status", w.status().to_string()),
        ("status -o json", shown.stdout),
        ("events", w.events()),
        ("commit statuses", posted),
    ];
    for (shape, diff_stderr) in &checked {
        for (place, text) in places.iter().chain([&("diff stderr", diff_stderr.clone())]) {
            assert!(
                !text.contains(shape.secret),
                "{place} holds {:?}: {text}",
                shape.secret
            );
        }
    }
    // The values did reach the check: each reason was recorded in the log.
    let logs = agent.logs();
    for (shape, _) in &checked {
        assert!(logs.contains(shape.kept), "{}", shape.kept);
    }
}
