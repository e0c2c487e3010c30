//! Proves the test Git server is real: git's own `http-backend` answering
//! protocol v2 and v0, pushes and clones through it, basic auth, TLS with the
//! test CA, static files with conditional requests, outages and the request
//! log. Every test starts its own server and repository.

// Test code: the no-unwrap rule guards the agent. clippy's
// allow-unwrap-in-tests covers #[test] functions but not their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::path::Path;

use support::{
    GitServer, GitServerOptions, Repo, assert_same_tree, base64, compare_trees, parse_pkt_lines,
    pkt_line, run,
};

const UPLOAD_PACK_REQUEST: &str = "application/x-git-upload-pack-request";
const UPLOAD_PACK_RESULT: &str = "application/x-git-upload-pack-result";
const UPLOAD_PACK_ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";

/// A protocol v2 `ls-refs` request body, built by hand.
fn ls_refs_body(prefix: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(pkt_line(b"command=ls-refs\n"));
    body.extend(pkt_line(b"object-format=sha1\n"));
    body.extend_from_slice(b"0001");
    body.extend(pkt_line(b"peel\n"));
    body.extend(pkt_line(b"symrefs\n"));
    body.extend(pkt_line(format!("ref-prefix {prefix}\n").as_bytes()));
    body.extend_from_slice(b"0000");
    body
}

struct HttpReply {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn reply(resp: ureq::http::Response<ureq::Body>) -> HttpReply {
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = resp.into_body().read_to_vec().unwrap();
    HttpReply {
        status,
        content_type,
        headers,
        body,
    }
}

/// POSTs `body` to `<repo>/git-upload-pack` as protocol v2.
fn upload_pack_v2(server: &GitServer, repo: &str, body: &[u8], gzip: bool) -> HttpReply {
    let mut req = server
        .http_agent()
        .post(format!("{}/git-upload-pack", server.repo_url(repo)))
        .header("Git-Protocol", "version=2")
        .header("Content-Type", UPLOAD_PACK_REQUEST)
        .header("Accept", UPLOAD_PACK_RESULT);
    if let Some(auth) = server.authorization() {
        req = req.header("Authorization", auth);
    }
    let resp = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body).unwrap();
        req.header("Content-Encoding", "gzip")
            .send(&enc.finish().unwrap()[..])
    } else {
        req.send(body)
    };
    reply(resp.unwrap())
}

/// GETs `<repo>/info/refs?service=git-upload-pack`, as v2 when `v2`.
fn info_refs(server: &GitServer, repo: &str, v2: bool) -> HttpReply {
    let mut req = server.http_agent().get(format!(
        "{}/info/refs?service=git-upload-pack",
        server.repo_url(repo)
    ));
    if v2 {
        req = req.header("Git-Protocol", "version=2");
    }
    if let Some(auth) = server.authorization() {
        req = req.header("Authorization", auth);
    }
    reply(req.call().unwrap())
}

/// The `<oid> <refname>[ attrs]` lines of an ls-refs answer.
fn ls_refs_lines(reply: &HttpReply) -> Vec<String> {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type, UPLOAD_PACK_RESULT);
    let packets = parse_pkt_lines(&reply.body);
    assert_eq!(
        packets.last(),
        Some(&None),
        "ls-refs answer ends with a flush"
    );
    packets
        .into_iter()
        .flatten()
        .map(|p| String::from_utf8(p).unwrap().trim_end().to_string())
        .collect()
}

fn payload_texts(body: &[u8]) -> Vec<String> {
    parse_pkt_lines(body)
        .into_iter()
        .flatten()
        .map(|p| String::from_utf8_lossy(&p).trim_end().to_string())
        .collect()
}

/// A repository with one commit on `main`, pushed to the server.
fn pushed_repo(server: &GitServer) -> Repo {
    let repo = Repo::create(server);
    repo.write("app/deployment.yaml", "kind: Deployment\n");
    repo.commit("first");
    repo.push();
    repo
}

fn clone_head(server: &GitServer, url: &str, dest: &Path) -> String {
    let parent = dest.parent().unwrap();
    run(server
        .git(parent)
        .args(["clone", "--quiet", url])
        .arg(dest.file_name().unwrap()));
    run(server.git(dest).args(["rev-parse", "HEAD"]))
}

