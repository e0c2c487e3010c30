//! `hawser bundle verify` and `hawser bundle create` against the real tools: keys
//! and signatures from `ssh-keygen`, hostile files as one-line errors, and created
//! bundles checked by `git bundle verify` and `git bundle unbundle`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle_support;
mod support;

use std::fs;
use std::process::Command;

use bundle_support::*;
use hawser::source::Source;
use support::{GitServer, GitServerOptions, git_command, run};

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
