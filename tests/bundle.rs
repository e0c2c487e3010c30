//! The bundle source against the real tools: bundles written by `git bundle
//! create` and `hawser bundle create`, signed by `ssh-keygen -Y sign`, fetched
//! through the `Source` and compared with `git archive` byte for byte; inboxes,
//! downgrades and bundles over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle_support;
mod support;

use std::fs;
use std::path::Path;

use bundle_support::*;
use hawser::source::{Revision, Source};
use support::{GitServer, GitServerOptions, assert_same_tree};

#[test]
fn git_bundles_signed_by_ssh_keygen_verify_and_fetch() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, _, new) = two_commits(&server);
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.bundle");
    let v3 = dir.path().join("v3.bundle");
    git_bundle(&repo, &v2, &["main"]);
    git_bundle(&repo, &v3, &["--version=3", "main", "HEAD"]);
    for file in [&v2, &v3] {
        keys.sign("trusted", file);
        let json = verify_ok(file, &keys.allowed(), "main");
        assert_eq!(json["commit"], new.as_str());
        assert_eq!(json["ref"], "refs/heads/main");
        assert_eq!(json["signer"], "ops@example.com");
        assert_eq!(json["files"], 5);

        let source = Source::new(spec(file.to_str().unwrap(), keys.options())).unwrap();
        let revision = source.resolve().unwrap();
        assert_eq!(revision.as_str(), new);
        fetch_and_compare(&source, &revision, &repo);
    }
    assert_eq!(verify_ok(&v3, &keys.allowed(), "HEAD")["version"], 3);
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, _, _) = two_commits(&server);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bundle");
    git_bundle(&repo, &good, &["main"]);
    keys.sign("trusted", &good);
    let bytes = fs::read(&good).unwrap();
    let header_len = bytes.windows(5).position(|w| w == b"\nPACK").unwrap();
    for at in [
        0,
        20,
        header_len,
        header_len + 9,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let bad = dir.path().join(format!("flip-{at}.bundle"));
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        fs::write(&bad, &flipped).unwrap();
        fs::copy(sig(&good), sig(&bad)).unwrap();
        let err = one_line_error(&[
            "bundle",
            "verify",
            bad.to_str().unwrap(),
            "--trusted-keys",
            keys.allowed().to_str().unwrap(),
        ]);
        assert!(
            err.contains("does not match the bundle"),
            "byte {at}: {err}"
        );
        let source = Source::new(spec(bad.to_str().unwrap(), keys.options())).unwrap();
        let err = source.resolve().unwrap_err();
        assert!(is_bundle_error(&err, "does not match"), "{err}");
    }
}

#[test]
fn an_older_bundle_after_a_newer_one_is_refused_unless_allowed() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, new) = two_commits(&server);
    let dir = tempfile::tempdir().unwrap();
    let (old_file, new_file) = (dir.path().join("old"), dir.path().join("new"));
    repo.git(&["branch", "at-old", &old]);
    git_bundle(&repo, &old_file, &["at-old"]);
    git_bundle(&repo, &new_file, &["main"]);
    keys.sign("trusted", &old_file);
    keys.sign("trusted", &new_file);
    let delivered = dir.path().join("delivered.bundle");
    let deliver = |from: &Path| {
        fs::copy(from, &delivered).unwrap();
        fs::copy(sig(from), sig(&delivered)).unwrap();
    };

    let source = Source::new(spec(delivered.to_str().unwrap(), keys.options())).unwrap();
    let Source::Bundle(bundle) = &source else {
        panic!("not a bundle source");
    };
    deliver(&new_file);
    let revision = source.resolve().unwrap();
    assert_eq!(revision.as_str(), new);
    fetch_and_compare(&source, &revision, &repo);
    bundle.set_applied(&revision, None);
    assert!(bundle.committer_time(&revision).is_some());

    deliver(&old_file);
    let err = source.resolve().unwrap_err();
    assert!(is_bundle_error(&err, "is older than the applied"), "{err}");
    assert!(err.to_string().contains("--allow-downgrade"), "{err}");
    assert!(!err.is_transient());

    // Re-delivering the applied bundle is a no-op: the same revision again.
    deliver(&new_file);
    assert_eq!(source.resolve().unwrap(), revision);

    let mut options = keys.options();
    options.allow_downgrade = true;
    let lenient = Source::new(spec(delivered.to_str().unwrap(), options)).unwrap();
    let Source::Bundle(b) = &lenient else {
        panic!("not a bundle source");
    };
    b.set_applied(&revision, Some(bundle.committer_time(&revision).unwrap()));
    deliver(&old_file);
    let older = lenient.resolve().unwrap();
    assert_eq!(older.as_str(), old);
    fetch_and_compare(&lenient, &older, &repo);
}

