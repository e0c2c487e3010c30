//! `hawser run` against a real forge (issue 6): manifests pushed with the git CLI to a
//! Gitea repository over Gitea's smart HTTP, the agent as a child process under a
//! namespaced ServiceAccount pulling from that repository and posting commit
//! statuses to the same Gitea, and every status read back through Gitea's API.
//!
//! Nothing here is simulated: the repository, the pushes, the statuses and their
//! order are Gitea's own records. The repository for the statuses is inferred from
//! the source URL, as an operator would configure it.
//!
//! Needs the test control plane (`eval "$(tests/env/up)"`) and a Gitea binary in
//! `HAWSER_TEST_GITEA` (`tests/gitea/build`); fails saying so without either.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gitea/mod.rs"]
mod gitea;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gitea::{Gitea, USER};
use serde_json::{Value, json};
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, kubectl, sa_kubeconfig};
use support::{git_command, run};

const WAIT: Duration = Duration::from_secs(60);
const CLUSTER: &str = "edge-1";
const CONTEXT: &str = "hawser/edge-1";

/// A work tree whose `origin` is a Gitea repository; pushes go over Gitea's smart
/// HTTP with the token as the password, as a user's git would send them.
struct WorkTree {
    dir: tempfile::TempDir,
}

impl WorkTree {
    fn new(remote: &str) -> WorkTree {
        let dir = tempfile::Builder::new()
            .prefix("hawser-gitea-work-")
            .tempdir()
            .unwrap();
        let work = WorkTree { dir };
        work.git(&["init", "--quiet", "--initial-branch=main"]);
        work.git(&["remote", "add", "origin", remote]);
        work
    }

    fn git(&self, args: &[&str]) -> String {
        run(git_command(self.dir.path()).args(args))
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commits everything and pushes `main`; returns the new commit id.
    fn commit_and_push(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
        self.git(&["rev-parse", "HEAD"])
    }
}

struct World {
    ns: TestNamespace,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    gitea: Gitea,
    repo: String,
    work: WorkTree,
}

impl World {
    /// A namespace with the agent's ServiceAccount, a Gitea and an empty repository.
    fn new(prefix: &str, private: bool) -> World {
        let gitea = gitea::start(&gitea::bin());
        let ns = TestNamespace::new(prefix);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
        let repo = "fleet".to_string();
        let created = gitea.post(
            "/user/repos",
            json!({ "name": repo, "private": private, "auto_init": false }),
        );
        assert_eq!(created["private"], private, "{created:#}");
        let work = WorkTree::new(&gitea.repo_url_with_token(&repo));
        World {
            ns,
            dir,
            kubeconfig,
            gitea,
            repo,
            work,
        }
    }

    /// A file holding the Gitea token, for `--status-token-file`.
    fn token_file(&self) -> String {
        let path = self.dir.path().join("gitea-token");
        std::fs::write(&path, format!("{}\n", self.gitea.token)).unwrap();
        path.display().to_string()
    }

    /// `hawser run` pulling from the Gitea repository and reporting to it.
    fn agent(&self, extra: &[&str]) -> AgentProcess {
        let cache = self.dir.path().join("cache").display().to_string();
        let source = self.gitea.repo_url(&self.repo);
        let token_file = self.token_file();
        let mut args = vec![
            "--source",
            &source,
            "--ref",
            "main",
            "--namespace",
            &self.ns.name,
            "--interval",
            "1s",
            "--drift-interval",
            "2s",
            "--health-timeout",
            "30s",
            "--cache-dir",
            &cache,
            "--status-provider",
            "gitea",
            "--status-api-url",
            &self.gitea.url,
            "--status-token-file",
            &token_file,
            "--cluster-name",
            CLUSTER,
        ];
        args.extend_from_slice(extra);
        AgentProcess::start(&args, &self.kubeconfig, &self.dir.path().join("agent.log"))
    }

    /// Pushes the app: a ConfigMap and a Deployment.
    fn push_app(&self, greeting: &str) -> String {
        self.work.write(
            "app/config.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"
            ),
        );
        self.work.write(
            "app/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
        );
        self.work.commit_and_push(greeting)
    }

    fn greeting(&self) -> Option<String> {
        get_field("configmap", &self.ns.name, "cfg", "{.data.greeting}")
    }

    /// Every status Gitea holds for `sha`, oldest first.
    fn statuses(&self, sha: &str) -> Vec<Value> {
        self.gitea.statuses(&self.repo, sha)
    }

    /// The state of our context in the combined status, once there is one.
    fn state(&self, sha: &str) -> Option<String> {
        let combined = self.gitea.combined(&self.repo, sha);
        combined["statuses"]
            .as_array()?
            .iter()
            .find(|s| s["context"] == CONTEXT)
            .and_then(|s| s["status"].as_str())
            .map(str::to_string)
    }

    /// The Events on the inventory parent.
    fn events(&self) -> String {
        kubectl(&[
            "get",
            "events",
            "-n",
            &self.ns.name,
            "--field-selector",
            "involvedObject.name=hawser",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ])
    }

    /// The whole inventory parent, its recorded status included.
    fn parent(&self) -> String {
        kubectl(&[
            "get",
            "configmap",
            "hawser",
            "-n",
            &self.ns.name,
            "-o",
            "yaml",
        ])
    }

    fn parent_status(&self) -> String {
        kubectl(&[
            "get",
            "configmap",
            "hawser",
            "-n",
            &self.ns.name,
            "-o",
            "jsonpath={.data.status}",
        ])
    }

