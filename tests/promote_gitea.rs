//! Canary-gated promotion end to end (issue 18): on one control plane, agents in
//! their own namespaces pull one repository from a real Gitea; canaries post their
//! `hawser/<cluster>` statuses there, followers read them back through Gitea's API
//! and apply a commit only once their canaries reported it healthy.
//!
//! Nothing is simulated: pushes go through the git CLI, every status is Gitea's own
//! record (its ids give the order in which they were posted), every object is read
//! back from the API server. Air-gapped followers read signed report files written
//! by `hawser status --export` at the canary instead.
//!
//! Needs the test control plane (`eval "$(tests/env/up)"`) and a Gitea binary in
//! `HAWSER_TEST_GITEA` (`tests/gitea/build`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gitea/mod.rs"]
mod gitea;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gitea::Gitea;
use serde_json::{Value, json};
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, hawser, sa_kubeconfig};
use support::{git_command, run};

const WAIT: Duration = Duration::from_secs(90);

/// One Gitea repository, a work tree pushing to it, and a temp dir.
struct Fleet {
    gitea: Gitea,
    repo: String,
    work: tempfile::TempDir,
    dir: tempfile::TempDir,
}

/// One agent's namespace, kubeconfig and process.
struct Site {
    name: String,
    ns: TestNamespace,
    kubeconfig: PathBuf,
    agent: AgentProcess,
}

impl Fleet {
    fn new() -> Fleet {
        let gitea = gitea::start(&gitea::bin());
        let repo = "fleet".to_string();
        gitea.post(
            "/user/repos",
            json!({ "name": repo, "private": false, "auto_init": false }),
        );
        let work = tempfile::tempdir().unwrap();
        let fleet = Fleet {
            gitea,
            repo,
            work,
            dir: tempfile::tempdir().unwrap(),
        };
        fleet.git(&["init", "--quiet", "--initial-branch=main"]);
        let remote = fleet.gitea.repo_url_with_token(&fleet.repo);
        fleet.git(&["remote", "add", "origin", &remote]);
        std::fs::write(
            fleet.dir.path().join("token"),
            format!("{}\n", fleet.gitea.token),
        )
        .unwrap();
        fleet
    }

    fn git(&self, args: &[&str]) -> String {
        run(git_command(self.work.path()).args(args))
    }

    /// Replaces the tree with `files`, commits and pushes; returns the commit id.
    fn push(&self, message: &str, files: &[(&str, String)]) -> String {
        let app = self.work.path().join("app");
        let _ = std::fs::remove_dir_all(&app);
        std::fs::create_dir_all(&app).unwrap();
        for (name, content) in files {
            std::fs::write(app.join(name), content).unwrap();
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn config_map(greeting: &str) -> (&'static str, String) {
        (
            "config.yaml",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"
            ),
        )
    }

    /// Starts `hawser run` for cluster `name` in a namespace of its own, pulling the
    /// fleet's repository; `forge` adds the Gitea status flags.
    fn site(&self, name: &str, forge: bool, extra: &[&str]) -> Site {
        let ns = TestNamespace::new(&format!("promote-{name}"));
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, &dir);
        let source = self.gitea.repo_url(&self.repo);
        let cache = dir.join("cache").display().to_string();
        let token = self.dir.path().join("token").display().to_string();
        let mut args: Vec<&str> = vec![
            "--source",
            &source,
            "--ref",
            "main",
            "--path",
            "app",
            "--namespace",
            &ns.name,
            "--interval",
            "1s",
            "--drift-interval",
            "2s",
            "--health-timeout",
            "30s",
            "--cache-dir",
            &cache,
            "--cluster-name",
            name,
        ];
        if forge {
            args.extend([
                "--status-provider",
                "gitea",
                "--status-api-url",
                &self.gitea.url,
                "--status-token-file",
                &token,
            ]);
        }
        args.extend_from_slice(extra);
        let agent = AgentProcess::start(&args, &kubeconfig, &dir.join("agent.log"));
        Site {
            name: name.to_string(),
            ns,
            kubeconfig,
            agent,
        }
    }

    /// Every status on `sha` under `hawser/<cluster>`, in the order Gitea stored them.
    fn statuses(&self, sha: &str, cluster: &str) -> Vec<Value> {
        let context = format!("hawser/{cluster}");
        self.gitea
            .statuses(&self.repo, sha)
            .into_iter()
            .filter(|s| s["context"] == context.as_str())
            .collect()
    }

    /// The newest status of `hawser/<cluster>` on `sha`, as `(state, description)`.
    fn latest(&self, sha: &str, cluster: &str) -> Option<(String, String)> {
        self.statuses(sha, cluster).last().map(|s| {
            (
                s["status"].as_str().unwrap().to_string(),
                s["description"].as_str().unwrap().to_string(),
            )
        })
    }
}

impl Site {
    fn greeting(&self) -> Option<String> {
        get_field("configmap", &self.ns.name, "cfg", "{.data.greeting}")
    }
}

