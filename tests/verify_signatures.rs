//! Commit and tag signatures made by the real tools (`git commit -S`, `git tag -s`
//! with `ssh-keygen` keys and GnuPG keys), served by git's own `http-backend`,
//! fetched by the git source with `--verify-commits` / `--verify-tags`. The oracle
//! is `git verify-commit` / `git verify-tag` with the same trusted keys (an
//! `allowed_signers` file and a GnuPG home holding only the trusted public keys):
//! hawser must accept exactly what git accepts, and a refused revision must leave
//! nothing written. Every GnuPG home is a throwaway directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hawser::source::bundle::sign::TrustedKeys;
use hawser::source::{FetchLimits, HttpOptions, Source, SourceError, SourceKind, SourceSpec};
use hawser::verify::{Policy, VerifyError, load_keyring};
use support::{GitServer, GitServerOptions, Repo, run};

/// Keys made once per test: which are trusted is decided by the files below.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// The signer's GnuPG home (every secret key).
    fn signer_home(&self) -> PathBuf {
        self.path("gnupg-signer")
    }
    /// The verifier's GnuPG home: only the trusted public keys (the oracle's).
    fn verifier_home(&self) -> PathBuf {
        self.path("gnupg-verifier")
    }
}

fn gpg(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home).args([
        "--batch",
        "--quiet",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    cmd
}

fn fingerprint(home: &Path, uid: &str) -> String {
    let out = run(gpg(home).args(["--with-colons", "--list-keys", uid]));
    out.lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .map(|f| f.trim_end_matches(':').to_string())
        .unwrap()
}

fn make_keys() -> Keys {
    let keys = Keys {
        dir: tempfile::tempdir().unwrap(),
    };
    let home = keys.signer_home();
    for h in [&home, &keys.verifier_home()] {
        fs::create_dir(h).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut fs::metadata(h).unwrap().permissions(),
            0o700,
        );
        fs::set_permissions(h, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    let gen_key = |uid: &str, algo: &str, usage: &str, expire: &str| {
        run(gpg(&home).args(["--quick-gen-key", uid, algo, usage, expire]));
    };
    gen_key("RSA Signer <rsa@example.com>", "rsa3072", "sign", "never");
    gen_key("Ed Signer <ed@example.com>", "ed25519", "sign", "never");
    // A certification-only primary that signs with its subkey.
    gen_key("Sub Signer <sub@example.com>", "ed25519", "cert", "never");
    let sub_fpr = fingerprint(&home, "sub@example.com");
    run(gpg(&home).args(["--quick-add-key", &sub_fpr, "ed25519", "sign", "never"]));
    // Made in 2020 to expire a day later.
    run(gpg(&home).args([
        "--faked-system-time",
        "20200101T000000",
        "--quick-gen-key",
        "Old Signer <old@example.com>",
        "ed25519",
        "sign",
        "1d",
    ]));
    gen_key(
        "Revoked Signer <revoked@example.com>",
        "ed25519",
        "sign",
        "never",
    );
    gen_key(
        "Stranger <stranger@example.com>",
        "ed25519",
        "sign",
        "never",
    );

    // The trusted file: everything but the stranger; the revoked key with its
    // revocation (gpg wrote the certificate at key generation).
    let revoked = fingerprint(&home, "revoked@example.com");
    let rev_cert =
        fs::read_to_string(home.join(format!("openpgp-revocs.d/{revoked}.rev"))).unwrap();
    let rev_path = keys.path("revoke.asc");
    fs::write(&rev_path, rev_cert.replace(":-----BEGIN", "-----BEGIN")).unwrap();
    // Export the revoked key once more after importing the revocation into a copy.
    let revoked_home = keys.path("gnupg-revoked");
    fs::create_dir(&revoked_home).unwrap();
    fs::set_permissions(
        &revoked_home,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let pub_path = keys.path("revoked-pub.asc");
    fs::write(&pub_path, run_bytes_export(&home, "revoked@example.com")).unwrap();
    run(gpg(&revoked_home).arg("--import").arg(&pub_path));
    run(gpg(&revoked_home).arg("--import").arg(&rev_path));
    let mut trusted_text = Vec::new();
    for uid in ["rsa@", "ed@", "sub@", "old@"] {
        trusted_text.extend(run_bytes_export(&home, &format!("<{uid}example.com>")));
    }
    trusted_text.extend(run_bytes_export(&revoked_home, "revoked@example.com"));
    fs::write(keys.path("trusted.asc"), &trusted_text).unwrap();
    run(gpg(&keys.verifier_home())
        .arg("--import")
        .arg(keys.path("trusted.asc")));

    // SSH keys: ed25519 and RSA trusted for git, one trusted only for `file`, one not
    // listed at all.
    let mut signers = String::new();
    for (name, kind, line) in [
        ("ssh-ed", "ed25519", Some("ed@example.com")),
        ("ssh-rsa", "rsa", Some("rsa@example.com")),
        ("ssh-file", "ed25519", None),
        ("ssh-stranger", "ed25519", None),
    ] {
        let key = keys.path(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&key));
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        match (name, line) {
            (_, Some(principal)) => {
                signers.push_str(&format!("{principal} namespaces=\"git\" {public}"))
            }
            ("ssh-file", None) => {
                signers.push_str(&format!("file@example.com namespaces=\"file\" {public}"))
            }
            _ => {}
        }
    }
    fs::write(keys.path("allowed_signers"), signers).unwrap();
    keys
}

fn run_bytes_export(home: &Path, uid: &str) -> Vec<u8> {
    support::run_bytes(gpg(home).args(["--armor", "--export", uid]))
}

/// How a fixture was signed.
#[derive(Clone, Copy)]
enum Signing<'a> {
    None,
    Ssh(&'a str),
    Gpg(&'a str),
    /// gpg with its clock set back (for the key that has since expired).
    GpgAt(&'a str, &'a str),
}

fn sign_args(keys: &Keys, signing: Signing<'_>) -> Vec<String> {
    match signing {
        Signing::None => vec![],
        Signing::Ssh(name) => vec![
            "-c".into(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", keys.path(name).display()),
        ],
        Signing::Gpg(uid) => vec!["-c".into(), format!("user.signingkey={uid}")],
        Signing::GpgAt(uid, time) => {
            let wrapper = keys.path("gpg-at");
            fs::write(
                &wrapper,
                format!("#!/bin/sh\nexec gpg --faked-system-time {time} \"$@\"\n"),
            )
            .unwrap();
            fs::set_permissions(
                &wrapper,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            vec![
                "-c".into(),
                format!("user.signingkey={uid}"),
                "-c".into(),
                format!("gpg.program={}", wrapper.display()),
            ]
        }
    }
}

fn git_signed(repo: &Repo, keys: &Keys, signing: Signing<'_>, args: &[&str]) -> String {
    let mut cmd = repo.command();
    cmd.env("GNUPGHOME", keys.signer_home());
    cmd.args(sign_args(keys, signing));
    run(cmd.args(args))
}

/// `git verify-commit`/`verify-tag` with only the trusted keys: does git accept it?
fn git_accepts(repo: &Repo, keys: &Keys, what: &str, rev: &str) -> bool {
    let mut cmd = repo.command();
    cmd.env("GNUPGHOME", keys.verifier_home())
        .arg("-c")
        .arg(format!(
            "gpg.ssh.allowedSignersFile={}",
            keys.path("allowed_signers").display()
        ))
        .args([what, rev]);
    cmd.output().unwrap().status.success()
}

fn policy(keys: &Keys, commits: bool, tags: bool) -> Policy {
    Policy {
        commits,
        tags,
        ssh: Some(TrustedKeys::load_for(&keys.path("allowed_signers"), "git").unwrap()),
        gpg: Some(load_keyring(&keys.path("trusted.asc")).unwrap()),
    }
}

fn spec(url: &str, reference: &str, verify: Policy) -> SourceSpec {
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
        verify,
    }
}

/// Fetches `reference` into a fresh directory; on refusal checks nothing was written.
fn fetch(url: &str, reference: &str, verify: Policy) -> Result<String, VerifyError> {
    let source = Source::new(spec(url, reference, verify)).unwrap();
    let revision = source.resolve().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    match source.fetch_to(&revision, &out) {
        Ok(snapshot) => {
            assert!(out.join("file.txt").is_file());
            Ok(snapshot
                .verified()
                .map(|v| v.to_string())
                .unwrap_or_default())
        }
        Err(SourceError::Verify { source, .. }) => {
            assert!(!out.exists(), "a refused revision wrote {out:?}");
            let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "a refused revision left {left:?}");
            Ok(Err(source)?)
        }
        Err(e) => panic!("fetch {reference}: {e}"),
    }
}

#[test]
fn commits_and_tags_signed_by_the_real_tools_agree_with_git_verify() {
    let keys = make_keys();
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let url = server.repo_url(repo.name());
    repo.write("file.txt", "base\n");
    repo.commit("base");

    // (branch, how it is signed, expected outcome: Ok(signer contains) or the refusal)
    type Expect = Result<&'static str, &'static str>;
    let cases: Vec<(&str, Signing<'_>, Expect)> = vec![
        (
            "ssh-ed25519",
            Signing::Ssh("ssh-ed"),
            Ok("ed@example.com (ssh key SHA256:"),
        ),
        (
            "ssh-rsa",
            Signing::Ssh("ssh-rsa"),
            Ok("rsa@example.com (ssh key SHA256:"),
        ),
        (
            "gpg-rsa3072",
            Signing::Gpg("rsa@example.com"),
            Ok("RSA Signer <rsa@example.com> (openpgp key "),
        ),
        (
            "gpg-ed25519",
            Signing::Gpg("ed@example.com"),
            Ok("Ed Signer <ed@example.com> (openpgp key "),
        ),
        (
            "gpg-subkey",
            Signing::Gpg("sub@example.com"),
            Ok("Sub Signer <sub@example.com>"),
        ),
        ("unsigned", Signing::None, Err("is unsigned")),
        (
            "ssh-untrusted",
            Signing::Ssh("ssh-stranger"),
            Err("signed by an untrusted key `SHA256:"),
        ),
        (
            "ssh-namespace-file",
            Signing::Ssh("ssh-file"),
            Err("signed by an untrusted key `SHA256:"),
        ),
        (
            "gpg-untrusted",
            Signing::Gpg("stranger@example.com"),
            Err("signed by an untrusted key `"),
        ),
        (
            "gpg-revoked",
            Signing::Gpg("revoked@example.com"),
            Err("(revoked)"),
        ),
        (
            "gpg-expired",
            Signing::GpgAt("old@example.com", "20200101T060000"),
            Err("(expired)"),
        ),
    ];
    for (branch, signing, _) in &cases {
        repo.git(&["checkout", "--quiet", "-B", branch, "main"]);
        repo.write("file.txt", format!("{branch}\n"));
        repo.git(&["add", "--all"]);
        let sign = if matches!(signing, Signing::None) {
            "--no-gpg-sign"
        } else {
            "-S"
        };
        git_signed(
            &repo,
            &keys,
            *signing,
            &["commit", "--quiet", sign, "-m", branch],
        );
    }
    // A signed merge commit of two branches.
    repo.git(&["checkout", "--quiet", "-B", "merge", "ssh-ed25519"]);
    git_signed(
        &repo,
        &keys,
        Signing::Gpg("ed@example.com"),
        &[
            "merge",
            "--quiet",
            "--no-ff",
            "-S",
            "-X",
            "theirs",
            "-m",
            "merge",
            "gpg-rsa3072",
        ],
    );
    // A tampered commit: the signed commit's message changed, signature kept.
    let raw = repo.git(&["cat-file", "commit", "gpg-ed25519"]) + "\n";
    let forged = raw.replace("\n\ngpg-ed25519\n", "\n\nsomething else\n");
    assert_ne!(raw, forged);
    let mut hash = repo.command();
    hash.args(["hash-object", "-t", "commit", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = hash.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), forged.as_bytes()).unwrap();
    let tampered = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    repo.git(&["branch", "-f", "tampered", tampered.trim()]);
    repo.git(&["checkout", "--quiet", "main"]);
    repo.push();

    let mut all = cases.clone();
    all.push(("merge", Signing::None, Ok("Ed Signer <ed@example.com>")));
    all.push(("tampered", Signing::None, Err("has a bad signature")));
    for (branch, _, expect) in &all {
        let got = fetch(
            &url,
            &format!("refs/heads/{branch}"),
            policy(&keys, true, false),
        );
        let oracle = git_accepts(&repo, &keys, "verify-commit", branch);
        assert_eq!(
            got.is_ok(),
            oracle,
            "{branch}: hawser {got:?}, git verify-commit {oracle}"
        );
        match (expect, &got) {
            (Ok(signer), Ok(shown)) => assert!(shown.contains(signer), "{branch}: {shown}"),
            (Err(reason), Err(e)) => {
                let e = e.to_string();
                assert!(e.contains(reason), "{branch}: {e}");
                assert!(!e.contains('\n'), "{branch}: {e}");
            }
            _ => panic!("{branch}: expected {expect:?}, got {got:?}"),
        }
    }

    // Tags: SSH- and OpenPGP-signed annotated tags on an unsigned commit, and one
    // signed by a stranger. --verify-tags alone must not require a signed commit.
    repo.git(&["checkout", "--quiet", "unsigned"]);
    git_signed(
        &repo,
        &keys,
        Signing::Ssh("ssh-ed"),
        &["tag", "-s", "-m", "v1", "v1-ssh"],
    );
    git_signed(
        &repo,
        &keys,
        Signing::Gpg("rsa@example.com"),
        &["tag", "-s", "-m", "v1", "v1-gpg"],
    );
    git_signed(
        &repo,
        &keys,
        Signing::Gpg("stranger@example.com"),
        &["tag", "-s", "-m", "v1", "v1-stranger"],
    );
    repo.git(&["tag", "-a", "-m", "v1", "v1-unsigned"]);
    repo.push();
    for (tag, ok) in [
        ("v1-ssh", true),
        ("v1-gpg", true),
        ("v1-stranger", false),
        ("v1-unsigned", false),
    ] {
        let got = fetch(&url, tag, policy(&keys, false, true));
        assert_eq!(got.is_ok(), ok, "{tag}: {got:?}");
        assert_eq!(
            git_accepts(&repo, &keys, "verify-tag", tag),
            ok,
            "git verify-tag {tag}"
        );
        if ok {
            assert!(got.unwrap().starts_with("tag signed by "));
        }
    }
    // Both flags: the tag is signed but the commit is not.
    let got = fetch(&url, "v1-ssh", policy(&keys, true, true)).unwrap_err();
    assert!(matches!(got, VerifyError::Unsigned { .. }), "{got}");

    // Bundles: the commit inside is verified the same way (here on top of an
    // unsigned bundle, so only the commit signature decides).
    for (branch, ok) in [
        ("gpg-ed25519", true),
        ("unsigned", false),
        ("tampered", false),
    ] {
        let file = keys.path(&format!("{branch}.bundle"));
        repo.git(&[
            "bundle",
            "create",
            "--quiet",
            file.to_str().unwrap(),
            branch,
        ]);
        let mut spec = spec(
            file.to_str().unwrap(),
            &format!("refs/heads/{branch}"),
            policy(&keys, true, false),
        );
        spec.kind = SourceKind::Bundle;
        spec.bundle.insecure_allow_unsigned = true;
        let source = Source::new(spec).unwrap();
        let revision = source.resolve().unwrap();
        let out = keys.path(&format!("{branch}-out"));
        match source.fetch_to(&revision, &out) {
            Ok(snapshot) => {
                assert!(ok, "{branch}: bundle accepted");
                assert!(
                    snapshot
                        .verified()
                        .unwrap()
                        .to_string()
                        .contains("Ed Signer")
                );
            }
            Err(SourceError::Verify { .. }) => {
                assert!(!ok, "{branch}: bundle refused");
                assert!(!out.exists());
            }
            Err(e) => panic!("{branch}: {e}"),
        }
    }

    // Verification time per revision, for the record (not asserted).
    let source = Source::new(spec(
        &url,
        "refs/heads/gpg-rsa3072",
        policy(&keys, true, false),
    ))
    .unwrap();
    let revision = source.resolve().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = source.fetch_to(&revision, &dir.path().join("o")).unwrap();
    let objects = snapshot.objects().unwrap().clone();
    let policy = policy(&keys, true, false);
    for branch in ["gpg-rsa3072", "gpg-ed25519", "ssh-ed25519", "ssh-rsa"] {
        let commit = repo.rev_parse(branch);
        let raw = support::run_bytes(repo.command().args(["cat-file", "commit", branch]));
        let objects = hawser::verify::Objects {
            commit: raw,
            tag: None,
        };
        let id = hawser::source::Revision::parse(&commit)
            .unwrap()
            .commit_id()
            .unwrap();
        let started = Instant::now();
        for _ in 0..20 {
            policy.check(id, &objects).unwrap();
        }
        eprintln!("verify {branch}: {:?} per revision", started.elapsed() / 20);
    }
    drop(objects);
}
