//! Hostile and broken servers: a std `TcpListener` answering crafted bytes. Every case
//! runs the real `hawser fetch` and must end with exit code 2, one line on stderr
//! naming the problem, nothing on stdout, and `--out` exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1_checked::{Digest, Sha1};

/// What the fake server does with one request.
enum Reply {
    Raw(Vec<u8>),
    /// Answer nothing and hold the connection until the client gives up.
    Stall,
}

struct Request {
    method: String,
    path: String,
    headers: String,
    body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Serves `handler` on a fresh loopback port; returns the base URL.
fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler: Handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || answer(stream, &handler));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut stream: TcpStream, handler: &Handler) {
    // A proxy client opens a tunnel first (CONNECT); the request then follows on the
    // same connection and is answered like a direct one.
    while let Some(req) = read_request(&mut stream) {
        if req.method == "CONNECT" {
            let _ = stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            continue;
        }
        let mut buf = [0u8; 1];
        match handler(&req) {
            Reply::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
            }
            Reply::Stall => {
                // Blocks until the client closes the connection.
                let _ = stream.read(&mut buf);
            }
        }
        return;
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 1];
    // Byte by byte, so nothing after the request (a tunnelled one) is consumed.
    while !data.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(_) => data.push(buf[0]),
        }
    }
    let head = String::from_utf8_lossy(&data).to_string();
    let mut lines = head.lines();
    let head = head.clone();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers: head,
        body,
    })
}

fn http(status: u16, content_type: &str, body: &[u8]) -> Reply {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    Reply::Raw(out)
}

fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn object_id(kind: &str, data: &[u8]) -> [u8; 20] {
    let mut sha = Sha1::new();
    sha.update(format!("{kind} {}\0", data.len()).as_bytes());
    sha.update(data);
    sha.finalize().into()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// One pack entry: type code, what its header declares, and the raw (uncompressed)
/// payload, plus the extra header bytes of delta entries.
struct Entry {
    code: u8,
    extra: Vec<u8>,
    payload: Vec<u8>,
}

fn entry_header(code: u8, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = (code << 4) | (size & 15) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

/// Builds a pack; returns its bytes and the offset of each entry.
fn pack(entries: &[Entry]) -> (Vec<u8>, Vec<usize>) {
    let mut p = b"PACK\0\0\0\x02".to_vec();
    p.extend((entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(p.len());
        p.extend(entry_header(e.code, e.payload.len()));
        p.extend(&e.extra);
        p.extend(zlib(&e.payload));
    }
    let sum: [u8; 20] = Sha1::digest(&p).into();
    p.extend(sum);
    (p, offsets)
}

fn retrailer(mut p: Vec<u8>) -> Vec<u8> {
    let n = p.len() - 20;
    let sum: [u8; 20] = Sha1::digest(&p[..n]).into();
    p[n..].copy_from_slice(&sum);
    p
}

/// A commit whose tree holds a base blob, a REF_DELTA blob and an OFS_DELTA blob.
struct Fixture {
    commit: String,
    entries: Vec<Entry>,
}

fn fixture() -> Fixture {
    let base = b"hello world, this is the base blob\n".to_vec();
    let by_ref = b"hello world, this is the base\n".to_vec(); // copy 29 bytes + "\n"
    let by_ofs = b"this is the base blob\n".to_vec(); // copy from offset 13
    let ref_delta = vec![base.len() as u8, by_ref.len() as u8, 0x90, 29, 1, b'\n'];
    let ofs_delta = vec![base.len() as u8, by_ofs.len() as u8, 0x91, 13, 22];
    let base_id = object_id("blob", &base);
    let mut tree = Vec::new();
    for (name, data) in [("a.txt", &base), ("b.txt", &by_ref), ("c.txt", &by_ofs)] {
        tree.extend(format!("100644 {name}\0").as_bytes());
        tree.extend(object_id("blob", data));
    }
    let commit = format!(
        "tree {}\nauthor A <a@example.com> 0 +0000\ncommitter A <a@example.com> 0 +0000\n\ncrafted\n",
        hex(&object_id("tree", &tree))
    );
    let commit_id = hex(&object_id("commit", commit.as_bytes()));
    // Offsets: header 12; the OFS_DELTA's base is entry 0.
    let entries = vec![
        Entry {
            code: 3,
            extra: vec![],
            payload: base,
        },
        Entry {
            code: 7,
            extra: base_id.to_vec(),
            payload: ref_delta,
        },
        Entry {
            code: 2,
            extra: vec![],
            payload: tree,
        },
        Entry {
            code: 1,
            extra: vec![],
            payload: commit.into_bytes(),
        },
        Entry {
            code: 6,
            extra: vec![],
            payload: ofs_delta,
        },
    ];
    Fixture {
        commit: commit_id,
        entries,
    }
}

/// The fixture's pack with the OFS_DELTA's back-offset filled in.
fn fixture_pack(f: &Fixture) -> Vec<u8> {
    let (_, offsets) = pack(&f.entries[..4]);
    let last = offsets[3]
        + entry_header(1, f.entries[3].payload.len()).len()
        + zlib(&f.entries[3].payload).len();
    // OFS_DELTA back-offset to entry 0 (at 12), in git's offset varint encoding.
    let mut extra = Vec::new();
    let mut v = last - 12;
    let mut bytes = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        v -= 1;
        bytes.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    bytes.reverse();
    extra.extend(bytes);
    let mut entries: Vec<Entry> = f
        .entries
        .iter()
        .map(|e| Entry {
            code: e.code,
            extra: e.extra.clone(),
            payload: e.payload.clone(),
        })
        .collect();
    entries[4].extra = extra;
    pack(&entries).0
}

/// A server speaking v2 that lists `commit` as main and answers fetch with `body`.
fn git_server(commit: String, fetch_body: Vec<u8>) -> String {
    serve(move |req| {
        if req.method == "GET" && req.path.contains("/info/refs") {
            let mut body = Vec::new();
            for line in [
                "version 2\n",
                "ls-refs\n",
                "fetch=shallow\n",
                "object-format=sha1\n",
            ] {
                body.extend(pkt(line.as_bytes()));
            }
            body.extend(b"0000");
            return http(200, "application/x-git-upload-pack-advertisement", &body);
        }
        let text = String::from_utf8_lossy(&req.body);
        if text.contains("command=ls-refs") {
            let mut body = pkt(format!("{commit} refs/heads/main\n").as_bytes());
            body.extend(b"0000");
            return http(200, "application/x-git-upload-pack-result", &body);
        }
        http(200, "application/x-git-upload-pack-result", &fetch_body)
    })
}

/// `packfile` section carrying `pack` on side-band channel 1.
fn packfile(pack: &[u8]) -> Vec<u8> {
    let mut body = pkt(b"packfile\n");
    for chunk in pack.chunks(65515) {
        let mut data = vec![1u8];
        data.extend_from_slice(chunk);
        body.extend(pkt(&data));
    }
    body.extend(b"0000");
    body
}

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
    let o = run_fetch(&format!("{old}/old.git"), &[], true);
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
        let client = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let target = format!("{inner}{}", req.path);
        let mut resp = if req.method == "GET" {
            client.get(&target).call().unwrap()
        } else {
            client.post(&target).send(&req.body[..]).unwrap()
        };
        let body = resp.body_mut().read_to_vec().unwrap();
        http(
            resp.status().as_u16(),
            "application/x-git-upload-pack-result",
            &body,
        )
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