/// Polls `check` until it holds; on timeout the panic carries each agent's log tail.
fn until(sites: &[&Site], what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        if Instant::now() > deadline {
            let mut tails = String::new();
            for site in sites {
                let logs = site.agent.logs();
                let lines: Vec<&str> = logs.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                tails.push_str(&format!("\n--- {} ---\n{tail}", site.name));
            }
            panic!("timed out after {WAIT:?} waiting for {what}; log tails:{tails}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn id(status: &Value) -> i64 {
    status["id"].as_i64().unwrap()
}

fn state_is(fleet: &Fleet, sha: &str, cluster: &str, state: &str) -> bool {
    fleet.latest(sha, cluster).is_some_and(|(s, _)| s == state)
}

/// How many polls the follower logged that left a given-up revision alone.
fn left_alone(site: &Site) -> usize {
    site.agent
        .logs()
        .matches("revision was rejected; waiting for the source to move")
        .count()
}

#[test]
fn a_follower_applies_only_what_both_canaries_reported_healthy() {
    let fleet = Fleet::new();
    let v1 = fleet.push("one", &[Fleet::config_map("one")]);

    // The follower starts first: nothing is applied while the canaries are silent.
    let follower = fleet.site(
        "follower",
        true,
        &["--promote-after", "hawser/canary-1,hawser/canary-2"],
    );
    until(&[&follower], "the follower waiting on v1", || {
        fleet.latest(&v1, "follower")
            == Some((
                "pending".into(),
                "waiting for hawser/canary-1 (no status yet), hawser/canary-2 (no status yet)"
                    .into(),
            ))
    });
    assert_eq!(follower.greeting(), None, "nothing applied while waiting");

    let canary1 = fleet.site("canary-1", true, &[]);
    let canary2 = fleet.site("canary-2", true, &[]);
    let all = [&follower, &canary1, &canary2];
    until(&all, "the follower's success on v1", || {
        state_is(&fleet, &v1, "follower", "success")
    });
    assert_eq!(follower.greeting().as_deref(), Some("one"));
    // Gitea's order of records: both canaries' successes came before the follower
    // started applying.
    let applying = fleet
        .statuses(&v1, "follower")
        .into_iter()
        .find(|s| s["description"] == "applying 1 object")
        .expect("the follower posted applying");
    for canary in ["canary-1", "canary-2"] {
        let success = fleet
            .statuses(&v1, canary)
            .into_iter()
            .find(|s| s["status"] == "success")
            .unwrap();
        assert!(
            id(&success) < id(&applying),
            "{canary}'s success {success:#} before the follower's {applying:#}"
        );
    }
    // Waiting states were posted once each, not once per poll.
    let waits: Vec<String> = fleet
        .statuses(&v1, "follower")
        .iter()
        .filter(|s| s["status"] == "pending")
        .map(|s| s["description"].as_str().unwrap().to_string())
        .collect();
    let mut unique = waits.clone();
    unique.dedup();
    assert_eq!(waits, unique, "no repeated status");

    // A commit canary-2 cannot apply: an object in canary-1's namespace is inside
    // canary-1's scope and outside canary-2's.
    let pinned = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pinned\n  namespace: {}\n",
        canary1.ns.name
    );
    let v2 = fleet.push("two", &[Fleet::config_map("two"), ("pinned.yaml", pinned)]);
    until(&all, "the follower's failure on v2", || {
        state_is(&fleet, &v2, "follower", "failure")
    });
    let (_, why) = fleet.latest(&v2, "follower").unwrap();
    assert!(
        why.starts_with("canary hawser/canary-2 failed: rejected: "),
        "{why}"
    );
    assert_eq!(fleet.latest(&v2, "canary-2").unwrap().0, "failure");
    let events = support::cluster::kubectl(&[
        "get",
        "events",
        "-n",
        &follower.ns.name,
        "--field-selector",
        "reason=NotPromoted",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(&format!("{v2}: canary hawser/canary-2 failed: rejected: ")),
        "{events}"
    );
    until(&all, "canary-1's success on v2", || {
        state_is(&fleet, &v2, "canary-1", "success")
    });
    assert_eq!(canary1.greeting().as_deref(), Some("two"));
    // The follower never applies it: polls go by, v1 stays enforced, no "applying".
    let before = left_alone(&follower);
    until(&[&follower], "two more follower polls", || {
        left_alone(&follower) >= before + 2
    });
    assert_eq!(follower.greeting().as_deref(), Some("one"));
    assert!(
        fleet
            .statuses(&v2, "follower")
            .iter()
            .all(|s| s["description"] != "applying 1 object"),
        "the follower never started applying v2"
    );
    // And it keeps enforcing v1: a hand edit is corrected by the drift ticks.
    support::cluster::kubectl(&[
        "patch",
        "configmap",
        "cfg",
        "-n",
        &follower.ns.name,
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"edited"}}"#,
    ]);
    until(
        &[&follower],
        "the follower correcting drift back to v1",
        || follower.greeting().as_deref() == Some("one"),
    );
    // The token it reads with appears in no log line.
    let token = &fleet.gitea.token;
    assert!(token.len() >= 20, "a real token");
    for site in all {
        assert!(
            !site.agent.logs().contains(token.as_str()),
            "token in {}'s log",
            site.name
        );
    }
}

