//! The Git source against git's own `http-backend`, with the git CLI as the oracle:
//! every fetched tree must equal `git archive` of the same commit, byte for byte and
//! mode for mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hawser::source::{
    Auth, FetchLimits, HttpOptions, Revision, Snapshot, Source, SourceError, SourceKind, SourceSpec,
};
use support::{GitServer, GitServerOptions, Repo, assert_same_tree};

fn spec(url: &str, reference: &str) -> SourceSpec {
    SourceSpec {
        url: url.to_string(),
        kind: SourceKind::Git,
        reference: reference.to_string(),
        path: None,
        sha256: None,
        sha256_from_url: false,
        http: HttpOptions {
            read_timeout: Duration::from_secs(30),
            ..HttpOptions::default()
        },
        limits: FetchLimits::default(),
        bundle: Default::default(),
        oci: Default::default(),
        verify: Default::default(),
    }
}

struct Fetched {
    _dir: tempfile::TempDir,
    out: PathBuf,
    snapshot: Snapshot,
}

fn fetch(spec: SourceSpec) -> Result<Fetched, SourceError> {
    let source = Source::new(spec)?;
    let revision = source.resolve()?;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let snapshot = source.fetch_to(&revision, &out)?;
    Ok(Fetched {
        _dir: dir,
        out,
        snapshot,
    })
}

/// Fetches `reference` and checks the tree against `git archive <commit>`.
fn fetch_and_compare(server: &GitServer, repo: &Repo, reference: &str, commit: &str) -> Fetched {
    let fetched = fetch(spec(&server.repo_url(repo.name()), reference))
        .unwrap_or_else(|e| panic!("fetch {reference}: {e}"));
    assert_eq!(fetched.snapshot.revision().as_str(), commit);
    let expected = tempfile::tempdir().unwrap();
    repo.archive(commit, expected.path());
    assert_same_tree(&fetched.out, expected.path());
    fetched
}

#[test]
fn one_file() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("deploy.yaml", "kind: Deployment\n");
    let commit = repo.commit("one file");
    repo.push();
    let f = fetch_and_compare(&server, &repo, "main", &commit);
    assert_eq!((f.snapshot.files(), f.snapshot.bytes()), (1, 17));
    assert_eq!(f.snapshot.source(), server.repo_url(repo.name()));
    assert_eq!(f.snapshot.dir(), f.out);
}

#[test]
fn names_modes_symlinks_binary_and_head() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("dir with space/ünïcødé naïve.yaml", "a: 1\n");
    repo.write("日本/設定.txt", "x");
    repo.write_executable("bin/run.sh", "#!/bin/sh\necho hi\n");
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    repo.write("blob.bin", &binary);
    repo.write("zeros.bin", vec![0u8; 4096]);
    repo.symlink("link-to-run", "bin/run.sh");
    repo.symlink("bin/up", "../dir with space");
    let commit = repo.commit("many kinds");
    repo.push();
    let f = fetch_and_compare(&server, &repo, "HEAD", &commit);
    assert_eq!(f.snapshot.files(), 7);
}

/// `--path` is checked to be a directory of the commit, and the whole tree is kept:
/// render gets the path as a subdirectory, so an overlay there may reach `../base`.
#[test]
fn a_subpath_is_checked_and_the_whole_tree_kept() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("clusters/edge/app.yaml", "kind: A\n");
    repo.write_executable("clusters/edge/hook.sh", "#!/bin/sh\n");
    repo.write("clusters/other/x.yaml", "kind: B\n");
    repo.write("README", "hi\n");
    let commit = repo.commit("layout");
    repo.push();
    let mut s = spec(&server.repo_url(repo.name()), "main");
    s.path = Some("clusters/edge/".into());
    let f = fetch(s).unwrap();
    let expected = tempfile::tempdir().unwrap();
    repo.archive(&commit, expected.path());
    assert_same_tree(&f.out, expected.path());
    assert_eq!(f.snapshot.files(), 4);

    let mut s = spec(&server.repo_url(repo.name()), "main");
    s.path = Some("clusters/nope".into());
    let err = fetch(s).err().unwrap().to_string();
    assert_eq!(
        err,
        format!("path clusters/nope not found in commit {commit}")
    );
    let mut s = spec(&server.repo_url(repo.name()), "main");
    s.path = Some("README".into());
    let err = fetch(s).err().unwrap().to_string();
    assert_eq!(
        err,
        format!("path README in commit {commit} is not a directory")
    );
}

