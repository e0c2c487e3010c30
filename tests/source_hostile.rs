//! Hostile and broken servers: a std `TcpListener` answering crafted bytes. Every case
//! runs the real `hawser fetch` and must end with exit code 2, one line on stderr
//! naming the problem, nothing on stdout, and `--out` exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use hostile::{
    Reply, fixture, fixture_pack, git_server, hex, http, http_gzip, object_id, packfile, pkt,
    retrailer, serve,
};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `hawser fetch` into an `--out` that already holds a previous snapshot, and
/// checks that the previous snapshot is still there afterwards.
fn run_fetch(url: &str, extra: &[&str], expect_success: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("previous.yaml"), "kept: true\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["fetch", "--source", url, "--out"])
        .arg(&out)
        .args([
            "--ref",
            "main",
            "--read-timeout",
            "2",
            "--connect-timeout",
            "2",
        ])
        .args(extra)
        .output()
        .unwrap();
    let outcome = Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if !expect_success {
        assert_eq!(outcome.code, 2, "{}", outcome.stderr);
        assert_eq!(outcome.stdout, "");
        assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
        assert!(outcome.stderr.starts_with("hawser: "), "{}", outcome.stderr);
        assert_untouched(dir.path(), &out);
    }
    outcome
}

fn assert_untouched(parent: &Path, out: &Path) {
    let names: Vec<_> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["previous.yaml"]);
    assert_eq!(
        fs::read_to_string(out.join("previous.yaml")).unwrap(),
        "kept: true\n"
    );
    let siblings: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, ["out"], "temporary files left behind");
}

fn fails_with(url: &str, want: &str) {
    let o = run_fetch(url, &[], false);
    assert!(
        o.stderr.contains(want),
        "expected {want:?} in {:?}",
        o.stderr
    );
}

#[test]
fn crafted_pack_with_both_delta_kinds_is_accepted() {
    let f = fixture();
    let url = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    let o = run_fetch(&format!("{url}/r.git"), &[], true);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let json: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(json["revision"], f.commit.as_str());
    assert_eq!(json["files"], 3);
}

#[test]
fn truncated_pack() {
    let f = fixture();
    let p = fixture_pack(&f);
    let url = git_server(f.commit.clone(), packfile(&p[..p.len() / 2]));
    fails_with(
        &format!("{url}/r.git"),
        "invalid pack: trailer checksum mismatch",
    );
}

#[test]
fn bad_trailer() {
    let f = fixture();
    let mut p = fixture_pack(&f);
    *p.last_mut().unwrap() ^= 0xff;
    let url = git_server(f.commit.clone(), packfile(&p));
    fails_with(
        &format!("{url}/r.git"),
        "invalid pack: trailer checksum mismatch",
    );
}

#[test]
fn corrupt_zlib() {
    let f = fixture();
    let mut p = fixture_pack(&f);
    p[15] ^= 0xff; // inside the first entry's deflate data
    let url = git_server(f.commit.clone(), packfile(&retrailer(p)));
    fails_with(&format!("{url}/r.git"), "pack entry at offset 12:");
}

#[test]
fn delta_copying_outside_its_base() {
    let mut f = fixture();
    f.entries[1].payload = vec![35, 30, 0x91, 200, 30]; // copy from offset 200 of 35 bytes
    let url = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    fails_with(
        &format!("{url}/r.git"),
        "invalid delta: copy outside the base object",
    );
}

#[test]
fn delta_declaring_a_wrong_result_size() {
    let mut f = fixture();
    f.entries[1].payload = vec![35, 100, 0x90, 29, 1, b'\n'];
    let url = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    fails_with(
        &format!("{url}/r.git"),
        "invalid delta: result shorter than its declared size",
    );
}

#[test]
fn object_content_not_matching_its_id() {
    let mut f = fixture();
    let original = object_id("blob", &f.entries[0].payload);
    f.entries[0].payload = b"HELLO WORLD, this is the base blob\n".to_vec();
    let url = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    // The tree names the original id, which no object in the pack hashes to.
    fails_with(
        &format!("{url}/r.git"),
        &format!("object {} is missing from the pack", hex(&original)),
    );
}

#[test]
fn pack_without_the_wanted_commit() {
    let f = fixture();
    let url = git_server("1".repeat(40), packfile(&fixture_pack(&f)));
    fails_with(
        &format!("{url}/r.git"),
        &format!("object {} is missing from the pack", "1".repeat(40)),
    );
}

#[test]
fn pkt_line_lengths_that_lie() {
    let f = fixture();
    let mut body = pkt(b"packfile\n");
    body.extend(b"ffff\x01PACK");
    let url = git_server(f.commit.clone(), body);
    fails_with(&format!("{url}/r.git"), "invalid pkt-line length \"ffff\"");
    let mut body = pkt(b"packfile\n");
    body.extend(b"0100\x01PACK");
    let url = git_server(f.commit, body);
    fails_with(&format!("{url}/r.git"), "truncated pkt-line payload");
}

