//! Faults under a running agent, against the real control plane and Git server: a
//! cache on a full disk (a small tmpfs), a cache entry deleted under the agent, a
//! state file of another layout, a revoked ServiceAccount token, a token file that
//! ends in a newline.
//!
//! The tmpfs tests mount one (the tests run as root); where mounting is impossible
//! they say so and return.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, hawser, kubectl, sa_kubeconfig};
use support::{GitServer, GitServerOptions, Repo};

const WAIT: Duration = Duration::from_secs(60);

/// The agent's JSON log lines whose message is `message`.
fn logged(agent: &AgentProcess, message: &str) -> Vec<Value> {
    agent
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// Polls `check` until it holds; on timeout the panic carries the agent's last logs.
fn until(agent: &AgentProcess, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            let logs = agent.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            panic!("timed out after {timeout:?} waiting for {what}; agent log tail:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem until a write fails with "no space".
    fn fill(&self) {
        let mut file = fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = file.sync_all();
    }

    fn free(&self) {
        fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn configmaps(repo: &Repo, greeting: &str) {
    for i in 0..3 {
        repo.write(
            &format!("app/cm-{i}.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  greeting: {greeting}\n"
            ),
        );
    }
}

/// The applied revision `state.json` names.
fn state_applied(cache: &Path) -> Option<String> {
    let text = fs::read_to_string(cache.join("state.json")).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    state["applied"]["revision"].as_str().map(str::to_string)
}

fn parent_status(ns: &str) -> Value {
    get_field("configmap", ns, "hawser", "{.data.status}")
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .unwrap_or(Value::Null)
}

fn metric(agent: &AgentProcess, name: &str) -> Option<f64> {
    let (_, body) = agent.http("GET", "/metrics", &[], b"")?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn agent_args<'a>(repo: &'a Repo, ns: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "--source",
        repo.url(),
        "--ref",
        "main",
        "--namespace",
        ns,
        "--interval",
        "1s",
        "--drift-interval",
        "2s",
        "--health-timeout",
        "120s",
        "--cache-dir",
        cache,
    ]
}

/// #22 findings 1, 5 and 6: a full disk, first while a revision is fetched, then
/// while its state is written; a restart before the disk has room again.
#[test]
fn a_full_disk_never_lets_the_state_and_the_cluster_disagree_silently() {
    let Some(node) = std::env::var("HAWSER_TEST_KWOK_NODE").ok() else {
        eprintln!(
            "SKIPPED: kwok is not running (HAWSER_TEST_KWOK_NODE unset): no pod becomes Ready"
        );
        return;
    };
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let ns = TestNamespace::new("faults-disk");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let cache_dir = disk.path().join("cache");
    let cache = cache_dir.display().to_string();
    let greeting = || get_field("configmap", &ns.name, "cm-0", "{.data.greeting}");

    configmaps(&repo, "one");
    let v1 = repo.commit("one");
    repo.push();
    let mut agent = AgentProcess::start(
        &agent_args(&repo, &ns.name, &cache),
        &kubeconfig,
        &dir.path().join("agent.log"),
    );
    until(&agent, "v1 applied", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v1.as_str())
    });
    agent.wait_ready(WAIT);

    // v2 cannot be stored: `hawser status` shows it as desired, and why.
    let label = format!("faults.hawser.dev/{}", ns.name);
    configmaps(&repo, "two");
    repo.write(
        "app/deploy.yaml",
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      nodeSelector: {{\"{label}\": \"yes\"}}\n      tolerations: [{{operator: Exists}}]\n      containers:\n      - name: web\n        image: nginx:1.27\n"
        ),
    );
    disk.fill();
    let v2 = repo.commit("two");
    repo.push();
    until(&agent, "the status to show v2 as unstorable", WAIT, || {
        let status = parent_status(&ns.name);
        status["desired"] == v2.as_str() && status["desiredUnstorable"].is_string()
    });
    let why = parent_status(&ns.name)["desiredUnstorable"].clone();
    assert!(
        why.as_str().unwrap().contains("No space left on device"),
        "the reason names the OS's: {why}"
    );
    let shown = hawser(&["status", "--namespace", &ns.name], &kubeconfig);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown
            .stdout
            .contains(&format!("{v2} (cannot be stored in the cache: ")),
        "{}",
        shown.stdout
    );
    assert_eq!(greeting().as_deref(), Some("one"));

    // Room again: v2 is stored; while its Deployment waits for a node, the disk
    // fills, so the state write after the health verdict fails.
    let cached = logged(&agent, "fetched, verified and cached").len();
    disk.free();
    until(&agent, "v2 cached", WAIT, || {
        logged(&agent, "fetched, verified and cached").len() > cached
    });
    disk.fill();
    kubectl(&["label", "node", &node, &format!("{label}=yes")]);
    let _unlabel = Unlabel(node.clone(), label.clone());
    until(&agent, "the failed state write", WAIT, || {
        !logged(
            &agent,
            "could not persist the state; not ready until it is persisted",
        )
        .is_empty()
    });
    let line = &logged(
        &agent,
        "could not persist the state; not ready until it is persisted",
    )[0];
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "the error names the OS reason: {line}"
    );
    assert_eq!(greeting().as_deref(), Some("two"));
    assert_eq!(state_applied(&cache_dir).as_deref(), Some(v1.as_str()));
    let (code, body) = agent.http("GET", "/readyz", &[], b"").unwrap();
    assert_eq!(code, 503, "not ready while the state lags: {body}");
    assert!(
        body.contains("could not be persisted") && body.contains("No space left on device"),
        "{body}"
    );
    assert_eq!(metric(&agent, "hawser_state_unpersisted"), Some(1.0));

    // The agent dies before the disk has room; it restarts with Git down. The
    // cluster runs v2 (the parent says so): v1 must not be re-applied.
    agent.kill();
    drop(server);
    let before = logged(&agent, "no drift").len();
    agent.restart(&[]);
    until(&agent, "a drift check after the restart", WAIT, || {
        logged(&agent, "no drift").len() > before
    });
    assert_eq!(
        greeting().as_deref(),
        Some("two"),
        "the restart rolled the cluster back"
    );
    assert!(
        !logged(
            &agent,
            "the cache's state disagrees with the revision the cluster last recorded as applied; enforcing the cluster's"
        )
        .is_empty(),
        "the disagreement is logged"
    );
    let (code, _) = agent.http("GET", "/readyz", &[], b"").unwrap();
    assert_eq!(code, 503, "the state still cannot be written");

    // Room again: the retry persists v2 and the agent is ready.
    disk.free();
    until(&agent, "v2 persisted and ready", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v2.as_str())
            && agent.http("GET", "/readyz", &[], b"").map(|r| r.0) == Some(200)
    });
    assert_eq!(metric(&agent, "hawser_state_unpersisted"), Some(0.0));
    drop(agent);
}