#[test]
fn ls_refs_v2_returns_the_pushed_commit() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let expected = repo.server_rev_parse("refs/heads/main");
    assert_eq!(expected, repo.head());

    let lines = ls_refs_lines(&upload_pack_v2(
        &server,
        repo.name(),
        &ls_refs_body("refs/heads/main"),
        false,
    ));
    assert_eq!(lines, vec![format!("{expected} refs/heads/main")]);
}

#[test]
fn ls_refs_v2_peels_annotated_tags_and_follows_new_pushes() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let first = repo.head();
    let tag = repo.annotated_tag("v1", "release 1");
    repo.tag("light");
    repo.write("app/deployment.yaml", "kind: Deployment\nreplicas: 2\n");
    let second = repo.commit("second");
    repo.push();
    assert_ne!(first, second);
    assert_ne!(tag, first, "an annotated tag is its own object");

    let lines = ls_refs_lines(&upload_pack_v2(
        &server,
        repo.name(),
        &ls_refs_body("refs/"),
        false,
    ));
    assert!(
        lines.contains(&format!("{second} refs/heads/main")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("{tag} refs/tags/v1 peeled:{first}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("{first} refs/tags/light")),
        "{lines:?}"
    );
}

#[test]
fn gzip_encoded_request_bodies_are_inflated_by_the_backend() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let lines = ls_refs_lines(&upload_pack_v2(
        &server,
        repo.name(),
        &ls_refs_body("refs/heads/main"),
        true,
    ));
    assert_eq!(lines, vec![format!("{} refs/heads/main", repo.head())]);
}

#[test]
fn info_refs_advertises_protocol_v2() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let reply = info_refs(&server, repo.name(), true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, UPLOAD_PACK_ADVERTISEMENT);
    let lines = payload_texts(&reply.body);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("version 2"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("ls-refs")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("fetch")), "{lines:?}");
    assert!(
        lines.contains(&"object-format=sha1".to_string()),
        "{lines:?}"
    );
}

#[test]
fn no_v2_server_answers_with_a_v0_advertisement() {
    let server = GitServer::start(GitServerOptions::default().no_v2());
    let repo = pushed_repo(&server);
    let reply = info_refs(&server, repo.name(), true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, UPLOAD_PACK_ADVERTISEMENT);
    let lines = payload_texts(&reply.body);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("# service=git-upload-pack")
    );
    assert!(!lines.iter().any(|l| l == "version 2"), "{lines:?}");
    let head = repo.head();
    // The first ref line carries the capabilities after a NUL.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{head} HEAD\0"))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("{head} refs/heads/main")),
        "{lines:?}"
    );

    // The git CLI falls back to v0 and still clones.
    let tmp = tempfile::tempdir().unwrap();
    let cloned = clone_head(
        &server,
        &server.repo_url(repo.name()),
        &tmp.path().join("c"),
    );
    assert_eq!(cloned, head);
}

#[test]
fn basic_auth_rejects_missing_and_wrong_credentials() {
    let server = GitServer::start(GitServerOptions::default().basic_auth("hawser", "s3cret"));
    let repo = pushed_repo(&server); // pushes with credentials in the URL
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        server.repo_url(repo.name())
    );
    let agent = server.http_agent();

    let anonymous = reply(agent.get(&url).call().unwrap());
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic realm="), "{challenge:?}");

    let wrong = format!("Basic {}", base64(b"hawser:wrong"));
    let wrong = reply(
        agent
            .get(&url)
            .header("Authorization", wrong)
            .call()
            .unwrap(),
    );
    assert_eq!(wrong.status, 401);

    let right = server.authorization().unwrap();
    let right = reply(
        agent
            .get(&url)
            .header("Authorization", right)
            .call()
            .unwrap(),
    );
    assert_eq!(right.status, 200);
    assert_eq!(right.content_type, UPLOAD_PACK_ADVERTISEMENT);

    // The git CLI: without credentials it fails, with them it clones.
    let tmp = tempfile::tempdir().unwrap();
    let denied = server
        .git(tmp.path())
        .args(["clone", "--quiet", &server.repo_url(repo.name()), "denied"])
        .output()
        .unwrap();
    assert!(!denied.status.success());
    let cloned = clone_head(
        &server,
        &server.repo_url_with_auth(repo.name()),
        &tmp.path().join("ok"),
    );
    assert_eq!(cloned, repo.head());

    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&401) && statuses.contains(&200),
        "{statuses:?}"
    );
}