#[test]
fn err_packet_and_side_band_error() {
    let f = fixture();
    let url = git_server(f.commit.clone(), pkt(b"ERR upload-pack: not our ref\n"));
    fails_with(
        &format!("{url}/r.git"),
        "server said: upload-pack: not our ref",
    );
    let mut body = pkt(b"packfile\n");
    body.extend(pkt(b"\x03fatal: the remote end hung up\n"));
    let url = git_server(f.commit, body);
    fails_with(
        &format!("{url}/r.git"),
        "server said: fatal: the remote end hung up",
    );
}

#[test]
fn http_errors_name_the_status() {
    for (status, want) in [
        (
            401,
            "http 401 (authentication required or credentials rejected)",
        ),
        (403, "http 403 (forbidden)"),
        (404, "http 404 (not found)"),
        (500, "http 500 (server error)"),
    ] {
        let url = serve(move |_| http(status, "text/plain", b"no"));
        let o = run_fetch(&format!("{url}/r.git"), &[], false);
        assert_eq!(
            o.stderr.trim_end(),
            format!("hawser: {url}/r.git/info/refs: {want}")
        );
    }
}

#[test]
fn stalled_server_times_out() {
    let url = serve(|_| Reply::Stall);
    let o = run_fetch(&format!("{url}/r.git"), &[], false);
    assert_eq!(
        o.stderr.trim_end(),
        format!("hawser: {url}/r.git/info/refs: timed out")
    );
}

#[test]
fn credentials_in_the_url_are_never_printed() {
    let url = serve(|_| http(403, "text/plain", b"no"));
    let with_creds = url.replace("http://", "http://bob:hunter2@");
    let o = run_fetch(&format!("{with_creds}/r.git"), &[], false);
    assert!(
        !o.stderr.contains("hunter2") && !o.stderr.contains("bob"),
        "{}",
        o.stderr
    );
}

#[test]
fn requests_go_through_the_configured_proxy_unless_no_proxy() {
    let f = fixture();
    // The fake answers absolute-form proxy requests like a Git server would; the
    // source's host does not resolve, so only the proxy can have answered.
    let proxy = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    let o = run_fetch(
        "http://git.example.invalid/r.git",
        &["--https-proxy", &proxy],
        true,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains(&f.commit), "{}", o.stdout);
    run_fetch(
        "http://git.example.invalid/r.git",
        &["--https-proxy", &proxy, "--no-proxy", "git.example.invalid"],
        false,
    );
}

#[test]
fn a_redirected_repository_is_fetched_from_where_it_moved() {
    let server = support::GitServer::start(support::GitServerOptions::default());
    let repo = support::Repo::create(&server);
    repo.write("a.txt", "moved\n");
    let commit = repo.commit("moved");
    repo.push();
    let target = server.repo_url(repo.name());
    let old = serve(move |req| {
        let location = format!("{target}{}", req.path.trim_start_matches("/old.git"));
        let head = format!(
            "HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        Reply::Raw(head.into_bytes())
    });
    // Another port is another origin: followed only when allowed.
    fails_with(&format!("{old}/old.git"), "refused: to another origin");
    let o = run_fetch(
        &format!("{old}/old.git"),
        &["--follow-redirects", "any-origin"],
        true,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains(&commit), "{}", o.stdout);
}

#[test]
fn bearer_token_from_a_file_is_sent_and_never_printed() {
    let f = fixture();
    let inner = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    // Forward to the fake Git server only when the token is there.
    let url = serve(move |req| {
        if !req
            .headers
            .contains("authorization: Bearer t0ken-value\r\n")
            && !req
                .headers
                .contains("Authorization: Bearer t0ken-value\r\n")
        {
            return http(401, "text/plain", b"who are you");
        }
        let (status, content_type, body) = hostile::forward(&inner, req);
        http(status, &content_type, &body)
    });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "t0ken-value\n").unwrap();
    let o = run_fetch(
        &format!("{url}/r.git"),
        &["--bearer-token-file", token.to_str().unwrap()],
        true,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run_fetch(&format!("{url}/r.git"), &[], false);
    assert!(
        o.stderr.contains("http 401") && !o.stderr.contains("t0ken"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_server_that_is_not_smart_http_is_named_as_such() {
    let url = serve(|_| {
        http(
            200,
            "text/plain",
            b"0123456789012345678901234567890123456789\trefs/heads/main\n",
        )
    });
    fails_with(
        &format!("{url}/r.git"),
        "unexpected response: not a smart HTTP git server (content type \"text/plain\")",
    );
}

#[test]
fn gzip_encoded_responses_are_decoded() {
    let f = fixture();
    let inner = git_server(f.commit.clone(), packfile(&fixture_pack(&f)));
    let url = serve(move |req| {
        assert!(
            req.headers
                .to_ascii_lowercase()
                .contains("accept-encoding: gzip"),
            "{}",
            req.headers
        );
        let (status, content_type, body) = hostile::forward(&inner, req);
        http_gzip(status, &content_type, &body)
    });
    let o = run_fetch(&format!("{url}/r.git"), &[], true);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains(&f.commit), "{}", o.stdout);
}