/// Removes a node label when dropped.
struct Unlabel(String, String);

impl Drop for Unlabel {
    fn drop(&mut self) {
        let _ = support::cluster::kubectl_raw(
            &["label", "node", &self.0, &format!("{}-", self.1)],
            &support::cluster::admin_kubeconfig(),
        );
    }
}

/// #22 finding 3: the applied revision's cache entry deleted under the running
/// agent. While the source is down the agent says so (not ready, metric, event);
/// once it answers the revision is fetched again and a hand edit corrected.
#[test]
fn a_cache_entry_deleted_under_the_agent_is_fetched_again() {
    let ns = TestNamespace::new("faults-entry");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let cache_dir = dir.path().join("cache");
    let cache = cache_dir.display().to_string();
    let greeting = || get_field("configmap", &ns.name, "cm-0", "{.data.greeting}");
    configmaps(&repo, "one");
    let v1 = repo.commit("one");
    repo.push();
    let agent = AgentProcess::start(
        &agent_args(&repo, &ns.name, &cache),
        &kubeconfig,
        &dir.path().join("agent.log"),
    );
    until(&agent, "v1 applied", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v1.as_str())
    });
    agent.wait_ready(WAIT);

    // Git down (the repository moved away), then the entry goes and a hand edit comes.
    let bare = repo.bare_path().to_path_buf();
    let aside = PathBuf::from(format!("{}.aside", bare.display()));
    fs::rename(&bare, &aside).unwrap();
    fs::remove_dir_all(cache_dir.join("snapshots").join(&v1)).unwrap();
    kubectl(&[
        "patch",
        "configmap",
        "cm-0",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        "{\"data\":{\"greeting\":\"hand\"}}",
    ]);
    until(&agent, "not ready, saying why", WAIT, || {
        agent
            .http("GET", "/readyz", &[], b"")
            .is_some_and(|(code, body)| code == 503 && body.contains("missing from the cache"))
    });
    assert!(metric(&agent, "hawser_drift_check_failures_total").unwrap_or(0.0) >= 1.0);
    let events = kubectl(&[
        "get",
        "events",
        "-n",
        &ns.name,
        "--field-selector",
        "reason=CacheEntryLost",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a CacheEntryLost event");

    // Git back: fetched again, the hand edit corrected, ready.
    fs::rename(&aside, &bare).unwrap();
    until(&agent, "the hand edit corrected", WAIT, || {
        greeting().as_deref() == Some("one")
    });
    agent.wait_ready(WAIT);
    assert!(cache_dir.join("snapshots").join(&v1).is_dir());
}

/// #22 finding 8: a state file of another layout is not read as "nothing
/// applied": it is kept as state.json.bad, and with Git down the revision the
/// cluster records is enforced from the cache.
#[test]
fn a_state_file_of_another_layout_is_kept_and_recovered_from_the_cluster() {
    let ns = TestNamespace::new("faults-layout");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let cache_dir = dir.path().join("cache");
    let cache = cache_dir.display().to_string();
    let greeting = || get_field("configmap", &ns.name, "cm-0", "{.data.greeting}");
    configmaps(&repo, "one");
    let v1 = repo.commit("one");
    repo.push();
    let mut agent = AgentProcess::start(
        &agent_args(&repo, &ns.name, &cache),
        &kubeconfig,
        &dir.path().join("agent.log"),
    );
    until(&agent, "v1 applied", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v1.as_str())
    });
    let (code, _) = agent.terminate();
    assert_eq!(code, Some(0));
    drop(server);
    let old = format!("{{\"version\": 0, \"applied_revision\": \"{v1}\"}}");
    fs::write(cache_dir.join("state.json"), &old).unwrap();
    kubectl(&[
        "patch",
        "configmap",
        "cm-0",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        "{\"data\":{\"greeting\":\"hand\"}}",
    ]);
    agent.restart(&[]);
    until(
        &agent,
        "the hand edit corrected from the cache",
        WAIT,
        || greeting().as_deref() == Some("one"),
    );
    assert_eq!(
        fs::read_to_string(cache_dir.join("state.json.bad")).unwrap(),
        old
    );
    let unreadable = logged(
        &agent,
        "the cache's state file is unreadable; kept it as state.json.bad, recovering the applied revision from the inventory parent and the cache",
    );
    assert_eq!(unreadable.len(), 1, "logged once");
    assert!(
        unreadable[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown layout (top-level keys: applied_revision, version"),
        "{}",
        unreadable[0]
    );
    until(&agent, "the recovered state persisted", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v1.as_str())
    });
}