#[test]
fn an_inbox_waits_for_complete_signed_bundles_and_the_newest_wins() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, new) = two_commits(&server);
    let work = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let (old_file, new_file) = (work.path().join("old"), work.path().join("new"));
    repo.git(&["branch", "at-old", &old]);
    git_bundle(&repo, &old_file, &["at-old"]);
    git_bundle(&repo, &new_file, &["main"]);
    keys.sign("trusted", &old_file);
    keys.sign("trusted", &new_file);
    let source = Source::new(spec(inbox.path().to_str().unwrap(), keys.options())).unwrap();

    // Empty inbox: nothing yet, and that is worth retrying.
    let err = source.resolve().unwrap_err();
    assert!(err.is_transient(), "{err}");
    // An inbox that does not exist yet (a mount point to come) waits the same way.
    let later = inbox.path().join("not-mounted-yet");
    let waiting = Source::new(spec(later.to_str().unwrap(), keys.options())).unwrap();
    let err = waiting.resolve().unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("no complete"),
        "{err}"
    );

    // A bundle without its signature yet is ignored.
    let b = inbox.path().join("2-new.bundle");
    fs::copy(&new_file, &b).unwrap();
    assert!(source.resolve().unwrap_err().is_transient());

    // Signature there, bundle still being copied (truncated): ignored.
    let bytes = fs::read(&new_file).unwrap();
    fs::write(&b, &bytes[..bytes.len() / 2]).unwrap();
    fs::copy(sig(&new_file), sig(&b)).unwrap();
    assert!(source.resolve().unwrap_err().is_transient());

    // An older complete bundle is taken meanwhile.
    let a = inbox.path().join("1-old.bundle");
    fs::copy(&old_file, &a).unwrap();
    fs::copy(sig(&old_file), sig(&a)).unwrap();
    assert_eq!(source.resolve().unwrap().as_str(), old);

    // The copy completes: the newest acceptable bundle wins.
    fs::write(&b, &bytes).unwrap();
    let revision = source.resolve().unwrap();
    assert_eq!(revision.as_str(), new);
    fetch_and_compare(&source, &revision, &repo);
    let Source::Bundle(bundle) = &source else {
        panic!("not a bundle source");
    };
    bundle.set_applied(&revision, None);
    assert_eq!(source.resolve().unwrap(), revision);

    // Without --inbox-consume nothing in the inbox was touched.
    let mut names: Vec<_> = fs::read_dir(inbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "1-old.bundle",
            "1-old.bundle.sig",
            "2-new.bundle",
            "2-new.bundle.sig"
        ]
    );
}

#[test]
fn inbox_consume_moves_processed_and_rejected_bundles() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, _) = two_commits(&server);
    let work = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let (old_file, new_file) = (work.path().join("old"), work.path().join("new"));
    repo.git(&["branch", "at-old", &old]);
    git_bundle(&repo, &old_file, &["at-old"]);
    git_bundle(&repo, &new_file, &["main"]);
    keys.sign("trusted", &old_file);
    keys.sign("other", &new_file);
    let mut options = keys.options();
    options.inbox_consume = true;
    let source = Source::new(spec(inbox.path().to_str().unwrap(), options)).unwrap();
    let Source::Bundle(bundle) = &source else {
        panic!("not a bundle source");
    };
    let put = |from: &Path, name: &str| {
        let to = inbox.path().join(name);
        fs::copy(from, &to).unwrap();
        fs::copy(sig(from), sig(&to)).unwrap();
    };

    put(&old_file, "old.bundle");
    put(&new_file, "untrusted.bundle");
    let revision = source.resolve().unwrap();
    assert_eq!(revision.as_str(), old);
    fetch_and_compare(&source, &revision, &repo);
    bundle.set_applied(&revision, None);
    assert!(inbox.path().join("processed/old.bundle").is_file());
    assert!(inbox.path().join("processed/old.bundle.sig").is_file());
    // Refused on two polls unchanged: not a slow copy, so it is rejected.
    assert!(inbox.path().join("untrusted.bundle").is_file());
    assert_eq!(source.resolve().unwrap(), revision);
    assert!(inbox.path().join("rejected/untrusted.bundle").is_file());
    assert!(inbox.path().join("rejected/untrusted.bundle.sig").is_file());
    assert!(!inbox.path().join("untrusted.bundle").exists());
}

#[test]
fn a_bundle_over_https_with_its_signature_beside_it() {
    let files = tempfile::tempdir().unwrap();
    let server = GitServer::start(GitServerOptions::default().files_dir(files.path()));
    let keys = Keys::new();
    let (repo, _, new) = two_commits(&server);
    let file = files.path().join("site.bundle");
    git_bundle(&repo, &file, &["main"]);
    let source = Source::new(spec(&server.file_url("site.bundle"), keys.options())).unwrap();
    let err = source.resolve().unwrap_err();
    assert!(is_bundle_error(&err, "unsigned"), "{err}");

    keys.sign("trusted", &file);
    let revision = source.resolve().unwrap();
    assert_eq!(revision.as_str(), new);
    fetch_and_compare(&source, &revision, &repo);
    // Unchanged: answered by a 304, same revision.
    assert_eq!(source.resolve().unwrap(), revision);
}