#[test]
fn tls_works_with_the_test_ca_and_only_with_it() {
    let server = GitServer::start(GitServerOptions::default().tls());
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let ca = server.ca_path().unwrap();
    assert!(ca.is_file());
    let repo = pushed_repo(&server); // pushes over HTTPS with GIT_SSL_CAINFO

    let lines = ls_refs_lines(&upload_pack_v2(
        &server,
        repo.name(),
        &ls_refs_body("refs/heads/main"),
        false,
    ));
    assert_eq!(lines, vec![format!("{} refs/heads/main", repo.head())]);

    // A client trusting another CA must refuse the server.
    let other = tempfile::tempdir().unwrap();
    run(std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/make-test-ca"),
    )
    .arg(other.path()));
    let pem = std::fs::read(other.path().join("ca.pem")).unwrap();
    let other_ca = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let distrusting = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[other_ca]))
                    .build(),
            )
            .build(),
    );
    let refused = distrusting
        .get(format!(
            "{}/info/refs?service=git-upload-pack",
            server.repo_url(repo.name())
        ))
        .call();
    assert!(
        refused.is_err(),
        "a foreign CA must not validate the server"
    );

    // git over HTTPS with GIT_SSL_CAINFO (set by server.git()).
    let tmp = tempfile::tempdir().unwrap();
    let cloned = clone_head(
        &server,
        &server.repo_url(repo.name()),
        &tmp.path().join("c"),
    );
    assert_eq!(cloned, repo.head());
}

#[test]
fn static_files_answer_conditional_requests_with_304() {
    let server = GitServer::start(GitServerOptions::default());
    std::fs::create_dir_all(server.files_dir().join("bundles")).unwrap();
    let file = server.files_dir().join("bundles/site.tar.gz");
    std::fs::write(&file, b"first contents").unwrap();
    let url = server.file_url("bundles/site.tar.gz");
    let agent = server.http_agent();

    let first = reply(agent.get(&url).call().unwrap());
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"first contents");
    let etag = first.header("etag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    let last_modified = first.header("last-modified").unwrap().to_string();

    let again = reply(
        agent
            .get(&url)
            .header("If-None-Match", &etag)
            .call()
            .unwrap(),
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let since = reply(
        agent
            .get(&url)
            .header("If-Modified-Since", &last_modified)
            .call()
            .unwrap(),
    );
    assert_eq!(since.status, 304);
    assert!(since.body.is_empty());

    // New contents: the old ETag no longer matches.
    std::fs::write(&file, b"second contents").unwrap();
    let changed = reply(
        agent
            .get(&url)
            .header("If-None-Match", &etag)
            .call()
            .unwrap(),
    );
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, b"second contents");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));

    let missing = reply(agent.get(server.file_url("nope.tar.gz")).call().unwrap());
    assert_eq!(missing.status, 404);
    let escape = reply(
        agent
            .get(server.file_url("%2e%2e/server.log"))
            .call()
            .unwrap(),
    );
    assert_eq!(escape.status, 404, "no escape from the files directory");
}

#[test]
fn clone_through_the_server_reproduces_the_tree() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create_named(&server, "org/cluster.git");
    repo.write("README.md", "cluster state\n");
    repo.write("apps/web/deployment.yaml", "kind: Deployment\n");
    repo.write_executable("scripts/check.sh", "#!/bin/sh\nexit 0\n");
    repo.symlink("current", "apps/web");
    repo.write("binary.bin", [0u8, 159, 146, 150, 255]);
    let head = repo.commit("layout");
    repo.push();

    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("clone");
    let cloned = clone_head(&server, &server.repo_url("org/cluster.git"), &clone);
    assert_eq!(cloned, head);

    let archived = tmp.path().join("archive");
    repo.archive("HEAD", &archived);
    assert_same_tree(&clone, &archived);
    assert_same_tree(repo.work_dir(), &archived);

    // The comparison notices contents, mode, and missing/extra files.
    std::fs::write(clone.join("README.md"), "cluster statE\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        clone.join("scripts/check.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_file(clone.join("binary.bin")).unwrap();
    std::fs::write(clone.join("extra"), "").unwrap();
    let report = compare_trees(&clone, &archived).unwrap_err();
    assert!(report.contains("4 difference(s)"), "{report}");
    assert!(
        report.contains("README.md: contents differ (14 vs 14 bytes, first difference at byte 12)"),
        "{report}"
    );
    assert!(
        report.contains("scripts/check.sh: executable bit differs (left 100644, right 100755)"),
        "{report}"
    );
    assert!(report.contains("only in right: binary.bin"), "{report}");
    assert!(report.contains("only in left: extra"), "{report}");
}

