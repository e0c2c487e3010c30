//! `--verify-commits` against a real forge (issue 17): commits signed with an SSH key
//! by the git CLI (`gpg.format=ssh`) are pushed to a real Gitea over its smart HTTP,
//! and `hawser fetch --verify-commits` accepts the signed one, naming its signer, and
//! refuses the unsigned one that follows it, writing nothing. `git verify-commit`,
//! given the same allowed signers, is the oracle for both verdicts.
//!
//! Needs a Gitea binary in `HAWSER_TEST_GITEA` (`tests/gitea/build`); fails saying so
//! without one. No control plane is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gitea/mod.rs"]
mod gitea;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use support::{git_command, run};

const PRINCIPAL: &str = "ops@example.com";

/// An ed25519 key made by ssh-keygen and an `allowed_signers` file trusting it for git.
fn ssh_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", PRINCIPAL, "-f"])
        .arg(&key));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("{PRINCIPAL} namespaces=\"git\" {public}")).unwrap();
    (key, signers)
}

fn git(work: &Path, args: &[&str]) -> String {
    run(git_command(work).args(args))
}

/// Commits `file` (signed with `key` when given) and pushes `main`; returns the id.
fn commit_and_push(work: &Path, key: Option<&Path>, file: &str) -> String {
    std::fs::write(
        work.join(file),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n",
            file.trim_end_matches(".yaml")
        ),
    )
    .unwrap();
    git(work, &["add", "--all"]);
    let mut commit = git_command(work);
    if let Some(key) = key {
        commit
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("user.signingkey={}", key.display()))
            .args(["commit", "--quiet", "-S", "-m", file]);
    } else {
        commit.args(["commit", "--quiet", "-m", file]);
    }
    run(&mut commit);
    git(work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// What `git verify-commit` says of `id` with only `signers` trusted.
fn git_verifies(work: &Path, signers: &Path, id: &str) -> bool {
    git_command(work)
        .args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
        .args(["verify-commit", id])
        .output()
        .unwrap()
        .status
        .success()
}

fn hawser_fetch(source: &str, signers: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args([
            "fetch",
            "--source",
            source,
            "--ref",
            "main",
            "--verify-commits",
            "--trusted-keys",
        ])
        .arg(signers)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn commits_served_by_gitea_are_verified_as_git_verifies_them() {
    let gitea = gitea::start(&gitea::bin());
    let created = gitea.post(
        "/user/repos",
        json!({ "name": "signed", "private": false, "auto_init": false }),
    );
    assert_eq!(created["name"], "signed", "{created:#}");

    let dir = tempfile::tempdir().unwrap();
    let (key, signers) = ssh_key(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(
        &work,
        &[
            "remote",
            "add",
            "origin",
            &gitea.repo_url_with_token("signed"),
        ],
    );
    let source = gitea.repo_url("signed");

    // Signed: git verifies it, and so does hawser, naming the key's principal.
    let signed = commit_and_push(&work, Some(&key), "one.yaml");
    assert!(
        git_verifies(&work, &signers, &signed),
        "git verify-commit refuses the signed fixture"
    );
    let out = dir.path().join("out-signed");
    let fetched = hawser_fetch(&source, &signers, &out);
    let stdout = String::from_utf8_lossy(&fetched.stdout);
    assert!(
        fetched.status.success(),
        "hawser refused a signed commit git accepts: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(
        stdout.contains(&signed) && stdout.contains(PRINCIPAL),
        "fetch names neither the commit nor its signer: {stdout}"
    );
    assert!(
        out.join("one.yaml").is_file(),
        "the verified snapshot was not written"
    );

    // Unsigned, on top of it: git refuses it, hawser refuses it with one line naming
    // the commit, and writes nothing.
    let unsigned = commit_and_push(&work, None, "two.yaml");
    assert!(
        !git_verifies(&work, &signers, &unsigned),
        "git verify-commit accepts the unsigned fixture"
    );
    let out = dir.path().join("out-unsigned");
    let refused = hawser_fetch(&source, &signers, &out);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an unsigned commit was fetched: {stderr}"
    );
    assert!(
        stderr.contains(&format!("commit {unsigned} is unsigned")),
        "unclear refusal: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "the error is not one line: {stderr}"
    );
    assert!(!out.exists(), "a refused fetch wrote {}", out.display());
}
