//! The bundle source and `hawser bundle create|verify` against the real tools:
//! bundles written by `git bundle create`, signed by `ssh-keygen -Y sign`, checked
//! by `git bundle verify`, and trees compared with `git archive` byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hawser::source::bundle::BundleOptions;
use hawser::source::bundle::sign::TrustedKeys;
use hawser::source::{
    HttpOptions, Limits, Revision, Source, SourceError, SourceKind, SourceSpec, atomic,
};
use support::{GitServer, GitServerOptions, Repo, assert_same_tree, git_command, run};
use tempfile::TempDir;

/// Two ed25519 keys: `trusted` (in `allowed`) and `other` (not).
struct Keys {
    dir: TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        for name in ["trusted", "other"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.path().join(name)));
        }
        let public = fs::read_to_string(dir.path().join("trusted.pub")).unwrap();
        fs::write(
            dir.path().join("allowed"),
            format!("ops@example.com namespaces=\"hawser-bundle\" {public}"),
        )
        .unwrap();
        Keys { dir }
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn allowed(&self) -> PathBuf {
        self.key("allowed")
    }

    /// `ssh-keygen -Y sign -n hawser-bundle`, writing `<file>.sig`.
    fn sign(&self, key: &str, file: &Path) {
        let _ = fs::remove_file(sig(file));
        run(Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "hawser-bundle", "-f"])
            .arg(self.key(key))
            .arg(file));
    }

    fn options(&self) -> BundleOptions {
        BundleOptions {
            trusted_keys: Some(TrustedKeys::load(&self.allowed()).unwrap()),
            ..BundleOptions::default()
        }
    }
}

fn sig(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", file.display()))
}

/// `git bundle create [--options] <out> <revs>` in the repository's work tree.
fn git_bundle(repo: &Repo, out: &Path, args: &[&str]) {
    let (options, revs): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with("--"));
    let mut cmd = repo.command();
    cmd.args(["bundle", "create", "--quiet"])
        .args(options)
        .arg(out)
        .args(revs);
    run(&mut cmd);
}

