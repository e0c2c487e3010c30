//! API server unreachable or restarting: the agent retries with backoff, keeps
//! answering ready (it enforces from its cache), and converges when the server
//! returns.
//!
//! The agent reaches the real API server only through a TCP forwarder in this test
//! (its kubeconfig names the forwarder's port; the server certificate has an IP SAN
//! for 127.0.0.1, so TLS still verifies end to end). Stopping the forwarder closes
//! the listener and cuts every open connection, as a restarting API server does;
//! starting it again on the same port brings the server back. The test itself
//! talks to the API server directly, so it can change the cluster meanwhile.
//!
//! A server that answers with errors instead of not at all is the other half: a
//! validating webhook that cannot be called makes the API server fail (500) every
//! write of the inventory parent in one namespace, and the revision caught by it
//! must be retried, not rejected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::AgentProcess;
use support::cluster::{AGENT_RULES, TestNamespace, get_field, kubectl, sa_kubeconfig};
use support::{GitServer, GitServerOptions, Repo};

const WAIT: Duration = Duration::from_secs(40);
/// How long the agent may take to converge once the API server is back: the next
/// retry comes at most 8s after the third failure (the backoff cap is
/// 5 × max(interval, 2s) = 10s), plus jitter and the apply itself.
const CONVERGE: Duration = Duration::from_secs(30);

/// Forwards TCP connections from a loopback port to the API server, byte for byte.
struct Forwarder {
    port: u16,
    upstream: String,
    running: Option<Running>,
    /// Connections accepted since the forwarder was created.
    accepted: Arc<AtomicUsize>,
}

struct Running {
    stop: Arc<AtomicBool>,
    /// Both ends of every forwarded connection, to cut them on stop.
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: JoinHandle<()>,
}