#[test]
fn hawser_fetch_takes_an_inbox_and_a_path() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, _, new) = two_commits(&server);
    let inbox = tempfile::tempdir().unwrap();
    let file = inbox.path().join("site.bundle");
    git_bundle(&repo, &file, &["main"]);
    keys.sign("trusted", &file);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot");
    let fetched = hawser(&[
        "fetch",
        "--source",
        inbox.path().to_str().unwrap(),
        "--trusted-keys",
        keys.allowed().to_str().unwrap(),
        "--path",
        "dir",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&fetched.stdout).unwrap();
    assert_eq!(json["revision"], new.as_str());
    // The snapshot is the whole tree (an overlay in --path may reach ../base);
    // --path must name a directory in it.
    let expected = dir.path().join("expected");
    repo.archive(&new, &expected);
    assert_same_tree(&out, &expected);
    assert_eq!(json["files"], count_files(&expected));
    assert!(out.join("dir").is_dir());
    let missing = one_line_error(&[
        "fetch",
        "--source",
        inbox.path().to_str().unwrap(),
        "--trusted-keys",
        keys.allowed().to_str().unwrap(),
        "--path",
        "nope",
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    assert!(missing.contains("path nope not found"), "{missing}");

    // Without trusted keys a bundle source does not start.
    let err = one_line_error(&[
        "fetch",
        "--source",
        inbox.path().to_str().unwrap(),
        "--resolve-only",
    ]);
    assert!(err.contains("--trusted-keys"), "{err}");
}

#[test]
fn without_history_the_committer_time_decides() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, new) = two_commits(&server);
    repo.write("third.yaml", "kind: Secret\n");
    let third = repo.commit("third");
    repo.git(&["branch", "at-old", &old]);
    repo.git(&["branch", "at-new", &new]);
    repo.push();
    let url = server.repo_url(repo.name());
    let dir = tempfile::tempdir().unwrap();
    let (b_new, b_third) = (dir.path().join("new"), dir.path().join("third"));
    hawser_create(&url, "at-new", &b_new, &keys);
    hawser_create(&url, "main", &b_third, &keys);

    let delivered = dir.path().join("delivered.bundle");
    let deliver = |from: &Path| {
        fs::copy(from, &delivered).unwrap();
        fs::copy(sig(from), sig(&delivered)).unwrap();
    };
    let source = Source::new(spec(delivered.to_str().unwrap(), keys.options())).unwrap();
    let Source::Bundle(bundle) = &source else {
        panic!("not a bundle source");
    };
    // The third commit's bundle names the applied one as a prerequisite: a descendant.
    deliver(&b_new);
    let applied = source.resolve().unwrap();
    assert_eq!(applied.as_str(), new);
    bundle.set_applied(&applied, None);
    deliver(&b_third);
    let applied = source.resolve().unwrap();
    assert_eq!(applied.as_str(), third);
    bundle.set_applied(&applied, None);

    // Back to the second: its history stops at the first commit, so time decides.
    deliver(&b_new);
    let err = source.resolve().unwrap_err();
    assert!(err.to_string().contains("committer time"), "{err}");

    // After a restart the applied commit's time is unknown: refused, not guessed.
    let restarted = Source::new(spec(delivered.to_str().unwrap(), keys.options())).unwrap();
    let Source::Bundle(b) = &restarted else {
        panic!("not a bundle source");
    };
    b.set_applied(&Revision::parse(&old).unwrap(), None);
    assert!(
        restarted.resolve().is_ok(),
        "the prerequisite is the applied commit"
    );
    b.set_applied(&Revision::parse(&third).unwrap(), None);
    let err = restarted.resolve().unwrap_err();
    assert!(err.to_string().contains("time is unknown"), "{err}");
}

#[test]
fn in_an_inbox_a_descendant_beats_a_later_bundle_of_another_line() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, new) = two_commits(&server);
    // `side` branches off the first commit and is committed last; `third` follows the
    // applied commit but carries an earlier clock.
    repo.git(&["checkout", "--quiet", "-b", "side", &old]);
    repo.write("side.yaml", "kind: Secret\n");
    repo.commit("side");
    repo.git(&["checkout", "--quiet", "main"]);
    repo.write("third.yaml", "kind: Secret\n");
    repo.git(&["add", "--all"]);
    let mut commit = repo.command();
    commit
        .args(["commit", "--quiet", "-m", "third"])
        .env("GIT_COMMITTER_DATE", "1700000100 +0000");
    support::run(&mut commit);
    let third = repo.head();
    let inbox = tempfile::tempdir().unwrap();
    for (name, rev) in [("side", "side"), ("third", "main")] {
        let file = inbox.path().join(format!("{name}.bundle"));
        git_bundle(&repo, &file, &[rev]);
        keys.sign("trusted", &file);
    }
    let source = Source::new(spec(inbox.path().to_str().unwrap(), keys.options())).unwrap();
    let Source::Bundle(bundle) = &source else {
        panic!("not a bundle source");
    };
    bundle.set_applied(&Revision::parse(&new).unwrap(), None);
    assert_eq!(source.resolve().unwrap().as_str(), third);
}

fn count_files(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}