#[test]
fn empty_tree() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let commit = repo.commit("nothing");
    repo.push();
    let f = fetch_and_compare(&server, &repo, "main", &commit);
    assert_eq!((f.snapshot.files(), f.snapshot.bytes()), (0, 0));
    assert_eq!(fs::read_dir(&f.out).unwrap().count(), 0);
}

#[test]
fn ten_thousand_files_in_deep_trees() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    for i in 0..10_000u32 {
        let path = format!(
            "d{}/e{}/f{}/g{}/file-{i}.yaml",
            i % 7,
            i % 11,
            i % 13,
            i % 17
        );
        let full = repo.work_dir().join(&path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, format!("index: {i}\n")).unwrap();
    }
    let commit = repo.commit("ten thousand");
    repo.push();
    let f = fetch_and_compare(&server, &repo, "main", &commit);
    assert_eq!(f.snapshot.files(), 10_000);
}

#[test]
fn fifty_megabyte_file() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    // Incompressible bytes (xorshift), so the pack is about as large as the file.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..50 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    repo.write("big.bin", &data);
    let commit = repo.commit("big");
    repo.push();
    let f = fetch_and_compare(&server, &repo, "main", &commit);
    assert_eq!(f.snapshot.bytes(), 50 << 20);

    let mut s = spec(&server.repo_url(repo.name()), "main");
    s.limits.max_pack_bytes = 10 << 20;
    assert_eq!(
        fetch(s).err().unwrap().to_string(),
        "max-pack-bytes limit of 10485760 exceeded"
    );
    let mut s = spec(&server.repo_url(repo.name()), "main");
    s.limits.max_object_bytes = 1 << 20;
    let err = fetch(s).err().unwrap().to_string();
    assert!(
        err.ends_with("exceeds the max-object-bytes limit of 1048576"),
        "{err}"
    );
}

#[test]
fn tags_lightweight_annotated_and_ambiguous() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("a.txt", "v1\n");
    let first = repo.commit("first");
    repo.tag("light");
    let tag_object = repo.annotated_tag("v1.0.0", "release");
    assert_ne!(tag_object, first);
    repo.git(&["tag", "main"]); // a tag named like the branch
    repo.write("a.txt", "v2\n");
    let second = repo.commit("second");
    repo.push();
    fetch_and_compare(&server, &repo, "v1.0.0", &first);
    fetch_and_compare(&server, &repo, "refs/tags/light", &first);
    fetch_and_compare(&server, &repo, "refs/heads/main", &second);
    let err = fetch(spec(&server.repo_url(repo.name()), "main"))
        .err()
        .unwrap();
    assert!(
        err.to_string().ends_with(
            "ref main is ambiguous (refs/heads/main and refs/tags/main); use the full ref name"
        ),
        "{err}"
    );
    let err = fetch(spec(&server.repo_url(repo.name()), "nope"))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!("{}: ref nope not found", server.repo_url(repo.name()))
    );
    assert!(!err.is_transient());
}

#[test]
fn commit_id_resolves_without_network_and_fetches_by_id() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("a.txt", "old\n");
    let old = repo.commit("old");
    repo.write("a.txt", "new\n");
    repo.commit("new");
    repo.push();
    // Nothing listens on port 9: resolving a commit id must not need the server.
    let offline = Source::new(spec("http://127.0.0.1:9/none.git", &old)).unwrap();
    assert_eq!(offline.resolve().unwrap(), Revision::parse(&old).unwrap());
    fetch_and_compare(&server, &repo, &old, &old);
}