#[test]
fn soak_and_timeout_bound_the_wait() {
    let fleet = Fleet::new();
    let v1 = fleet.push("one", &[Fleet::config_map("one")]);
    let canary = fleet.site("canary-1", true, &[]);
    let soaking = fleet.site(
        "soaking",
        true,
        &["--promote-after", "hawser/canary-1", "--promote-soak", "5s"],
    );
    let impatient = fleet.site(
        "impatient",
        true,
        &[
            "--promote-after",
            "hawser/canary-9",
            "--promote-timeout",
            "4s",
        ],
    );
    let all = [&canary, &soaking, &impatient];

    until(&all, "the soaking follower's success on v1", || {
        state_is(&fleet, &v1, "soaking", "success")
    });
    let soaked = fleet.statuses(&v1, "soaking");
    assert!(
        soaked
            .iter()
            .any(|s| s["description"] == "waiting for hawser/canary-1 (success, soaking 5s)"),
        "{soaked:#?}"
    );
    // Gitea's clock: the follower started applying at least 5 s after the success.
    let time = seconds;
    let success = fleet
        .statuses(&v1, "canary-1")
        .into_iter()
        .find(|s| s["status"] == "success")
        .unwrap();
    let applying = soaked
        .iter()
        .find(|s| s["description"] == "applying 1 object")
        .unwrap();
    assert!(
        time(applying) >= time(&success) + 5,
        "applying at {applying:#} only {}s after {success:#}",
        time(applying) - time(&success)
    );
    assert_eq!(soaking.greeting().as_deref(), Some("one"));

    until(&all, "the impatient follower giving up on v1", || {
        state_is(&fleet, &v1, "impatient", "failure")
    });
    assert_eq!(
        fleet.latest(&v1, "impatient").unwrap().1,
        "gave up after 4s: waiting for hawser/canary-9 (no status yet)"
    );
    let before = left_alone(&impatient);
    until(&[&impatient], "two more polls", || {
        left_alone(&impatient) >= before + 2
    });
    assert_eq!(impatient.greeting(), None, "given up: never applied");
}

#[test]
fn an_air_gapped_follower_reads_the_canarys_signed_report() {
    let fleet = Fleet::new();
    let v1 = fleet.push("one", &[Fleet::config_map("one")]);
    let dir = fleet.dir.path();
    for name in ["site-key", "stranger-key"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(dir.join(name)));
    }
    let public = std::fs::read_to_string(dir.join("site-key.pub")).unwrap();
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("canary@example.com namespaces=\"hawser-status\" {public}"),
    )
    .unwrap();
    let report = dir.join("canary-report.json");

    // No forge anywhere: the canary records its outcomes, the follower reads files.
    let canary = fleet.site("canary-1", false, &[]);
    let follower = fleet.site(
        "follower",
        false,
        &[
            "--promote-after",
            "hawser/canary-1",
            "--promote-report",
            report.to_str().unwrap(),
            "--promote-trusted-keys",
            allowed.to_str().unwrap(),
        ],
    );
    until(&[&canary], "v1 applied at the canary", || {
        canary.greeting().as_deref() == Some("one")
    });
    until(
        &[&follower],
        "the follower saying it cannot read the report",
        || {
            follower
                .agent
                .logs()
                .contains("cannot read the canaries' statuses")
        },
    );

    let export = |key: &str, to: &Path| {
        let out = hawser(
            &[
                "status",
                "--namespace",
                &canary.ns.name,
                "--export",
                to.to_str().unwrap(),
                "--sign-key",
                dir.join(key).to_str().unwrap(),
            ],
            &canary.kubeconfig,
        );
        assert_eq!(out.code, 0, "{out:?}");
    };
    // Exported aside until it holds the success, so the follower sees nothing yet.
    let aside = dir.join("aside.json");
    until(&[&canary], "the canary's success recorded", || {
        export("site-key", &aside);
        std::fs::read_to_string(&aside)
            .unwrap()
            .contains("\"success\"")
    });
    // A report signed by a stranger first: refused, nothing applied.
    export("stranger-key", &report);
    until(&[&follower], "the stranger's signature refused", || {
        follower.agent.logs().contains("not a trusted key")
    });
    assert_eq!(follower.greeting(), None);

    export("site-key", &report);
    until(&[&follower], "v1 promoted from the signed report", || {
        follower.greeting().as_deref() == Some("one")
    });
    let logs = follower.agent.logs();
    assert!(
        logs.contains("the canaries reported success; promoting"),
        "{logs}"
    );
    // The follower's own outcomes (exported like any air-gapped site's) tell it.
    let _ = v1;
}

/// Seconds since the epoch of an RFC 3339 time as Gitea writes it.
fn seconds(status: &Value) -> i64 {
    let text = status["created_at"].as_str().unwrap();
    let stamp: k8s_openapi::jiff::Timestamp = text.parse().unwrap();
    stamp.as_second()
}
