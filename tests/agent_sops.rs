//! `hawser run` on an overlay holding a SOPS-encrypted Secret and a `secretGenerator`
//! reading a SOPS-encrypted env file (encrypted at test time
//! by the real sops for an age key from the real age-keygen, HAWSER_TEST_TOOLS) and
//! `${var}` references, end to end: the real Git server, the real control plane, the
//! agent under a scoped ServiceAccount. The decrypted Secret and the substituted
//! values are live; the plaintext is nowhere else (cache, log, parent, Events); a
//! changed variables ConfigMap is a new render; a tampered file, a file for another
//! key and a file without its MAC are each rejected with nothing written and the
//! applied revision kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cluster::{get_field, kubectl};
use support::world::{World, until};

const PLAINTEXT: &str = "hunter2-e2e-plaintext";
const TOKEN: &str = "tok-e2e-4417";
const ENV_PLAINTEXT: &str = "hunter2-e2e-from-env";

use support::oracle::{self, tool};

/// Encrypts `plain` with the real sops for the key in `key_file`.
fn sops_encrypt(dir: &Path, key_file: &Path, plain: &str) -> String {
    sops_encrypt_as(
        dir,
        key_file,
        plain,
        &["--encrypted-regex", "^(data|stringData)$"],
    )
}

fn sops_encrypt_as(dir: &Path, key_file: &Path, plain: &str, options: &[&str]) -> String {
    let recipient = oracle::age_recipient(key_file);
    let src = dir.join("plain-secret.yaml");
    std::fs::write(&src, plain).unwrap();
    let out = Command::new(tool("sops"))
        .current_dir(dir)
        .args(["encrypt", "--age", &recipient])
        .args(options)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_file(&src).unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir`, read as bytes, checked for `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(path);
            }
        }
    }
    hits
}

