//! A source that rate-limits: a poll answered `429 Too Many Requests` with
//! `Retry-After` is not repeated before the named time, then succeeds. Against the
//! tests' real Git server (`tests/env/gitserver.py --throttle-file`), which answers
//! every request in its window with 429: an agent that came back early would be
//! refused again, so exactly one 429 in the log shows that it waited long enough.
//! The agent's own backoff after a first failure is 2 s, shorter than the 5 s asked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::agent::AgentProcess;
use support::world::{World, until};

const ASKED_S: u64 = 5;

#[test]
fn a_git_poll_waits_as_long_as_a_429_asks_then_succeeds() {
    let w = World::new("throttled-git");
    w.push("one", 0, "");
    w.server.clear_requests();
    w.server.throttle(ASKED_S);
    let agent = w.agent(&[]);
    w.wait_greeting("one", &agent);
    assert_waited_once(&w, &agent);
}

#[test]
fn a_tarball_poll_waits_as_long_as_a_429_asks_then_succeeds() {
    let w = World::new("throttled-tarball");
    let commit = w.push("one", 0, "");
    let tarball =
        support::run_bytes(
            w.repo
                .command()
                .args(["archive", "--format=tar.gz", &commit]),
        );
    std::fs::write(w.server.files_dir().join("app.tar.gz"), tarball).unwrap();
    w.server.clear_requests();
    w.server.throttle(ASKED_S);
    let cache = w.dir.path().join("cache").display().to_string();
    let url = w.server.file_url("app.tar.gz");
    let args = [
        "--source",
        url.as_str(),
        "--namespace",
        &w.ns.name,
        "--interval",
        "1s",
        "--cache-dir",
        &cache,
    ];
    let agent = AgentProcess::start(&args, &w.kubeconfig, &w.dir.path().join("agent.log"));
    w.wait_greeting("one", &agent);
    assert_waited_once(&w, &agent);
}

/// One 429, then answers: the agent's second request came after the window.
fn assert_waited_once(w: &World, agent: &AgentProcess) {
    let requests = w.server.requests();
    let throttled: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].status == 429)
        .collect();
    assert_eq!(
        throttled.len(),
        1,
        "the agent came back within the {ASKED_S} s it was asked to wait: {requests:#?}"
    );
    assert_eq!(
        throttled[0], 0,
        "the first poll is the throttled one: {requests:#?}"
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| (200..300).contains(&r.status) || r.status == 304),
        "after the wait the poll and fetch succeed: {requests:#?}"
    );
    until(agent, "the 429 logged with the wait asked", || {
        agent.logs().contains(&format!(
            "http 429 (too many requests); the server asked to wait {ASKED_S}s"
        ))
    });
}
