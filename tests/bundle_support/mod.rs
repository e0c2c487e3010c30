//! Helpers shared by the bundle integration tests: ssh keys and `ssh-keygen -Y
//! sign`, `git bundle create`, the hawser binary, and bundle sources.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hawser::source::bundle::BundleOptions;
use hawser::source::bundle::sign::TrustedKeys;
use hawser::source::{
    FetchLimits, HttpOptions, Revision, Source, SourceError, SourceKind, SourceSpec, atomic,
};
use tempfile::TempDir;

use crate::support::{GitServer, Repo, assert_same_tree, git_command, run};

/// Two ed25519 keys: `trusted` (in `allowed`) and `other` (not).
pub struct Keys {
    dir: TempDir,
}

impl Keys {
    pub fn new() -> Keys {
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

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn allowed(&self) -> PathBuf {
        self.key("allowed")
    }

    /// `ssh-keygen -Y sign -n hawser-bundle`, writing `<file>.sig`.
    pub fn sign(&self, key: &str, file: &Path) {
        let _ = fs::remove_file(sig(file));
        run(Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "hawser-bundle", "-f"])
            .arg(self.key(key))
            .arg(file));
    }

    pub fn options(&self) -> BundleOptions {
        BundleOptions {
            trusted_keys: Some(TrustedKeys::load(&self.allowed()).unwrap()),
            ..BundleOptions::default()
        }
    }
}

pub fn sig(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", file.display()))
}

/// `git bundle create [--options] <out> <revs>` in the repository's work tree.
pub fn git_bundle(repo: &Repo, out: &Path, args: &[&str]) {
    let (options, revs): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with("--"));
    let mut cmd = repo.command();
    cmd.args(["bundle", "create", "--quiet"])
        .args(options)
        .arg(out)
        .args(revs);
    run(&mut cmd);
}

pub fn hawser(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `hawser bundle verify` expecting success; returns the JSON line.
pub fn verify_ok(file: &Path, allowed: &Path, reference: &str) -> serde_json::Value {
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
pub fn one_line_error(args: &[&str]) -> String {
    let out = hawser(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with("hawser: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

/// A bundle source for `HEAD`: the `HEAD` reference, or the only one there is.
pub fn spec(location: &str, options: BundleOptions) -> SourceSpec {
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
        limits: FetchLimits::default(),
        bundle: options,
        oci: Default::default(),
        verify: Default::default(),
    }
}

/// Fetches `revision` and compares the tree with `git archive`.
pub fn fetch_and_compare(source: &Source, revision: &Revision, repo: &Repo) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot");
    let snapshot = atomic::replace_dir(&out, |tmp| source.fetch(revision, tmp)).unwrap();
    assert_eq!(snapshot.revision(), revision);
    let expected = dir.path().join("expected");
    repo.archive(revision.as_str(), &expected);
    assert_same_tree(&out, &expected);
}

/// A repository with two commits of varied content; returns (old, new) ids.
pub fn two_commits(server: &GitServer) -> (Repo, String, String) {
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

pub fn is_bundle_error(err: &SourceError, needle: &str) -> bool {
    matches!(err, SourceError::Bundle { .. }) && err.to_string().contains(needle)
}

/// Rewrites the pack's object count and fixes its trailer, so only the count lies.
pub fn lie_about_count(bundle: &[u8], delta: i64) -> Vec<u8> {
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
pub fn thin_bundle(dir: &Path) -> Vec<u8> {
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

/// `hawser bundle create` of `reference` from `url`, signed by the trusted key.
pub fn hawser_create(url: &str, reference: &str, out: &Path, keys: &Keys) {
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