#[test]
fn an_overlay_with_a_sops_secret_and_variables_is_applied_and_plaintext_stays_in_memory() {
    let w = World::new("agent-sops");
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("age.txt");
    oracle::age_keygen(&key_file);

    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {PLAINTEXT}\n  token: {TOKEN}\n"
    );
    let encrypted = sops_encrypt(keys.path(), &key_file, &secret);
    assert!(!encrypted.contains(PLAINTEXT));
    w.repo.write("base/secret.enc.yaml", &encrypted);
    w.repo.write(
        "base/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  region: ${region}\n  cluster: ${HAWSER_CLUSTER_NAME}\n  greeting: ${greeting:=hello}\n  literal: $${region}\n",
    );
    w.repo.write(
        "base/kept.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  raw: ${region}\n",
    );
    let env = sops_encrypt_as(
        keys.path(),
        &key_file,
        &format!("API_KEY={ENV_PLAINTEXT}\n"),
        &["--input-type", "dotenv", "--output-type", "dotenv"],
    );
    assert!(!env.contains(ENV_PLAINTEXT));
    w.repo.write("base/app.env", &env);
    w.repo.write(
        "base/kustomization.yaml",
        "resources: [secret.enc.yaml, settings.yaml, kept.yaml]\nsecretGenerator:\n- name: app\n  envs: [app.env]\n",
    );
    w.repo.write(
        "kustomization.yaml",
        "resources: [base]\nnamePrefix: shop-\ncommonLabels: {team: shop}\n",
    );
    let v1 = w.repo.commit("encrypted secret and variables");
    w.repo.push();

    // The variables object, in the agent's namespace (an operator's, not Git's).
    kubectl(&[
        "create",
        "configmap",
        "cluster-vars",
        "-n",
        &w.ns.name,
        "--from-literal=region=eu-west",
    ]);

    let key_arg = key_file.display().to_string();
    let agent = w.agent(&[
        "--sops-age-key-file",
        &key_arg,
        "--substitute-from",
        "configmap/cluster-vars",
        "--cluster-name",
        "edge-7",
    ]);
    until(&agent, "the decrypted Secret is live", || {
        get_field("secret", &w.ns.name, "shop-db", "{.data.password}").is_some()
    });
    let live = get_field("secret", &w.ns.name, "shop-db", "{.data.password}").unwrap();
    assert_eq!(live, hawser_b64(PLAINTEXT));
    // The generated Secret, its name hashed over the plaintext.
    let generated = || {
        let names = kubectl(&["get", "secrets", "-n", &w.ns.name, "-o", "name"]);
        names.lines().find_map(|l| {
            l.strip_prefix("secret/shop-app-")
                .map(|h| format!("shop-app-{h}"))
        })
    };
    until(&agent, "the generated Secret is live", || {
        generated().is_some()
    });
    assert_eq!(
        get_field(
            "secret",
            &w.ns.name,
            &generated().unwrap(),
            "{.data.API_KEY}"
        )
        .as_deref(),
        Some(hawser_b64(ENV_PLAINTEXT).as_str())
    );
    let field = |name: &str, key: &str| {
        get_field("configmap", &w.ns.name, name, &format!("{{.data.{key}}}"))
    };
    until(&agent, "the substituted ConfigMap is live", || {
        field("shop-settings", "region").as_deref() == Some("eu-west")
    });
    assert_eq!(field("shop-settings", "cluster").as_deref(), Some("edge-7"));
    assert_eq!(field("shop-settings", "greeting").as_deref(), Some("hello"));
    assert_eq!(
        field("shop-settings", "literal").as_deref(),
        Some("${region}")
    );
    assert_eq!(field("shop-kept", "raw").as_deref(), Some("${region}"));
    until(&agent, "status applied", || {
        w.status()["applied"] == v1.as_str()
    });

    // A changed variable is a new render, applied without a new commit.
    kubectl(&[
        "patch",
        "configmap",
        "cluster-vars",
        "-n",
        &w.ns.name,
        "--type=merge",
        "-p",
        r#"{"data":{"region":"eu-north"}}"#,
    ]);
    until(&agent, "the new variable value is applied", || {
        field("shop-settings", "region").as_deref() == Some("eu-north")
    });

    // A tampered ciphertext: rejected, the file named, nothing written.
    let start = encrypted.find("password: ENC[AES256_GCM,data:").unwrap() + 31;
    let mut tampered = encrypted.clone().into_bytes();
    tampered[start] = if tampered[start] == b'A' { b'B' } else { b'A' };
    w.repo.write(
        "base/secret.enc.yaml",
        std::str::from_utf8(&tampered).unwrap(),
    );
    w.repo.write(
        "base/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  region: changed-with-the-tampered-secret\n",
    );
    let bad = w.repo.commit("tampered");
    w.repo.push();
    until(&agent, "status rejected", || {
        w.status()["result"] == "rejected"
    });
    let status = w.status();
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("base/secret.enc.yaml"), "{status}");
    assert_eq!(status["applied"], v1.as_str());
    assert_eq!(status["desired"], bad.as_str());
    assert_eq!(
        field("shop-settings", "region").as_deref(),
        Some("eu-north")
    );
    assert_eq!(
        get_field("secret", &w.ns.name, "shop-db", "{.data.password}").as_deref(),
        Some(live.as_str())
    );

    // A file for another key, and a file whose MAC was removed: each rejected the
    // same way, the file (and the recipient it was encrypted for) named.
    let other_key = keys.path().join("other.txt");
    oracle::age_keygen(&other_key);
    let other_recipient = oracle::age_recipient(&other_key);
    let no_mac: String = encrypted
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .map(|l| format!("{l}\n"))
        .collect();
    for (file, what, expect) in [
        (
            sops_encrypt(keys.path(), &other_key, &secret),
            "for another key",
            other_recipient.as_str(),
        ),
        (no_mac, "without its MAC", "MAC"),
    ] {
        w.repo.write("base/secret.enc.yaml", &file);
        let commit = w.repo.commit(what);
        w.repo.push();
        until(&agent, &format!("the file {what} rejected"), || {
            w.status()["result"] == "rejected" && w.status()["desired"] == commit.as_str()
        });
        let status = w.status();
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("base/secret.enc.yaml") && message.contains(expect),
            "{what}: {status}"
        );
        assert_eq!(status["applied"], v1.as_str(), "{what}");
        assert_eq!(
            get_field("secret", &w.ns.name, "shop-db", "{.data.password}").as_deref(),
            Some(live.as_str()),
            "{what}"
        );
    }

    // The plaintext is in the cluster's Secret only: not in the cache (ciphertext as
    // fetched), the agent's log, the inventory parent or the Events.
    drop(agent);
    for secret in [PLAINTEXT, TOKEN, ENV_PLAINTEXT] {
        let hits = files_containing(w.dir.path(), secret);
        assert!(hits.is_empty(), "{secret} written to {hits:?}");
        let parent = kubectl(&["get", "configmap", "hawser", "-n", &w.ns.name, "-o", "yaml"]);
        assert!(!parent.contains(secret), "parent holds {secret}");
        let events = kubectl(&["get", "events", "-n", &w.ns.name, "-o", "yaml"]);
        assert!(!events.contains(secret), "events hold {secret}");
    }
    assert!(
        !files_containing(w.dir.path(), "ENC[AES256_GCM").is_empty(),
        "the cache keeps the ciphertext as fetched"
    );
}

fn hawser_b64(text: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}