impl Forwarder {
    fn start(upstream: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut forwarder = Forwarder {
            port: listener.local_addr().unwrap().port(),
            upstream: upstream.to_string(),
            running: None,
            accepted: Arc::new(AtomicUsize::new(0)),
        };
        forwarder.serve(listener);
        forwarder
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, streams) = (stop.clone(), streams.clone());
            let (upstream, accepted) = (self.upstream.clone(), self.accepted.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let mut all = streams.lock().unwrap();
                    all.push(client.try_clone().unwrap());
                    all.push(server.try_clone().unwrap());
                    pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                    pump(server, client);
                }
                // The listener is dropped here: the port refuses connections.
            })
        };
        self.running = Some(Running {
            stop,
            streams,
            acceptor,
        });
    }

    /// Closes the listener and cuts every open connection; returns once the port
    /// refuses connections.
    fn stop(&mut self) {
        assert!(self.running.is_some(), "the forwarder is running");
        self.halt();
        assert!(
            TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "the forwarder's port still accepts connections"
        );
    }

    fn halt(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let _ = running.acceptor.join();
        for stream in running.streams.lock().unwrap().iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Listens on the same port again (std sets SO_REUSEADDR, so connections
    /// still in TIME_WAIT do not block the bind).
    fn resume(&mut self) {
        assert!(self.running.is_none(), "the forwarder is running");
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.serve(listener);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Copies bytes from `from` to `to` until either side closes, then closes `to`'s
/// write half so the peer sees the end.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A copy of `kubeconfig` whose server is `https://127.0.0.1:port`.
fn kubeconfig_via(kubeconfig: &Path, port: u16, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut rewritten = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("server: ") {
            Some((indent, _)) if indent.trim().is_empty() => {
                rewritten += 1;
                format!("{indent}server: https://127.0.0.1:{port}")
            }
            _ => line.to_string(),
        })
        .collect();
    assert_eq!(rewritten, 1, "one server in {text}");
    std::fs::write(out, lines.join("\n") + "\n").unwrap();
    out.to_path_buf()
}

/// The agent's JSON log lines whose message is `message`.
fn logged(agent: &AgentProcess, message: &str) -> Vec<Value> {
    agent
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// Seconds since midnight of an RFC 3339 UTC timestamp (`...T13:39:22.776712Z`);
/// only differences matter (taken modulo a day).
fn seconds(timestamp: &str) -> f64 {
    let time = timestamp.split_once('T').unwrap().1.trim_end_matches('Z');
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// Polls `check` until it holds; on timeout the panic carries the agent's last logs.
fn until(agent: &AgentProcess, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            let logs = agent.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            panic!("timed out after {timeout:?} waiting for {what}; agent log tail:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn push(repo: &Repo, greeting: &str) -> String {
    repo.write(
        "app/config.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  greeting: {greeting}\n"
        ),
    );
    repo.write(
        "app/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    let commit = repo.commit(greeting);
    repo.push();
    commit
}

#[test]
fn an_api_server_outage_is_ridden_out_and_the_agent_converges_when_it_returns() {
    let ns = TestNamespace::new("agent-apiserver");
    let dir = tempfile::tempdir().unwrap();
    let sa = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let apiserver = std::env::var("HAWSER_TEST_APISERVER")
        .expect("HAWSER_TEST_APISERVER is set by tests/env/up");
    let upstream = apiserver.trim_start_matches("https://").to_string();
    let mut forwarder = Forwarder::start(&upstream);
    let kubeconfig = kubeconfig_via(&sa, forwarder.port, &dir.path().join("via.kubeconfig"));
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let greeting = || get_field("configmap", &ns.name, "cfg", "{.data.greeting}");
    let replicas =
        || get_field("deployment", &ns.name, "web", "{.spec.replicas}").unwrap_or_default();
    let status = || {
        get_field("configmap", &ns.name, "hawser", "{.data.status}")
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .unwrap_or(Value::Null)
    };

    push(&repo, "one");
    let cache = dir.path().join("cache").display().to_string();
    let args = [
        "--source",
        repo.url(),
        "--ref",
        "main",
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
    ];
    let agent = AgentProcess::start(&args, &kubeconfig, &dir.path().join("agent.log"));
    until(&agent, "v1 applied", WAIT, || {
        greeting().as_deref() == Some("one") && replicas() == "2"
    });
    agent.wait_ready(WAIT);
    assert!(
        forwarder.accepted() > 0,
        "the agent reached the API server through the forwarder"
    );

    // The API server goes away for the agent.
    let failed_before = logged(&agent, "apply failed; will retry").len();
    forwarder.stop();
    let outage = Instant::now();
    let v2 = push(&repo, "two");
    kubectl(&["scale", "deployment", "web", "-n", &ns.name, "--replicas=5"]);
    // Ready all along: it keeps enforcing what it has.
    let ready = || agent.http("GET", "/readyz", &[], b"").map(|(code, _)| code);
    until(&agent, "v2 failing to apply three times", WAIT, || {
        assert_eq!(ready(), Some(200), "/readyz during the outage");
        logged(&agent, "apply failed; will retry").len() >= failed_before + 3
    });
    // Retries back off: 2s, then 4s (base 2s doubling, plus up to 10% jitter).
    let failures: Vec<f64> = logged(&agent, "apply failed; will retry")[failed_before..]
        .iter()
        .map(|line| seconds(line["timestamp"].as_str().unwrap()))
        .collect();
    let gaps: Vec<f64> = failures
        .windows(2)
        .map(|w| (w[1] - w[0]).rem_euclid(86_400.0))
        .collect();
    assert!(
        gaps[0] >= 1.9 && gaps[1] >= 3.8 && gaps[1] > gaps[0],
        "retries should back off (2s, then 4s); gaps in seconds: {gaps:?}"
    );
    until(&agent, "a failed drift check", WAIT, || {
        assert_eq!(ready(), Some(200), "/readyz during the outage");
        !logged(&agent, "drift check failed").is_empty()
    });
    assert!(
        logged(
            &agent,
            "revision rejected; still enforcing the applied revision"
        )
        .is_empty(),
        "an unreachable API server must not reject v2 for good: {:#?}",
        logged(
            &agent,
            "revision rejected; still enforcing the applied revision"
        )
    );
    assert_eq!(greeting().as_deref(), Some("one"));
    assert_eq!(replicas(), "5", "nothing reached the API server");

    // Back.
    forwarder.resume();
    let back = Instant::now();
    let connections = forwarder.accepted();
    until(
        &agent,
        "v2 applied and the drift corrected",
        CONVERGE,
        || greeting().as_deref() == Some("two") && replicas() == "2",
    );
    until(&agent, "v2 recorded as good", CONVERGE, || {
        status()["good"] == v2.as_str() && status()["result"] == "success"
    });
    eprintln!(
        "outage lasted {:?}; converged {:?} after the API server returned",
        back - outage,
        back.elapsed()
    );
    assert!(
        forwarder.accepted() > connections,
        "the agent reconnected through the forwarder"
    );
    assert_eq!(ready(), Some(200));
    let (code, _) = agent.http("GET", "/healthz", &[], b"").unwrap();
    assert_eq!(code, 200, "the same process is still serving");
    let logs = agent.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A ValidatingWebhookConfiguration whose webhook cannot be called (its Service does
/// not exist), so the API server answers 500 to every update of the inventory
/// parents in one namespace, as a struggling API server might. Deleted on drop.
struct FailingWebhook {
    name: String,
}

impl FailingWebhook {
    fn install(namespace: &str) -> FailingWebhook {
        let name = format!("hawser-test-fail-{namespace}");
        let manifest = format!(
            r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {name}
webhooks:
- name: fail.{namespace}.hawser.test
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 2
  clientConfig:
    service: {{namespace: {namespace}, name: no-such-service, port: 443}}
  namespaceSelector:
    matchLabels: {{kubernetes.io/metadata.name: {namespace}}}
  objectSelector:
    matchExpressions: [{{key: applyset.kubernetes.io/id, operator: Exists}}]
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["UPDATE"]
    resources: ["configmaps"]
"#
        );
        let path = std::env::temp_dir().join(format!("{name}.yaml"));
        std::fs::write(&path, manifest).unwrap();
        kubectl(&["apply", "-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(&path);
        FailingWebhook { name }
    }
}

impl Drop for FailingWebhook {
    fn drop(&mut self) {
        let _ = support::cluster::kubectl_raw(
            &[
                "delete",
                "validatingwebhookconfiguration",
                &self.name,
                "--ignore-not-found",
            ],
            &support::cluster::admin_kubeconfig(),
        );
    }
}

/// Whether an update of the inventory parent fails in the failing webhook (a
/// server-side dry run, which validating webhooks without side effects also see).
fn parent_updates_fail(namespace: &str) -> bool {
    let out = support::cluster::kubectl_raw(
        &[
            "annotate",
            "configmap",
            "hawser",
            "-n",
            namespace,
            "hawser.test/probe=1",
            "--overwrite",
            "--dry-run=server",
        ],
        &support::cluster::admin_kubeconfig(),
    );
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("failed calling webhook")
}

#[test]
fn a_server_error_while_recording_the_inventory_is_retried_not_a_rejection() {
    let ns = TestNamespace::new("agent-apiserver-500");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let greeting = || get_field("configmap", &ns.name, "cfg", "{.data.greeting}");
    let status = || {
        get_field("configmap", &ns.name, "hawser", "{.data.status}")
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .unwrap_or(Value::Null)
    };
    push(&repo, "one");
    let cache = dir.path().join("cache").display().to_string();
    let args = [
        "--source",
        repo.url(),
        "--ref",
        "main",
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
    ];
    let agent = AgentProcess::start(&args, &kubeconfig, &dir.path().join("agent.log"));
    until(&agent, "v1 applied", WAIT, || {
        greeting().as_deref() == Some("one")
    });

    // Every write of the inventory parent now fails with a 500; the plan's dry runs
    // (of other objects) still pass. v2 adds an object, so its apply starts by
    // widening the inventory, and fails there.
    let webhook = FailingWebhook::install(&ns.name);
    until(&agent, "the webhook in force", WAIT, || {
        parent_updates_fail(&ns.name)
    });
    let failed_before = logged(&agent, "apply failed; will retry").len();
    repo.write(
        "app/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  added: in-v2\n",
    );
    let v2 = push(&repo, "two");
    until(&agent, "v2 failing to apply twice", WAIT, || {
        logged(&agent, "apply failed; will retry").len() >= failed_before + 2
            || !logged(
                &agent,
                "revision rejected; still enforcing the applied revision",
            )
            .is_empty()
    });
    let rejected = logged(
        &agent,
        "revision rejected; still enforcing the applied revision",
    );
    assert!(
        rejected.is_empty(),
        "a server error is transient, not a reason to reject v2 for good: {rejected:#?}"
    );
    assert_eq!(greeting().as_deref(), Some("one"));
    assert!(!support::cluster::exists("configmap", &ns.name, "extra"));

    drop(webhook);
    until(
        &agent,
        "v2 applied once the server accepts writes",
        CONVERGE,
        || {
            greeting().as_deref() == Some("two")
                && support::cluster::exists("configmap", &ns.name, "extra")
        },
    );
    until(&agent, "v2 recorded as good", CONVERGE, || {
        status()["good"] == v2.as_str() && status()["result"] == "success"
    });
}

/// The audit log from `offset` on: (new offset, events of `user`).
fn audit_tail(offset: u64, user: &str) -> (u64, Vec<Value>) {
    use std::io::{Seek, SeekFrom};
    let path = std::env::var("HAWSER_TEST_AUDIT_LOG").expect("set by tests/env/up");
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    // Only whole lines: a line being written waits for the next read.
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    let events = text[..whole]
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["user"]["username"] == user)
        .collect();
    (offset + whole as u64, events)
}

fn audit_offset() -> u64 {
    let path = std::env::var("HAWSER_TEST_AUDIT_LOG").expect("set by tests/env/up");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn is_write_of(event: &Value, verb: &str, prefix: &str) -> bool {
    let uri = event["requestURI"].as_str().unwrap_or_default();
    event["verb"] == verb
        && !uri.contains("dryRun=")
        && uri.contains("/configmaps/")
        && uri
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(prefix))
}

/// #22 findings 2 and 7: the API server goes away after some of a new revision's
/// writes (timed from its audit log). The apply stage stops at the first
/// unanswered request and says so once, with the counts; and while the revision is
/// retried, drift checks of the old revision never prune the objects it added.
#[test]
fn drift_never_prunes_a_revision_in_flight_and_the_apply_stops_at_the_first_refusal() {
    let ns = TestNamespace::new("agent-inflight");
    let dir = tempfile::tempdir().unwrap();
    let sa = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    let user = support::cluster::sa_user(&ns.name, "hawser");
    let apiserver = std::env::var("HAWSER_TEST_APISERVER")
        .expect("HAWSER_TEST_APISERVER is set by tests/env/up");
    let upstream = apiserver.trim_start_matches("https://").to_string();
    let mut forwarder = Forwarder::start(&upstream);
    let kubeconfig = kubeconfig_via(&sa, forwarder.port, &dir.path().join("via.kubeconfig"));
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let cm = |name: String| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n")
    };
    for i in 0..20 {
        repo.write(&format!("old/{i}.yaml"), cm(format!("old-{i}")));
    }
    repo.commit("old");
    repo.push();
    let cache = dir.path().join("cache").display().to_string();
    let args = [
        "--source",
        repo.url(),
        "--ref",
        "main",
        "--namespace",
        &ns.name,
        "--interval",
        "1s",
        "--drift-interval",
        "2s",
        "--allow-mass-prune",
        "--cache-dir",
        &cache,
    ];
    let agent = AgentProcess::start(&args, &kubeconfig, &dir.path().join("agent.log"));
    until(&agent, "the old revision applied", WAIT, || {
        logged(&agent, "applied and healthy").len() == 1
    });
    let created = |offset| {
        let (_, events) = audit_tail(offset, &user);
        events
            .iter()
            .filter(|e| is_write_of(e, "patch", "new-"))
            .count()
    };

    const NEW: usize = 150;
    for i in 0..NEW {
        repo.write(&format!("new/{i}.yaml"), cm(format!("new-{i}")));
    }
    let offset = audit_offset();
    let failed_before = logged(&agent, "apply failed; will retry").len();
    repo.commit("new");
    repo.push();
    until(&agent, "some of the new objects written", WAIT, || {
        created(offset) >= 5
    });
    forwarder.stop();
    let written = created(offset);
    until(&agent, "the new revision failing twice", WAIT, || {
        logged(&agent, "apply failed; will retry").len() >= failed_before + 2
    });
    let failures = &logged(&agent, "apply failed; will retry")[failed_before..];
    let first = failures[0]["reason"].as_str().unwrap_or_default();
    if written < NEW {
        assert!(
            first.contains("stopped the stage") && first.contains("not sent"),
            "one line, with the counts: {first}"
        );
    }
    let errors = agent
        .logs()
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .count();
    assert!(
        errors == 0,
        "no ERROR line per failed request; found {errors}:\n{}",
        agent.logs()
    );
    until(&agent, "a failed drift check", WAIT, || {
        !logged(&agent, "drift check failed").is_empty()
    });

    let healthy = logged(&agent, "applied and healthy").len();
    forwarder.resume();
    until(
        &agent,
        "the new revision applied",
        Duration::from_secs(60),
        || logged(&agent, "applied and healthy").len() > healthy,
    );
    support::cluster::audit_sync();
    let (_, events) = audit_tail(offset, &user);
    let deleted: Vec<&str> = events
        .iter()
        .filter(|e| is_write_of(e, "delete", "new-"))
        .filter_map(|e| e["requestURI"].as_str())
        .collect();
    assert!(
        deleted.is_empty(),
        "drift pruned objects of the revision in flight: {deleted:#?}"
    );
    for i in [0, NEW - 1] {
        assert!(get_field("configmap", &ns.name, &format!("new-{i}"), "{.data.a}").is_some());
    }
}