#[test]
fn aggressively_repacked_history_fetches_commits_made_of_deltas() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!(
            "line {i}: a manifest that changes a little at a time\n"
        ));
    }
    let mut commits = Vec::new();
    for round in 0..12 {
        text.push_str(&format!("round {round}\n"));
        repo.write("big.yaml", &text);
        repo.write(&format!("copy-{}.yaml", round % 3), &text[round * 7..]);
        commits.push(repo.commit(&format!("round {round}")));
    }
    repo.push();
    support::run(support::git_command(repo.bare_path()).args([
        "repack",
        "-adfq",
        "--window=250",
        "--depth=50",
    ]));
    // The oracle says the middle commit's big.yaml is stored as a delta on the server.
    let mid = &commits[6];
    let blob = support::run(
        support::git_command(repo.bare_path()).args(["rev-parse", &format!("{mid}:big.yaml")]),
    );
    let packs: Vec<PathBuf> = fs::read_dir(repo.bare_path().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    let verify = support::run(
        support::git_command(repo.bare_path())
            .arg("verify-pack")
            .arg("-v")
            .arg(&packs[0]),
    );
    let line = verify.lines().find(|l| l.starts_with(blob.trim())).unwrap();
    assert_eq!(line.split_whitespace().count(), 7, "not a delta: {line}");
    for commit in [&commits[0], mid, commits.last().unwrap()] {
        fetch_and_compare(&server, &repo, commit, commit);
    }
}

#[test]
fn protocol_v0_fallback() {
    let server = GitServer::start(GitServerOptions::default().no_v2());
    let repo = Repo::create(&server);
    repo.write("x/y.txt", "v0\n");
    repo.write_executable("x/run", "#!/bin/sh\n");
    let commit = repo.commit("v0");
    repo.annotated_tag("v0.1", "v0 tag");
    repo.push();
    fetch_and_compare(&server, &repo, "main", &commit);
    fetch_and_compare(&server, &repo, "v0.1", &commit);
    // v0 resolves from the GET advertisement: one POST per fetch and no ls-refs
    // POSTs (v2 would have made four).
    let polls = polls_logged(&server, 4);
    let posts = polls.iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 2, "{polls:?}");
}

#[test]
fn basic_auth_over_tls_with_a_custom_ca() {
    let server = GitServer::start(
        GitServerOptions::default()
            .tls()
            .basic_auth("alice", "s3cret"),
    );
    let repo = Repo::create(&server);
    repo.write("a.txt", "secret stuff\n");
    let commit = repo.commit("auth");
    repo.push();
    let creds = tempfile::NamedTempFile::new().unwrap();
    fs::write(creds.path(), "alice:s3cret\n").unwrap();
    let url = server.repo_url(repo.name());
    let with = |auth: Option<Auth>, ca: Option<&Path>| {
        let mut s = spec(&url, "main");
        s.http.auth = auth;
        s.http.ca_file = ca.map(Path::to_path_buf);
        s
    };
    let ca = server.ca_path();
    let f = fetch(with(Some(Auth::basic_from_file(creds.path()).unwrap()), ca)).unwrap();
    assert_eq!(f.snapshot.revision().as_str(), commit);

    let err = fetch(with(None, ca)).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("{url}/info/refs: http 401 (authentication required or credentials rejected)")
    );
    let wrong = Auth::Basic {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let err = fetch(with(Some(wrong), ca)).err().unwrap().to_string();
    assert!(err.contains("http 401") && !err.contains("wrong"), "{err}");
    // Without the test CA the built-in roots do not trust the server.
    let creds = Some(Auth::basic_from_file(creds.path()).unwrap());
    let err = fetch(with(creds, None)).err().unwrap();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{url}/info/refs: tls: ")),
        "{err}"
    );
}

#[test]
fn sha256_repositories_are_refused_clearly() {
    let server = GitServer::start(GitServerOptions::default());
    let bare = server.root().join("sha256.git");
    support::run(
        support::git_command(server.root())
            .args(["init", "--quiet", "--bare", "--object-format=sha256"])
            .arg(&bare),
    );
    let url = server.repo_url("sha256.git");
    let err = fetch(spec(&url, "main")).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("{url}: repository uses sha256 object ids; hawser supports sha1 only")
    );
}