    /// The token appears in no log line, Event, or field of the inventory parent.
    fn assert_token_kept_secret(&self, agent: &AgentProcess) {
        let token = &self.gitea.token;
        assert!(token.len() >= 20, "a real token: {token}");
        let logs = agent.logs();
        assert!(!logs.is_empty());
        for line in logs.lines() {
            assert!(
                !line.contains(token.as_str()),
                "token in a log line: {line}"
            );
        }
        let events = self.events();
        assert!(!events.is_empty(), "the agent emitted events");
        assert!(
            !events.contains(token.as_str()),
            "token in events: {events}"
        );
        let status = self.parent_status();
        assert!(!status.is_empty(), "the agent recorded a status");
        assert!(
            !status.contains(token.as_str()),
            "token in status: {status}"
        );
        let parent = self.parent();
        assert!(
            !parent.contains(token.as_str()),
            "token in parent: {parent}"
        );
    }
}

/// Polls `check` until it holds; on timeout the panic carries the agent's last logs.
fn until(agent: &AgentProcess, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        if Instant::now() > deadline {
            let logs = agent.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            panic!("timed out after {WAIT:?} waiting for {what}; agent log tail:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(status, description)` of each status, oldest first.
fn states(statuses: &[Value]) -> Vec<(String, String)> {
    statuses
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap_or_default().to_string(),
                s["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_agent_reports_each_revision_on_gitea_once_and_keeps_the_token_secret() {
    let w = World::new("agent-gitea", false);
    let v1 = w.push_app("one");
    let mut agent = w.agent(&[]);

    until(&agent, "success on v1 in Gitea", || {
        w.state(&v1).as_deref() == Some("success")
    });
    assert_eq!(w.greeting().as_deref(), Some("one"));
    let v1_statuses = w.statuses(&v1);
    let seen = states(&v1_statuses);
    assert_eq!(seen.len(), 2, "pending, then success: {seen:?}");
    assert_eq!(seen[0], ("pending".into(), "applying 2 objects".into()));
    assert_eq!(seen[1].0, "success");
    assert!(
        seen[1]
            .1
            .starts_with("applied 2 objects (2 changed, 0 pruned), healthy in"),
        "{seen:?}"
    );
    for status in &v1_statuses {
        assert_eq!(status["context"], CONTEXT, "{status:#}");
        assert_eq!(status["creator"]["login"], USER, "{status:#}");
    }
    let combined = w.gitea.combined(&w.repo, &v1);
    assert_eq!(combined["state"], "success", "{combined:#}");
    assert_eq!(combined["statuses"].as_array().unwrap().len(), 1);

    // An object in another namespace: the revision is refused before any write.
    w.work.write(
        "app/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-system\n",
    );
    w.work.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: two\n",
    );
    let bad = w.work.commit_and_push("out of scope");
    until(&agent, "failure on the bad revision in Gitea", || {
        w.state(&bad).as_deref() == Some("failure")
    });
    let seen = states(&w.statuses(&bad));
    assert_eq!(
        seen.len(),
        1,
        "nothing was applied, so no pending: {seen:?}"
    );
    assert!(
        seen[0].1.starts_with("rejected: ") && seen[0].1.contains("kube-system"),
        "{seen:?}"
    );
    assert_eq!(
        w.greeting().as_deref(),
        Some("one"),
        "nothing of it written"
    );
    assert_eq!(w.statuses(&v1).len(), 2, "the applied commit is left alone");

    // A restart with everything in the cache posts nothing new.
    agent.kill();
    let before = w.statuses(&v1).len() + w.statuses(&bad).len();
    let logs_before = agent.logs().len();
    agent.restart(&[]);
    until(&agent, "two polls after the restart", || {
        agent.logs()[logs_before..]
            .matches("revision was rejected; waiting for the source to move")
            .count()
            >= 2
    });
    assert!(
        agent.logs()[logs_before..].contains("loaded the applied revision from the cache"),
        "the restart resumed from the cache"
    );
    let after = w.statuses(&v1).len() + w.statuses(&bad).len();
    assert_eq!(after, before, "a restart reposts nothing");
    assert_eq!(w.state(&bad).as_deref(), Some("failure"));

    w.assert_token_kept_secret(&agent);
}

#[test]
fn a_private_gitea_repository_is_pulled_with_basic_auth() {
    let w = World::new("agent-gitea-private", true);
    let v1 = w.push_app("one");
    // The repository really is private: git without credentials is refused.
    let anonymous = git_command(w.work.dir.path())
        .args(["ls-remote", &w.gitea.repo_url(&w.repo)])
        .output()
        .unwrap();
    assert!(
        !anonymous.status.success(),
        "anonymous ls-remote succeeded: {}",
        String::from_utf8_lossy(&anonymous.stdout)
    );

    let auth = w.dir.path().join("basic-auth");
    std::fs::write(&auth, format!("{USER}:{}\n", w.gitea.token)).unwrap();
    let agent = w.agent(&["--basic-auth-file", auth.to_str().unwrap()]);
    until(&agent, "v1 applied from the private repository", || {
        w.greeting().as_deref() == Some("one")
    });
    until(&agent, "success on v1 in Gitea", || {
        w.state(&v1).as_deref() == Some("success")
    });
    let seen = states(&w.statuses(&v1));
    assert_eq!(seen.len(), 2, "pending, then success: {seen:?}");
    assert_eq!(seen[0].0, "pending");

    w.assert_token_kept_secret(&agent);
}
