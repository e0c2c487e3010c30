//! What hawser refuses to decrypt, against files the real `sops` wrote (HAWSER_TEST_TOOLS):
//! key types it does not use (PGP keys made by the real gpg; Shamir key groups;
//! cloud KMS and Vault entries), each with a one-line error naming the file and the
//! key type; a file carrying an age key besides them still opens. And a key file
//! that is missing at start stops every command that renders, in one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "support/oracle.rs"]
mod oracle;
use oracle::tool;

const PLAIN: &str = "hunter2-refusal";
const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2-refusal\n";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in ["k1", "k2"] {
            oracle::age_keygen(&dir.path().join(format!("{name}.txt")));
        }
        fs::create_dir(dir.path().join("tree")).unwrap();
        fs::write(dir.path().join("plain.yaml"), SECRET).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn recipient(&self, key: &str) -> String {
        oracle::age_recipient(&self.path(&format!("{key}.txt")))
    }

    /// The real sops, in the fixture's directory (its `.sops.yaml`, its GNUPGHOME).
    fn sops(&self, args: &[&str]) -> String {
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .env("GNUPGHOME", self.path("gnupg"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "sops {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn render(&self, file: &str, text: &str) -> Output {
        fs::write(self.path(&format!("tree/{file}")), text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(["render", "--show-secrets", "--dir"])
            .arg(self.path("tree"))
            .arg("--sops-age-key-file")
            .arg(self.path("k1.txt"))
            .output()
            .unwrap();
        fs::remove_file(self.path(&format!("tree/{file}"))).unwrap();
        out
    }

    /// Renders `text` as `file`, expecting a refusal naming the file and `what`.
    fn refused(&self, file: &str, text: &str, what: &str) {
        let out = self.render(file, text);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(file) && err.contains(what), "{err}");
        assert!(!err.contains(PLAIN), "{err}");
        assert!(out.stdout.is_empty());
    }

    fn opens(&self, file: &str, text: &str) {
        let out = self.render(file, text);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8(out.stdout).unwrap().contains(PLAIN));
    }
}

/// A key made by the real gpg in the fixture's GNUPGHOME; its fingerprint.
fn gpg_key(f: &Fixture) -> String {
    let home = f.path("gnupg");
    fs::create_dir(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // `default default`: a primary key and an encryption subkey.
    gpg(&[
        "--quick-gen-key",
        "sops test <sops@hawser.test>",
        "default",
        "default",
        "never",
    ]);
    first_fpr(&gpg(&["--with-colons", "--list-keys"]))
}

fn first_fpr(colons: &str) -> String {
    colons
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.trim_end_matches(':').rsplit(':').next())
        .unwrap()
        .to_string()
}

#[test]
fn key_types_hawser_does_not_use_are_refused_by_name() {
    let f = Fixture::new();
    let k1 = f.recipient("k1");
    let k2 = f.recipient("k2");

    // PGP only: refused, PGP named. PGP and age: the age key opens it.
    let fpr = gpg_key(&f);
    let pgp = f.sops(&["encrypt", "--pgp", &fpr, "plain.yaml"]);
    assert!(pgp.contains("pgp:"), "{pgp}");
    f.refused("pgp.yaml", &pgp, "PGP");
    let both = f.sops(&["encrypt", "--pgp", &fpr, "--age", &k1, "plain.yaml"]);
    f.opens("both.yaml", &both);

    // Shamir key groups (two groups, both needed): refused, even with an age key in
    // each group and the first one held.
    fs::write(
        f.path(".sops.yaml"),
        format!(
            "creation_rules:\n- shamir_threshold: 2\n  key_groups:\n  - age: [{k1}]\n  - age: [{k2}]\n"
        ),
    )
    .unwrap();
    let shamir = f.sops(&["encrypt", "plain.yaml"]);
    fs::remove_file(f.path(".sops.yaml")).unwrap();
    assert!(shamir.contains("key_groups:"), "{shamir}");
    f.refused("shamir.yaml", &shamir, "Shamir");

    // Cloud KMS and Vault cannot be reached from here to encrypt; their entries are
    // put in place of the age one of a file the real sops wrote (the key list is
    // outside the MAC): each is named.
    let age = f.sops(&["encrypt", "--age", &k2, "plain.yaml"]);
    let start = age.find("    age:\n").unwrap();
    let end = age[start..].find("    lastmodified:").unwrap() + start;
    for (key, entry, name) in [
        (
            "kms",
            "- arn: arn:aws:kms:eu-west-1:1:key/x\n          enc: AQ==\n",
            "AWS KMS",
        ),
        (
            "gcp_kms",
            "- resource_id: projects/p/locations/l/keyRings/r/cryptoKeys/k\n          enc: AQ==\n",
            "GCP KMS",
        ),
        (
            "azure_kv",
            "- vault_url: https://v.vault.azure.net\n          name: k\n          version: \"1\"\n          enc: AQ==\n",
            "Azure Key Vault",
        ),
        (
            "hc_vault",
            "- vault_address: http://127.0.0.1:8200\n          engine_path: transit\n          key_name: k\n          enc: vault:v1:AQ==\n",
            "HashiCorp Vault",
        ),
    ] {
        let text = format!(
            "{}    {key}:\n        {entry}{}",
            &age[..start],
            &age[end..]
        );
        f.refused(&format!("{key}.yaml"), &text, name);
    }
}

#[test]
fn a_missing_key_file_stops_every_command_that_renders_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent-age.txt");
    let missing = missing.to_str().unwrap();
    let tree = dir.path().to_str().unwrap();
    for args in [
        vec!["render", "--dir", tree],
        vec!["diff", "--dir", tree, "--namespace", "x"],
        vec!["apply", "--once", "--dir", tree, "--namespace", "x"],
        vec![
            "run",
            "--source",
            "http://127.0.0.1:9/none.git",
            "--namespace",
            "x",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
            .args(&args)
            .args(["--sops-age-key-file", missing])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("absent-age.txt"), "{args:?}: {err}");
    }
}
