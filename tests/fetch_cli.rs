//! `hawser fetch` as users and scripts see it: flags, the JSON line, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::{GitServer, GitServerOptions, Repo};

fn hawser(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("NO_PROXY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn resolve_only_prints_the_revision_and_writes_nothing() {
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    repo.write("a.yaml", "a: 1\n");
    let commit = repo.commit("one");
    repo.push();
    let url = server.repo_url(repo.name());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = hawser(&[
        "fetch",
        "--source",
        &url,
        "--ref",
        "main",
        "--resolve-only",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!("{{\"revision\":\"{commit}\",\"source\":\"{url}\"}}\n")
    );
    assert!(!out.exists());
    // The log line can trail the response: wait for the ls-refs POST, then make sure
    // it is the only one (no fetch).
    let posts = support::wait_for("the ls-refs request", Duration::from_secs(10), || {
        let n = server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("git-upload-pack"))
            .count();
        (n >= 1).then_some(n)
    });
    assert_eq!(posts, 1, "only ls-refs, no fetch");

    let (code, stdout, _) = hawser(&["fetch", "--source", &url, "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["revision"], commit.as_str());
    assert_eq!(json["files"], 1);
    assert_eq!(json["bytes"], 5);
    assert_eq!(json["source"], url.as_str());
}

#[test]
fn configuration_errors_are_one_line_and_exit_2() {
    let (code, stdout, stderr) =
        hawser(&["fetch", "--source", "ftp://x/y", "--out", "/nonexistent/z"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        "hawser: invalid source configuration: --source must be an http:// or https:// URL, got ftp://x/y\n"
    );
    let (code, _, stderr) = hawser(&[
        "fetch",
        "--source",
        "https://h/a.tgz",
        "--sha256",
        "abc",
        "--resolve-only",
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "hawser: invalid source configuration: --sha256 must be 64 hex digits\n"
    );
    let (code, _, stderr) = hawser(&[
        "fetch",
        "--source",
        "https://h/repo",
        "--source-kind",
        "tarball",
        "--ref",
        "main",
        "--resolve-only",
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "hawser: invalid source configuration: --ref and --path apply to git sources only\n"
    );
}

#[test]
fn flags_are_read_from_hawser_environment_variables() {
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    // A commit id resolves without the network, so nothing needs to listen here.
    let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["fetch", "--resolve-only"])
        .env(
            "HAWSER_SOURCE",
            "https://user:pw@git.example.invalid/org/repo.git",
        )
        .env("HAWSER_REF", commit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "{{\"revision\":\"{commit}\",\"source\":\"https://git.example.invalid/org/repo.git\"}}\n"
        )
    );
}