/// #22 finding 10: a kubeconfig whose tokenFile ends in a newline works, as with
/// kubectl.
#[test]
fn a_token_file_ending_in_a_newline_is_trimmed() {
    let ns = TestNamespace::new("faults-token");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let text = fs::read_to_string(&kubeconfig).unwrap();
    let token_file = dir.path().join("token");
    let mut rewritten = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("token: ") {
            Some((indent, token)) if indent.trim().is_empty() => {
                rewritten += 1;
                fs::write(&token_file, format!("{}\n", token.trim())).unwrap();
                format!("{indent}tokenFile: {}", token_file.display())
            }
            _ => line.to_string(),
        })
        .collect();
    assert_eq!(rewritten, 1, "one token in {text}");
    let with_file = dir.path().join("file.kubeconfig");
    fs::write(&with_file, lines.join("\n") + "\n").unwrap();
    let manifests = dir.path().join("m");
    fs::create_dir(&manifests).unwrap();
    fs::write(
        manifests.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n",
    )
    .unwrap();
    let manifests = manifests.display().to_string();
    let run = hawser(
        &[
            "apply",
            "--once",
            "--dir",
            &manifests,
            "--namespace",
            &ns.name,
        ],
        &with_file,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        get_field("configmap", &ns.name, "cfg", "{.data.a}").as_deref(),
        Some("b")
    );
}

/// #22 finding 4: a revoked token (401) is not retried every two seconds: the
/// drift checks that fail with it wait for the drift interval, like a 403.
#[test]
fn a_revoked_token_waits_for_the_drift_interval() {
    let ns = TestNamespace::new("faults-revoked");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let cache_dir = dir.path().join("cache");
    let cache = cache_dir.display().to_string();
    configmaps(&repo, "one");
    let v1 = repo.commit("one");
    repo.push();
    let mut args = agent_args(&repo, &ns.name, &cache);
    let drift = args.iter().position(|a| *a == "--drift-interval").unwrap();
    args[drift + 1] = "6s";
    let agent = AgentProcess::start(&args, &kubeconfig, &dir.path().join("agent.log"));
    until(&agent, "v1 applied", WAIT, || {
        state_applied(&cache_dir).as_deref() == Some(v1.as_str())
    });
    // Deleting the ServiceAccount invalidates its tokens: every request is a 401.
    kubectl(&["delete", "serviceaccount", "hawser", "-n", &ns.name]);
    let before = logged(&agent, "drift check failed").len();
    until(&agent, "three drift checks failing", WAIT, || {
        logged(&agent, "drift check failed").len() >= before + 3
    });
    let failed = logged(&agent, "drift check failed");
    assert!(
        failed[before]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nauthorized"),
        "{}",
        failed[before]
    );
    let at: Vec<f64> = failed[before..]
        .iter()
        .map(|l| seconds(l["timestamp"].as_str().unwrap()))
        .collect();
    let gaps: Vec<f64> = at
        .windows(2)
        .map(|w| (w[1] - w[0]).rem_euclid(86_400.0))
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= 5.0),
        "a 401 waits for the drift interval (6s); gaps in seconds: {gaps:?}"
    );
}

/// Seconds since midnight of an RFC 3339 UTC timestamp; only differences matter.
fn seconds(timestamp: &str) -> f64 {
    let time = timestamp.split_once('T').unwrap().1.trim_end_matches('Z');
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}