#[test]
fn large_pushes_with_chunked_bodies_round_trip() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    // 3 MiB of incompressible bytes: larger than git's 1 MiB http.postBuffer,
    // so the push body is sent with Transfer-Encoding: chunked.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..3 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    repo.write("blob.bin", &noise);
    let head = repo.commit("big");
    repo.push();

    // git may probe with a tiny POST first; the pack is the largest one.
    let push = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/git-receive-pack"))
        .max_by_key(|r| r.request_bytes)
        .unwrap();
    assert_eq!(push.status, 200);
    assert!(push.request_bytes > 3 << 20, "{push:?}");

    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("c");
    assert_eq!(
        clone_head(&server, &server.repo_url(repo.name()), &clone),
        head
    );
    assert_eq!(std::fs::read(clone.join("blob.bin")).unwrap(), noise);
}

#[test]
fn stop_and_restart_keep_the_port_and_the_repositories() {
    let mut server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let port = server.port();
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        server.repo_url(repo.name())
    );

    server.stop();
    assert!(!server.is_running());
    assert!(
        server.http_agent().get(&url).call().is_err(),
        "a stopped server refuses connections"
    );

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    let lines = ls_refs_lines(&upload_pack_v2(
        &server,
        repo.name(),
        &ls_refs_body("refs/heads/main"),
        false,
    ));
    assert_eq!(lines, vec![format!("{} refs/heads/main", repo.head())]);
}

#[test]
fn the_log_counts_request_and_response_bytes() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let before = server.requests().len();
    let body = ls_refs_body("refs/heads/main");
    let answer = upload_pack_v2(&server, repo.name(), &body, false);
    assert_eq!(answer.status, 200);

    let requests = server.requests();
    assert_eq!(requests.len(), before + 1, "one poll, one logged request");
    let poll = requests.last().unwrap();
    assert_eq!(poll.method, "POST");
    assert_eq!(poll.path, format!("/{}/git-upload-pack", repo.name()));
    assert_eq!(poll.status, 200);
    // Headers come on top of the bodies; neither side is tiny or absurd.
    let body_len = body.len() as u64;
    let answer_len = answer.body.len() as u64;
    assert!(
        poll.request_bytes > body_len && poll.request_bytes < body_len + 1024,
        "{poll:?}"
    );
    assert!(
        poll.response_bytes > answer_len && poll.response_bytes < answer_len + 1024,
        "{poll:?}"
    );
}

#[test]
fn concurrent_requests_are_served_in_parallel_threads() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    let expected = vec![format!("{} refs/heads/main", repo.head())];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    ls_refs_lines(&upload_pack_v2(
                        &server,
                        repo.name(),
                        &ls_refs_body("refs/heads/main"),
                        false,
                    ))
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
}

#[test]
fn helpers_encode_base64_and_pkt_lines() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded, "base64({plain:?})");
    }
    let body = ls_refs_body("refs/heads/main");
    assert!(body.starts_with(b"0014command=ls-refs\n"));
    assert_eq!(
        parse_pkt_lines(&body),
        vec![
            Some(b"command=ls-refs\n".to_vec()),
            Some(b"object-format=sha1\n".to_vec()),
            None,
            Some(b"peel\n".to_vec()),
            Some(b"symrefs\n".to_vec()),
            Some(b"ref-prefix refs/heads/main\n".to_vec()),
            None,
        ]
    );
}

/// One HTTP/1.1 response read off a raw connection, framing done by hand so
/// the test sees exactly what the server put on the wire.
fn read_raw_response(reader: &mut impl std::io::BufRead) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if status == 304 {
        assert_eq!(get("content-length"), None, "a 304 has no body");
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            assert_eq!(&chunk[size..], b"\r\n");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let len: usize = get("content-length").unwrap().parse().unwrap();
        body.resize(len, 0);
        reader.read_exact(&mut body).unwrap();
    }
    (status, headers, body)
}

