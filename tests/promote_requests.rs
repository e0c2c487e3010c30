//! What the promotion gate costs the forge, measured: a follower waiting on a
//! canary reads the commit's statuses once per poll of the waiting revision (one
//! GET, whatever the number of canaries) and posts its own `pending` once, not once
//! per poll. The source is git's real `http-backend`, the forge the recording
//! server answering GitHub's combined status with the canary still pending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forge_recorder/mod.rs"]
mod forge_recorder;
mod support;

use forge_recorder::{Server, answer};
use support::world::{World, until};

#[test]
fn a_waiting_follower_reads_once_per_poll_and_posts_pending_once() {
    let w = World::new("promote-requests");
    let pending = r#"{"state":"pending","statuses":[
        {"state":"pending","context":"hawser/canary-1","description":"applying 1 object","created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:00Z"}]}"#;
    let forge = Server::start_with_default(vec![], answer(200, pending));
    let token_file = w.dir.path().join("forge-token");
    std::fs::write(&token_file, "ghp_hawserTestToken0123456789\n").unwrap();
    let v1 = w.push("one", 1, "");
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
        "follower",
        "--promote-after",
        "hawser/canary-1,hawser/canary-2",
    ]);
    // Polls are the source's ls-refs requests: nothing is fetched while waiting.
    let polls = || {
        w.server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/git-upload-pack"))
            .count()
    };
    until(&agent, "eight polls of the waiting revision", || {
        polls() >= 8
    });
    // The forge first: every read follows its poll, so reads <= polls.
    let requests = forge.requests();
    let seen_polls = polls();
    let reads: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    eprintln!(
        "measured: {seen_polls} polls, {} status reads, {} status posts",
        reads.len(),
        posts.len()
    );
    assert!(
        reads.len() <= seen_polls && reads.len() + 1 >= seen_polls,
        "one read per poll: {} reads for {seen_polls} polls",
        reads.len()
    );
    for read in &reads {
        assert_eq!(
            read.target,
            format!("/repos/acme/fleet/commits/{v1}/status?per_page=100")
        );
    }
    assert_eq!(posts.len(), 1, "pending once: {posts:#?}");
    assert_eq!(posts[0].body["state"], "pending");
    assert_eq!(
        posts[0].body["description"],
        "waiting for hawser/canary-1 (pending), hawser/canary-2 (no status yet)"
    );
    assert_eq!(w.greeting(), None, "nothing applied while waiting");
}
