//! Servers that never finish (issue #21, findings 2 and 6), against the real
//! `hawser fetch`: endless progress on side-band 2, a body trickled a byte at a time,
//! and an endless ref advertisement. The real `git http-backend` answers every
//! request the server does not lie about. Each case must end with exit code 2 and
//! one line naming the limit that stopped it, with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;
mod support;

use std::process::{Command, Output};
use std::time::Duration;

use hostile::{Request, endless, pkt, relay, serve};
use support::{GitServer, GitServerOptions, Repo};

struct World {
    git: GitServer,
    repo: Repo,
}

fn world() -> World {
    let git = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&git);
    repo.write("a.yaml", "kind: ConfigMap\n");
    repo.commit("first");
    repo.push();
    World { git, repo }
}

/// A front relaying to the real server, except where `lie` answers.
fn front(
    w: &World,
    lie: impl Fn(&Request) -> Option<hostile::Reply> + Send + Sync + 'static,
) -> String {
    let inner = w.git.url();
    let url = serve(move |req| lie(req).unwrap_or_else(|| relay(&inner, &req.path, req)));
    format!("{url}/{}", w.repo.name())
}

fn is_fetch(req: &Request) -> bool {
    req.method == "POST" && String::from_utf8_lossy(&req.body).contains("command=fetch")
}

fn is_ls_refs(req: &Request) -> bool {
    req.method == "POST" && String::from_utf8_lossy(&req.body).contains("command=ls-refs")
}

fn fetch(url: &str, extra: &[&str]) -> Output {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["fetch", "--source", url, "--out"])
        .arg(out.path().join("snap"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        !out.path().join("snap").exists(),
        "a failed fetch wrote its output"
    );
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(names.is_empty(), "temporary files left behind: {names:?}");
    o
}

fn fails_with(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "{err}");
}

/// `packfile`, then a progress line on band 2 every 50 ms, forever: each one resets
/// the read timeout, so only the deadline ends it.
#[test]
fn endless_progress_is_cut_off_by_the_fetch_timeout() {
    let w = world();
    let url = front(&w, |req| {
        is_fetch(req).then(|| {
            let mut started = false;
            endless("application/x-git-upload-pack-result", move |out| {
                if !started {
                    started = true;
                    return out.write_all(&pkt(b"packfile\n"));
                }
                std::thread::sleep(Duration::from_millis(50));
                out.write_all(&pkt(b"\x02Counting objects: 1\r"))
            })
        })
    });
    let o = fetch(&url, &["--read-timeout", "2", "--fetch-timeout", "3s"]);
    fails_with(&o, "gave up: the fetch-timeout of 3s passed");
}

/// Progress counts toward the pack budget: a server that sends nothing but progress
/// fast is stopped by --max-pack-bytes, long before any deadline.
#[test]
fn progress_bytes_count_toward_the_pack_budget() {
    let w = world();
    let url = front(&w, |req| {
        is_fetch(req).then(|| {
            let mut started = false;
            let line = pkt(&[b"\x02".as_slice(), &[b'.'; 60000]].concat());
            endless("application/x-git-upload-pack-result", move |out| {
                if !started {
                    started = true;
                    return out.write_all(&pkt(b"packfile\n"));
                }
                out.write_all(&line)
            })
        })
    });
    let o = fetch(
        &url,
        &["--max-pack-bytes", "1000000", "--fetch-timeout", "10m"],
    );
    fails_with(&o, "max-pack-bytes limit of");
}

/// One byte every 200 ms: no read ever waits long enough to time out.
#[test]
fn a_trickled_pack_is_cut_off_by_the_fetch_timeout() {
    let w = world();
    let url = front(&w, |req| {
        is_fetch(req).then(|| {
            let body: Vec<u8> = [pkt(b"packfile\n"), pkt(b"\x01PACK\0\0\0\x02\0\0\0\x03")].concat();
            let mut at = 0;
            endless("application/x-git-upload-pack-result", move |out| {
                std::thread::sleep(Duration::from_millis(200));
                at += 1;
                out.write_all(&body[(at - 1) % body.len()..][..1])
            })
        })
    });
    let o = fetch(&url, &["--read-timeout", "2", "--fetch-timeout", "3s"]);
    fails_with(&o, "gave up: the fetch-timeout of 3s passed");
}

/// An endless ref listing (on every poll, not only on a fetch) is stopped by its own
/// limit, named in the error, not by the pack limit.
#[test]
fn an_endless_ref_listing_is_stopped_by_max_ref_bytes() {
    let w = world();
    let url = front(&w, |req| {
        is_ls_refs(req).then(|| {
            let mut n = 0u64;
            endless("application/x-git-upload-pack-result", move |out| {
                n += 1;
                let line = format!("{:040x} refs/tags/t{n}\n", n);
                out.write_all(&pkt(line.as_bytes()))
            })
        })
    });
    let o = fetch(&url, &["--max-ref-bytes", "1000000"]);
    fails_with(&o, "max-ref-bytes limit of 1000000 exceeded");
    let o = fetch(&url, &["--max-refs", "5000"]);
    fails_with(&o, "max-refs limit of 5000 exceeded");
}