#[test]
fn one_keep_alive_connection_carries_every_kind_of_response() {
    use std::io::{BufReader, Read};
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    std::fs::write(server.files_dir().join("a.txt"), b"hello").unwrap();
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let name = repo.name();
    let mut send = |head: String, body: &[u8]| {
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(body).unwrap();
        read_raw_response(&mut reader)
    };

    // Backend response without Content-Length: chunked.
    let (status, headers, body) = send(
        format!(
            "GET /{name}/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(status, 200);
    assert!(headers.contains(&("transfer-encoding".into(), "chunked".into())));
    assert_eq!(
        payload_texts(&body).first().map(String::as_str),
        Some("version 2")
    );

    // Static file: Content-Length; then its 304 without a body.
    let (status, headers, body) = send("GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n".into(), b"");
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
    let etag = headers.iter().find(|(k, _)| k == "etag").unwrap().1.clone();
    let (status, _, body) = send(
        format!("GET /files/a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"),
        b"",
    );
    assert_eq!((status, body.len()), (304, 0));

    // A chunked request body, answered with a chunked response.
    let ls_refs = ls_refs_body("refs/heads/main");
    let mut chunked = format!("{:x}\r\n", 10).into_bytes();
    chunked.extend_from_slice(&ls_refs[..10]);
    chunked.extend_from_slice(format!("\r\n{:x}\r\n", ls_refs.len() - 10).as_bytes());
    chunked.extend_from_slice(&ls_refs[10..]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, _, body) = send(
        format!(
            "POST /{name}/git-upload-pack HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n\
             Content-Type: {UPLOAD_PACK_REQUEST}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        &chunked,
    );
    assert_eq!(status, 200);
    let lines: Vec<String> = payload_texts(&body);
    assert_eq!(lines, vec![format!("{} refs/heads/main", repo.head())]);
    assert_eq!(
        server.requests().len(),
        2 + 4,
        "the push, then our four requests"
    );

    // HTTP/1.0: no chunking; the body ends when the server closes.
    let mut old = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    write!(
        old,
        "GET /{name}/info/refs?service=git-upload-pack HTTP/1.0\r\nGit-Protocol: version=2\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    old.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // The status line names the server's version (1.1), as RFC 9110 allows.
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("transfer-encoding"),
        "{text}"
    );
    assert!(text.contains("version 2"), "{text}");
}

#[test]
fn v2_fetch_with_depth_one_returns_a_valid_pack() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = pushed_repo(&server);
    repo.write("app/service.yaml", "kind: Service\n");
    let head = repo.commit("second");
    repo.push();

    let mut body = Vec::new();
    for line in ["command=fetch\n", "object-format=sha1\n"] {
        body.extend(pkt_line(line.as_bytes()));
    }
    body.extend_from_slice(b"0001");
    for line in [
        "no-progress\n".to_string(),
        "ofs-delta\n".to_string(),
        "deepen 1\n".to_string(),
        format!("want {head}\n"),
        "done\n".to_string(),
    ] {
        body.extend(pkt_line(line.as_bytes()));
    }
    body.extend_from_slice(b"0000");
    let answer = upload_pack_v2(&server, repo.name(), &body, false);
    assert_eq!(answer.status, 200);

    let packets = parse_pkt_lines(&answer.body);
    let mut iter = packets.into_iter();
    assert_eq!(iter.next(), Some(Some(b"shallow-info\n".to_vec())));
    // git 2.39 sends this line without the trailing LF.
    assert_eq!(
        iter.next(),
        Some(Some(format!("shallow {head}").into_bytes()))
    );
    assert_eq!(iter.next(), Some(None), "delim after shallow-info");
    assert_eq!(iter.next(), Some(Some(b"packfile\n".to_vec())));
    let mut pack = Vec::new();
    for packet in iter.flatten() {
        assert_eq!(packet[0], 1, "only pack data (band 1) with no-progress");
        pack.extend_from_slice(&packet[1..]);
    }
    assert_eq!(&pack[..4], b"PACK");
    assert_eq!(&pack[4..8], &[0, 0, 0, 2]);
    // Depth 1: the commit, two trees (root, app/) and two blobs.
    assert_eq!(&pack[8..12], &[0, 0, 0, 5]);

    // git itself accepts the pack (every object well-formed; the parent is
    // missing by design, so no connectivity check) and finds the commit in it.
    let tmp = tempfile::tempdir().unwrap();
    run(support::git_command(tmp.path()).args(["init", "--quiet", "--bare", "check.git"]));
    let check = tmp.path().join("check.git");
    std::fs::write(tmp.path().join("fetched.pack"), &pack).unwrap();
    run(support::git_command(&check)
        .args(["index-pack", "--fsck-objects", "--stdin"])
        .stdin(std::fs::File::open(tmp.path().join("fetched.pack")).unwrap()));
    let kind = run(support::git_command(&check).args(["cat-file", "-t", &head]));
    assert_eq!(kind, "commit");
}