fn hawser(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `hawser bundle verify` expecting success; returns the JSON line.
fn verify_ok(file: &Path, allowed: &Path, reference: &str) -> serde_json::Value {
    let out = hawser(&[
        "bundle",
        "verify",
        file.to_str().unwrap(),
        "--trusted-keys",
        allowed.to_str().unwrap(),
        "--ref",
        reference,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify {file:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `hawser <args>` expecting exit 2 and a single `hawser: …` line on stderr.
fn one_line_error(args: &[&str]) -> String {
    let out = hawser(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with("hawser: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

/// A bundle source for `HEAD`: the `HEAD` reference, or the only one there is.
fn spec(location: &str, options: BundleOptions) -> SourceSpec {
    SourceSpec {
        url: location.to_string(),
        kind: SourceKind::Bundle,
        reference: "HEAD".into(),
        path: None,
        sha256: None,
        sha256_from_url: false,
        http: HttpOptions {
            read_timeout: Duration::from_secs(30),
            ..HttpOptions::default()
        },
        limits: Limits::default(),
        bundle: options,
    }
}

/// Fetches `revision` and compares the tree with `git archive`.
fn fetch_and_compare(source: &Source, revision: &Revision, repo: &Repo) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot");
    let snapshot = atomic::replace_dir(&out, |tmp| source.fetch(revision, tmp)).unwrap();
    assert_eq!(snapshot.revision(), revision);
    let expected = dir.path().join("expected");
    repo.archive(revision.as_str(), &expected);
    assert_same_tree(&out, &expected);
}

/// A repository with two commits of varied content; returns (old, new) ids.
fn two_commits(server: &GitServer) -> (Repo, String, String) {
    let repo = Repo::create(server);
    repo.write("deploy.yaml", "kind: Deployment\n");
    repo.write("dir/nested/cm.yaml", "kind: ConfigMap\n");
    repo.write_executable("bin/run.sh", "#!/bin/sh\necho hi\n");
    repo.symlink("link.yaml", "deploy.yaml");
    let old = repo.commit("first");
    repo.write("deploy.yaml", "kind: Deployment\nmetadata: {name: x}\n");
    repo.write("dir/new.yaml", "kind: Service\n");
    let new = repo.commit("second");
    (repo, old, new)
}

fn is_bundle_error(err: &SourceError, needle: &str) -> bool {
    matches!(err, SourceError::Bundle { .. }) && err.to_string().contains(needle)
}

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
fn signatures_by_untrusted_keys_or_for_other_namespaces_are_refused() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, _, _) = two_commits(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.bundle");
    git_bundle(&repo, &file, &["main"]);
    keys.sign("other", &file);
    let path = file.to_str().unwrap();
    let allowed = keys.allowed();
    let allowed = allowed.to_str().unwrap();
    let err = one_line_error(&["bundle", "verify", path, "--trusted-keys", allowed]);
    assert!(err.contains("not a trusted key for hawser-bundle"), "{err}");
    // Explicitly insecure, an untrusted signature counts as none (deleting the .sig
    // would have the same effect); no signer is claimed.
    let out = hawser(&[
        "bundle",
        "verify",
        path,
        "--trusted-keys",
        allowed,
        "--insecure-allow-unsigned",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["signer"], serde_json::Value::Null);

    let _ = fs::remove_file(sig(&file));
    run(Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "git", "-f"])
        .arg(keys.key("trusted"))
        .arg(&file));
    let err = one_line_error(&["bundle", "verify", path, "--trusted-keys", allowed]);
    assert!(err.contains("namespace \"git\""), "{err}");

    let _ = fs::remove_file(sig(&file));
    let err = one_line_error(&["bundle", "verify", path, "--trusted-keys", allowed]);
    assert!(err.contains("--insecure-allow-unsigned"), "{err}");
    // Explicitly insecure: accepted, and said so.
    let out = hawser(&["bundle", "verify", path, "--insecure-allow-unsigned"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["signer"], serde_json::Value::Null);
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

/// Rewrites the pack's object count and fixes its trailer, so only the count lies.
fn lie_about_count(bundle: &[u8], delta: i64) -> Vec<u8> {
    use sha1_checked::{Digest, Sha1};
    let start = bundle.windows(5).position(|w| w == b"\nPACK").unwrap() + 1;
    let mut out = bundle[..bundle.len() - 20].to_vec();
    let count = u32::from_be_bytes(out[start + 8..start + 12].try_into().unwrap());
    let lie = (i64::from(count) + delta) as u32;
    out[start + 8..start + 12].copy_from_slice(&lie.to_be_bytes());
    let trailer = Sha1::digest(&out[start..]);
    out.extend_from_slice(&trailer);
    out
}

/// An incremental bundle in which every file changed: git packs it `--thin`, so
/// the new blobs are deltas against the prerequisite's blobs.
fn thin_bundle(dir: &Path) -> Vec<u8> {
    let work = dir.join("thin");
    run(git_command(dir)
        .args(["init", "--quiet", "--initial-branch=main"])
        .arg(&work));
    let lines = |n: usize| (0..n).map(|i| format!("line {i}\n")).collect::<String>();
    fs::write(work.join("a"), lines(2000)).unwrap();
    run(git_command(&work).args(["add", "."]));
    run(git_command(&work).args(["commit", "--quiet", "-m", "one"]));
    fs::write(work.join("a"), lines(2001)).unwrap();
    run(git_command(&work).args(["commit", "--quiet", "-am", "two"]));
    let out = dir.join("thin.bundle");
    run(git_command(&work)
        .args(["bundle", "create", "--quiet"])
        .arg(&out)
        .arg("main~1..main"));
    fs::read(out).unwrap()
}

#[test]
fn hostile_headers_and_packs_give_one_line_errors() {
    let server = GitServer::start(GitServerOptions::default());
    let (repo, old, new) = two_commits(&server);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bundle");
    git_bundle(&repo, &good, &["main"]);
    let bytes = fs::read(&good).unwrap();
    let pack_at = bytes.windows(5).position(|w| w == b"\nPACK").unwrap() + 1;
    let pack = &bytes[pack_at..];
    let with_header = |header: String| [header.as_bytes(), pack].concat();
    let incremental = dir.path().join("incremental.bundle");
    git_bundle(&repo, &incremental, &[&format!("{old}..main")]);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "overlong",
            with_header(format!(
                "# v2 git bundle\n{new} refs/heads/{}\n\n",
                "m".repeat(5000)
            )),
            "longer than",
        ),
        (
            "capability",
            with_header(format!(
                "# v3 git bundle\n@bogus=1\n{new} refs/heads/main\n\n"
            )),
            "unknown bundle capability",
        ),
        (
            "sha256",
            with_header(format!(
                "# v3 git bundle\n@object-format=sha256\n{new} refs/heads/main\n\n"
            )),
            "sha1 only",
        ),
        ("not a bundle", pack.to_vec(), "not a git bundle"),
        ("more objects", lie_about_count(&bytes, 1), "fewer objects"),
        (
            "fewer objects",
            lie_about_count(&bytes, -1),
            "bytes after the last object",
        ),
        ("truncated", bytes[..bytes.len() - 7].to_vec(), "pack"),
        (
            "ref not in pack",
            with_header(format!(
                "# v2 git bundle\n{} refs/heads/main\n\n",
                "1".repeat(40)
            )),
            "not in the bundle's pack",
        ),
        (
            "missing tree objects",
            fs::read(&incremental).unwrap(),
            "is incomplete",
        ),
        (
            "thin pack",
            thin_bundle(dir.path()),
            "only the bundle's 1 prerequisites have",
        ),
    ];
    for (name, data, want) in cases {
        let file = dir
            .path()
            .join(format!("{}.bundle", name.replace(' ', "-")));
        fs::write(&file, data).unwrap();
        let path = file.to_str().unwrap();
        let err = one_line_error(&[
            "bundle",
            "verify",
            path,
            "--insecure-allow-unsigned",
            "--ref",
            "main",
        ]);
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn bundle_create_output_is_a_real_git_bundle() {
    let server = GitServer::start(GitServerOptions::default());
    let keys = Keys::new();
    let (repo, old, new) = two_commits(&server);
    repo.git(&["branch", "at-old", &old]);
    repo.annotated_tag("v1", "release one");
    repo.push();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("created.bundle");
    let url = server.repo_url(repo.name());
    let created = hawser(&[
        "bundle",
        "create",
        "--source",
        &url,
        "--ref",
        "main",
        "--out",
        out.to_str().unwrap(),
        "--sign-key",
        keys.key("trusted").to_str().unwrap(),
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(json["commit"], new.as_str());
    assert_eq!(json["prerequisites"][0], old.as_str());
    assert!(sig(&out).is_file());

    // git accepts it where the prerequisite is present, and unbundles it.
    let clone = dir.path().join("clone");
    run(git_command(dir.path())
        .args(["clone", "--quiet", "--single-branch", "--branch", "at-old"])
        .arg(repo.bare_path())
        .arg(&clone))
    .to_string();
    run(git_command(&clone)
        .args(["bundle", "verify", "--quiet"])
        .arg(&out));
    let heads = run(git_command(&clone).args(["bundle", "unbundle"]).arg(&out));
    assert!(heads.starts_with(&new), "{heads}");
    run(git_command(&clone).args(["cat-file", "-e", &format!("{new}^{{tree}}")]));

    // Without the prerequisite, git says what is missing.
    let empty = dir.path().join("empty");
    run(git_command(dir.path())
        .args(["init", "--quiet"])
        .arg(&empty));
    let out_git = git_command(&empty)
        .args(["bundle", "verify"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!out_git.status.success());
    let stderr = String::from_utf8_lossy(&out_git.stderr);
    assert!(
        stderr.contains("lacks these prerequisite commits"),
        "{stderr}"
    );
    assert!(stderr.contains(&old), "{stderr}");

    // hawser accepts it: the whole tree is there, the history is not needed.
    let json = verify_ok(&out, &keys.allowed(), "main");
    assert_eq!(json["commit"], new.as_str());
    assert_eq!(json["prerequisites"], 1);
    let source = Source::new(spec(out.to_str().unwrap(), keys.options())).unwrap();
    let revision = source.resolve().unwrap();
    fetch_and_compare(&source, &revision, &repo);

    // A short tag name is listed by its full name, the annotated tag peeled.
    let tagged = dir.path().join("tagged.bundle");
    hawser_create(&url, "v1", &tagged, &keys);
    let json = verify_ok(&tagged, &keys.allowed(), "v1");
    assert_eq!(
        (json["ref"].as_str(), json["commit"].as_str()),
        (Some("refs/tags/v1"), Some(new.as_str()))
    );
    let err = one_line_error(&[
        "bundle",
        "create",
        "--source",
        &url,
        "--ref",
        "nope",
        "--out",
        tagged.to_str().unwrap(),
    ]);
    assert!(err.contains("ref nope not found"), "{err}");
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
    assert_eq!(json["files"], 2);
    let expected = dir.path().join("expected");
    repo.archive(&format!("{new}:dir"), &expected);
    assert_same_tree(&out, &expected);

    // Without trusted keys a bundle source does not start.
    let err = one_line_error(&[
        "fetch",
        "--source",
        inbox.path().to_str().unwrap(),
        "--resolve-only",
    ]);
    assert!(err.contains("--trusted-keys"), "{err}");
}

/// `hawser bundle create` of `reference` from `url`, signed by the trusted key.
fn hawser_create(url: &str, reference: &str, out: &Path, keys: &Keys) {
    let created = hawser(&[
        "bundle",
        "create",
        "--source",
        url,
        "--ref",
        reference,
        "--out",
        out.to_str().unwrap(),
        "--sign-key",
        keys.key("trusted").to_str().unwrap(),
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
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