/// Adds `count` lightweight tags on HEAD directly in the server's bare repository
/// (one `update-ref --stdin`; pushing 10,000 refs over HTTP takes minutes).
fn many_tags(repo: &Repo, count: u32) {
    let head = repo.head();
    let mut input = String::new();
    for i in 0..count {
        input.push_str(&format!("create refs/tags/release-{i:05} {head}\n"));
    }
    let mut child = support::git_command(repo.bare_path())
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Waits until the server has logged `count` upload-pack requests (the log line can
/// trail the response) and returns them; more than `count` fails.
fn polls_logged(server: &GitServer, count: usize) -> Vec<support::LoggedRequest> {
    let polls = support::wait_for("polls in the server log", Duration::from_secs(10), || {
        let polls: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("git-upload-pack"))
            .collect();
        (polls.len() >= count).then_some(polls)
    });
    assert_eq!(polls.len(), count, "{polls:?}");
    polls
}

/// Request plus response bytes of the last poll.
fn last_exchange(polls: &[support::LoggedRequest]) -> (String, u64) {
    let r = polls.last().unwrap();
    (
        format!("{} {}", r.method, r.path),
        r.request_bytes + r.response_bytes,
    )
}

#[test]
fn ten_thousand_tags_poll_cost_v2_ref_prefix_versus_v0_advertisement() {
    let v2 = GitServer::start(GitServerOptions::default());
    let v0 = GitServer::start(GitServerOptions::default().no_v2());
    let mut costs = Vec::new();
    for server in [&v2, &v0] {
        let repo = Repo::create(server);
        repo.write("a.yaml", "a: 1\n");
        let commit = repo.commit("tagged");
        repo.push();
        many_tags(&repo, 10_000);
        let source = Source::new(spec(&server.repo_url(repo.name()), "main")).unwrap();
        assert_eq!(source.resolve().unwrap().as_str(), commit);
        // The first poll discovers the protocol: v2 needs GET + POST, v0 only the GET.
        let first = if std::ptr::eq(server, &v2) { 2 } else { 1 };
        polls_logged(server, first);
        // The second poll is the steady state: protocol known, one request.
        assert_eq!(source.resolve().unwrap().as_str(), commit);
        let polls = polls_logged(server, first + 1);
        costs.push(last_exchange(&polls));
        let tagged = Source::new(spec(&server.repo_url(repo.name()), "release-09999")).unwrap();
        assert_eq!(tagged.resolve().unwrap().as_str(), commit);
    }
    let ((v2_req, v2_bytes), (v0_req, v0_bytes)) = (&costs[0], &costs[1]);
    eprintln!(
        "unchanged poll, 10,000 tags: v2 `{v2_req}` {v2_bytes} bytes; v0 `{v0_req}` {v0_bytes} bytes"
    );
    assert!(v2_req.starts_with("POST") && v0_req.starts_with("GET"));
    assert!(v2_bytes * 100 < *v0_bytes, "v2 {v2_bytes} vs v0 {v0_bytes}");
}

#[test]
fn submodules_are_skipped_like_git_archive() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("a.txt", "a\n");
    repo.git(&["add", "a.txt"]);
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        "160000,1111111111111111111111111111111111111111,vendor/lib",
    ]);
    // Not `repo.commit`: its `add --all` would drop the gitlink, which has no work tree.
    repo.git(&["commit", "--quiet", "-m", "with a submodule"]);
    let commit = repo.head();
    repo.push();
    let f = fetch_and_compare(&server, &repo, "main", &commit);
    assert_eq!(f.snapshot.files(), 1);
    assert!(f.out.join("vendor/lib").is_dir());
}

#[test]
fn symlinks_leaving_the_snapshot_are_rejected_by_path() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("conf/a.yaml", "a: 1\n");
    repo.symlink("conf/ok", "a.yaml");
    repo.symlink("conf/escape", "../../etc/passwd");
    repo.commit("escape");
    repo.push();
    let err = fetch(spec(&server.repo_url(repo.name()), "main"))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "symlink conf/escape points outside the snapshot"
    );
}

#[test]
fn file_count_and_total_size_limits_name_themselves() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    for i in 0..10 {
        repo.write(&format!("f{i}.txt"), "0123456789");
    }
    repo.commit("ten files");
    repo.push();
    let url = server.repo_url(repo.name());
    let mut s = spec(&url, "main");
    s.limits.max_files = 5;
    assert_eq!(
        fetch(s).err().unwrap().to_string(),
        "max-files limit of 5 exceeded"
    );
    let mut s = spec(&url, "main");
    s.limits.max_total_bytes = 50;
    assert_eq!(
        fetch(s).err().unwrap().to_string(),
        "max-total-bytes limit of 50 exceeded"
    );
}
