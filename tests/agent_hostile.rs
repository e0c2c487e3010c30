//! The agent under attack (issue #21, findings 2, 3 and 7): the real `hawser run`
//! against the real control plane, its source behind a hostile front that relays to
//! the real `git http-backend` until told to lie. During each attack a hand edit must
//! still be corrected, and `/healthz` must still answer 200.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use hostile::{endless, http, pkt, relay, serve};
use support::cluster::kubectl;
use support::world::{World, until};

const RELAY: u8 = 0;
/// Fetches answer progress forever.
const ENDLESS_FETCH: u8 = 1;
/// Everything answers 401.
const REFUSE: u8 = 2;

struct Front {
    url: String,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
    fetches: Arc<AtomicUsize>,
}

fn front(w: &World) -> Front {
    let (mode, requests, fetches) = (
        Arc::new(AtomicU8::new(RELAY)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let inner = w.server.url();
    let url = {
        let (mode, requests, fetches) = (mode.clone(), requests.clone(), fetches.clone());
        serve(move |req| {
            requests.fetch_add(1, Ordering::SeqCst);
            let is_fetch = String::from_utf8_lossy(&req.body).contains("command=fetch");
            if is_fetch {
                fetches.fetch_add(1, Ordering::SeqCst);
            }
            match mode.load(Ordering::SeqCst) {
                REFUSE => http(401, "text/plain", b"who are you"),
                ENDLESS_FETCH if is_fetch => {
                    let mut started = false;
                    endless("application/x-git-upload-pack-result", move |out| {
                        if !started {
                            started = true;
                            return out.write_all(&pkt(b"packfile\n"));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                        out.write_all(&pkt(b"\x02Counting objects\r"))
                    })
                }
                _ => relay(&inner, &req.path, req),
            }
        })
    };
    Front {
        url: format!("{url}/{}", w.repo.name()),
        mode,
        requests,
        fetches,
    }
}

/// Edits the ConfigMap by hand and waits for the agent to put it back.
fn drift_is_corrected(w: &World, agent: &support::agent::AgentProcess, want: &str) {
    kubectl(&[
        "patch",
        "configmap",
        "cfg",
        "-n",
        &w.ns.name,
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"hand-edit"}}"#,
    ]);
    until(agent, "the hand edit corrected", || {
        w.greeting().as_deref() == Some(want)
    });
}

fn healthz(agent: &support::agent::AgentProcess) -> u16 {
    agent
        .http("GET", "/healthz", &[], b"")
        .map_or(0, |(code, _)| code)
}

#[test]
fn a_fetch_that_never_ends_stops_neither_drift_nor_sigterm() {
    let w = World::new("hostile-fetch");
    let f = front(&w);
    w.push("one", 1, "");
    // A long fetch timeout: drift correction must not depend on it.
    let mut agent = w.agent(&["--source", &f.url, "--fetch-timeout", "10m"]);
    w.wait_greeting("one", &agent);

    f.mode.store(ENDLESS_FETCH, Ordering::SeqCst);
    let before = f.fetches.load(Ordering::SeqCst);
    w.push("two", 1, "");
    until(&agent, "the endless fetch started", || {
        f.fetches.load(Ordering::SeqCst) > before
    });
    drift_is_corrected(&w, &agent, "one");
    assert_eq!(healthz(&agent), 200);
    assert!(
        agent
            .logs()
            .contains("correcting drift while the source is busy"),
        "drift ran during the fetch"
    );

    let (code, took) = agent.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
}

#[test]
fn idle_sockets_at_the_admin_port_deny_nothing() {
    let w = World::new("hostile-admin");
    w.push("one", 1, "");
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    let addr = agent_addr(&agent);
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        idle.push(s);
    }
    for round in 0..20 {
        assert_eq!(healthz(&agent), 200, "probe {round}");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        idle.push(s);
    }
    drift_is_corrected(&w, &agent, "one");
    assert_eq!(healthz(&agent), 200);
    drop(idle);
}

/// The admin address of the agent, found from its log line.
fn agent_addr(agent: &support::agent::AgentProcess) -> std::net::SocketAddr {
    let logs = agent.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("hawser starting"))
        .expect("a start line");
    let start = line.find("\"listen\":\"").unwrap() + "\"listen\":\"".len();
    line[start..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn replayed_and_flooding_webhooks_are_worth_one_poll() {
    let w = World::new("hostile-hooks");
    let f = front(&w);
    w.push("one", 1, "");
    let secret = w.dir.path().join("hook-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let agent = w.agent(&[
        "--source",
        &f.url,
        "--interval",
        "1h",
        "--hook-secret-file",
        secret.to_str().unwrap(),
    ]);
    w.wait_greeting("one", &agent);
    let hook = |body: &[u8]| {
        let signature = format!("sha256={}", openssl_hmac("s3cret", body));
        let (code, _) = agent
            .http(
                "POST",
                "/hook",
                &[("X-Hub-Signature-256", &signature)],
                body,
            )
            .unwrap();
        assert_eq!(code, 202);
    };
    let polls = || agent.logs().matches("webhook: polling now").count();

    // One delivery replayed 50 times: one poll.
    let body = br#"{"ref":"refs/heads/main","after":"1"}"#;
    for _ in 0..50 {
        hook(body);
    }
    until(&agent, "the first hook's poll", || polls() == 1);
    w.push("two", 1, "");
    hook(body);
    drift_is_corrected(&w, &agent, "one");
    assert_eq!(polls(), 1, "a replay polled again");
    assert_eq!(
        w.greeting().as_deref(),
        Some("one"),
        "the replay fetched nothing"
    );

    // A source that refuses: 50 distinct deliveries respect the backoff.
    f.mode.store(REFUSE, Ordering::SeqCst);
    let before = f.requests.load(Ordering::SeqCst);
    for i in 0..50 {
        hook(format!(r#"{{"ref":"refs/heads/main","after":"x{i}"}}"#).as_bytes());
    }
    let during = f.requests.load(Ordering::SeqCst) - before;
    assert!(during <= 3, "{during} source requests for 50 hooks");
    let warned = agent.logs().matches("source unreachable").count();
    assert!(warned <= 3, "{warned} warnings for 50 hooks");
    drift_is_corrected(&w, &agent, "one");
    assert_eq!(healthz(&agent), 200);
}

/// HMAC-SHA256 in hex, computed by openssl: an oracle independent of hawser's code.
fn openssl_hmac(key: &str, message: &[u8]) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
