//! The tarball source against the test server's `/files/` (strong ETag,
//! Last-Modified, 304 on a match), with `git archive` output as real-world archives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::time::Duration;

use hawser::source::{FetchLimits, HttpOptions, Source, SourceError, SourceKind, SourceSpec};
use sha2::{Digest, Sha256};
use support::{GitServer, GitServerOptions, Repo, assert_same_tree};

fn spec(url: &str) -> SourceSpec {
    SourceSpec {
        url: url.to_string(),
        kind: SourceKind::from_url(url),
        reference: "HEAD".into(),
        path: None,
        sha256: None,
        sha256_from_url: false,
        http: HttpOptions::default(),
        limits: FetchLimits::default(),
        bundle: Default::default(),
        oci: Default::default(),
        verify: Default::default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fetch_into(
    source: &Source,
    out: &std::path::Path,
) -> Result<hawser::source::Snapshot, SourceError> {
    let revision = source.resolve()?;
    source.fetch_to(&revision, out)
}

/// A repository with a few files, archived by git as `.tar.gz` into the files dir.
fn git_archive(server: &GitServer, name: &str, kind: &str) -> (Repo, String) {
    let repo = Repo::create(server);
    repo.write("app/deploy.yaml", format!("kind: {kind}\n"));
    repo.write_executable("bin/run", "#!/bin/sh\n");
    repo.write("naïve name.txt", "x\n");
    let commit = repo.commit("archive me");
    let bytes = support::run_bytes(repo.command().args(["archive", "--format=tar.gz", &commit]));
    fs::write(server.files_dir().join(name), bytes).unwrap();
    (repo, commit)
}

#[test]
fn git_archive_revision_and_etag_round_trip() {
    let server = GitServer::start(GitServerOptions::default());
    let (repo, commit) = git_archive(&server, "site.tar.gz", "Deployment");
    let source = Source::new(spec(&server.file_url("site.tar.gz"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let snap = fetch_into(&source, &out).unwrap();
    assert_eq!(snap.revision().as_str(), commit);
    assert_eq!(snap.files(), 3);
    let expected = tempfile::tempdir().unwrap();
    repo.archive(&commit, expected.path());
    assert_same_tree(&out, expected.path());

    // Unchanged: the second poll is a 304 and transfers no body.
    let received = source.bytes_received();
    assert_eq!(source.resolve().unwrap(), *snap.revision());
    assert_eq!(source.bytes_received(), received);
    // The log line can trail the response.
    let last = support::wait_for("the 304 in the server log", Duration::from_secs(10), || {
        server.requests().into_iter().find(|r| r.status == 304)
    });
    assert_eq!(last.method, "GET");
    assert!(last.response_bytes < 400, "{last:?}");

    // Changed: a new archive is downloaded and gets a new revision.
    let (_, second) = git_archive(&server, "site.tar.gz", "StatefulSet");
    assert_ne!(second, commit);
    assert_eq!(source.resolve().unwrap().as_str(), second);
}

#[test]
fn plain_archive_revision_is_its_sha256_and_pins_are_checked() {
    let server = GitServer::start(GitServerOptions::default());
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    b.append_data(&mut h, "conf/a.yaml", &b"a: 1\n\n"[..])
        .unwrap();
    let bytes = b.into_inner().unwrap();
    let digest = hex(&Sha256::digest(&bytes));
    fs::write(server.files_dir().join("plain.tar"), &bytes).unwrap();
    let url = server.file_url("plain.tar");

    let source = Source::new(spec(&url)).unwrap();
    assert_eq!(
        source.resolve().unwrap().as_str(),
        format!("sha256:{digest}")
    );

    let mut pinned = spec(&url);
    pinned.sha256 = Some(digest.clone());
    assert!(Source::new(pinned).unwrap().resolve().is_ok());

    let mut wrong = spec(&url);
    wrong.sha256 = Some("0".repeat(64));
    let err = Source::new(wrong).unwrap().resolve().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: sha256 mismatch: expected {}, got {digest}",
            "0".repeat(64)
        )
    );
    assert!(!err.is_transient());

    // `<url>.sha256` in sha256sum format.
    let mut published = spec(&url);
    published.sha256_from_url = true;
    fs::write(
        server.files_dir().join("plain.tar.sha256"),
        format!("{digest}  plain.tar\n"),
    )
    .unwrap();
    assert!(Source::new(published.clone()).unwrap().resolve().is_ok());
    fs::write(
        server.files_dir().join("plain.tar.sha256"),
        format!("{}  plain.tar\n", "f".repeat(64)),
    )
    .unwrap();
    let err = Source::new(published)
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(err.contains("sha256 mismatch"), "{err}");
}

/// A tar whose single entry has a raw name and type the builder would refuse.
fn hostile_tar(name: &[u8], kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    if let Some(link) = link {
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn traversal_links_and_bombs_are_rejected_and_nothing_is_written() {
    let server = GitServer::start(GitServerOptions::default());
    let cases: Vec<(&str, Vec<u8>, FetchLimits, String)> = vec![
        (
            "dotdot.tar",
            hostile_tar(b"../../etc/cron.d/x", tar::EntryType::Regular, None),
            FetchLimits::default(),
            "archive entry \"../../etc/cron.d/x\" rejected: path contains ..".into(),
        ),
        (
            "abs.tar",
            hostile_tar(b"/etc/passwd", tar::EntryType::Regular, None),
            FetchLimits::default(),
            "archive entry \"/etc/passwd\" rejected: absolute path".into(),
        ),
        (
            "sym.tar",
            hostile_tar(b"evil", tar::EntryType::Symlink, Some("/etc")),
            FetchLimits::default(),
            "archive entry \"evil\" rejected: links are not allowed".into(),
        ),
        (
            "hard.tar",
            hostile_tar(b"hard", tar::EntryType::Link, Some("/etc/shadow")),
            FetchLimits::default(),
            "archive entry \"hard\" rejected: links are not allowed".into(),
        ),
        (
            "bomb.tar.gz",
            bomb(256 << 20),
            FetchLimits {
                max_object_bytes: 8 << 20,
                ..FetchLimits::default()
            },
            "max-object-bytes limit of 8388608 exceeded".into(),
        ),
        (
            "bomb2.tgz",
            bomb(256 << 20),
            FetchLimits {
                max_total_bytes: 8 << 20,
                max_object_bytes: 1 << 30,
                ..FetchLimits::default()
            },
            "max-total-bytes limit of 8388608 exceeded".into(),
        ),
    ];
    for (name, bytes, limits, want) in cases {
        fs::write(server.files_dir().join(name), bytes).unwrap();
        let mut s = spec(&server.file_url(name));
        s.limits = limits;
        let source = Source::new(s).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out: PathBuf = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("old"), "old").unwrap();
        let err = fetch_into(&source, &out).unwrap_err().to_string();
        assert!(err.ends_with(&want), "{name}: {err}");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["out"], "{name}");
        assert_eq!(fs::read_to_string(out.join("old")).unwrap(), "old");
    }
}

/// One file of `size` zeros, gzipped: a few hundred KiB on the wire.
fn bomb(size: u64) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "zeros", std::io::repeat(0).take(size))
        .unwrap();
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() < 1 << 20);
    bytes
}

#[test]
fn cli_prints_one_json_line() {
    let server = GitServer::start(GitServerOptions::default());
    let (_, commit) = git_archive(&server, "cli.tgz", "Deployment");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["fetch", "--source", &server.file_url("cli.tgz"), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        format!(
            "{{\"revision\":\"{commit}\",\"files\":3,\"bytes\":29,\"source\":\"{}\"}}\n",
            server.file_url("cli.tgz")
        )
    );
}
