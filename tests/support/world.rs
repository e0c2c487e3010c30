//! One end-to-end world for `hawser run`: a namespace, a scoped ServiceAccount
//! kubeconfig, a Git server with a repository, a cache directory, and the agent
//! started with fast intervals. Shared by the agent test crates.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use super::agent::AgentProcess;
use super::cluster::{AGENT_RULES, TestNamespace, get_field, kubectl, sa_kubeconfig};
use super::{GitServer, GitServerOptions, Repo};

pub const WAIT: Duration = Duration::from_secs(40);

pub struct World {
    pub ns: TestNamespace,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: GitServer,
    pub repo: Repo,
}

impl World {
    pub fn new(prefix: &str) -> World {
        let ns = TestNamespace::new(prefix);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
        let server = GitServer::start(GitServerOptions::default());
        let repo = Repo::create(&server);
        World {
            ns,
            dir,
            kubeconfig,
            server,
            repo,
        }
    }

    /// The agent's flags: fast intervals for tests, overridden by `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let cache = self.dir.path().join("cache").display().to_string();
        let defaults = [
            ("--source", self.repo.url()),
            ("--ref", "main"),
            ("--namespace", &self.ns.name),
            ("--interval", "1s"),
            ("--drift-interval", "2s"),
            ("--health-timeout", "30s"),
            ("--cache-dir", &cache),
        ];
        let mut args = Vec::new();
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.push(flag.to_string());
                args.push(value.to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn agent(&self, extra: &[&str]) -> AgentProcess {
        let args = self.args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        AgentProcess::start(&args, &self.kubeconfig, &self.dir.path().join("agent.log"))
    }

    /// Pushes the app: a ConfigMap and a Deployment, optionally broken or unschedulable.
    pub fn push(&self, greeting: &str, replicas: u32, extra_pod_spec: &str) -> String {
        self.repo.write(
            "app/config.yaml",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"),
        );
        self.repo.write(
            "app/deploy.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n{extra_pod_spec}      containers:\n      - name: web\n        image: nginx:1.27\n"
            ),
        );
        let commit = self.repo.commit(greeting);
        self.repo.push();
        commit
    }

    pub fn greeting(&self) -> Option<String> {
        get_field("configmap", &self.ns.name, "cfg", "{.data.greeting}")
    }

    pub fn wait_greeting(&self, want: &str, agent: &AgentProcess) {
        until(agent, &format!("greeting {want}"), || {
            self.greeting().as_deref() == Some(want)
        });
    }

    pub fn replicas(&self) -> String {
        get_field("deployment", &self.ns.name, "web", "{.spec.replicas}").unwrap_or_default()
    }

    pub fn scale(&self, n: u32) {
        kubectl(&[
            "scale",
            "deployment",
            "web",
            "-n",
            &self.ns.name,
            &format!("--replicas={n}"),
        ]);
    }

    /// The status hawser records on its inventory parent.
    pub fn status(&self) -> serde_json::Value {
        get_field("configmap", &self.ns.name, "hawser", "{.data.status}")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn events(&self) -> String {
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

    pub fn cache_state(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.dir.path().join("cache/state.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

/// Polls `check` until it holds; on timeout the panic carries the agent's last logs.
pub fn until(agent: &AgentProcess, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !check() {
        if std::time::Instant::now() > deadline {
            let logs = agent.logs();
            let tail: Vec<&str> = logs
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "timed out after {WAIT:?} waiting for {what}; agent log tail:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl World {
    /// A revision outside the agent's scope (an object in kube-system): rejected
    /// before any write. Returns its commit.
    pub fn push_out_of_scope(&self) -> String {
        self.repo.write(
            "app/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-system\n",
        );
        let commit = self.repo.commit("out of scope");
        self.repo.push();
        commit
    }
}
