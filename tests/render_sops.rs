//! SOPS decryption in `hawser render` against the real `sops` v3.13.3 and
//! `age-keygen` (the oracles, from `tests/env/build-tools`, found through
//! HAWSER_TEST_TOOLS). Every fixture is encrypted at test time by the real sops, for
//! several recipients and with each encryption option; hawser must decrypt it to
//! what `sops -d` prints, and refuse what sops refuses (tampered values, a broken
//! MAC, a file for keys it does not hold) with one line naming the file and never a
//! plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hawser::manifests::ParseLimits;
use hawser::manifests::yaml::{parse_json, parse_yaml};
use serde_json::Value;

#[path = "render_sops/generators.rs"]
mod generators;

#[path = "support/oracle.rs"]
mod oracle;
use oracle::tool;

/// A throwaway directory with age keys made by the real age-keygen.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in ["k1", "k2", "other"] {
            oracle::age_keygen(&dir.path().join(format!("{name}.txt")));
        }
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn recipient(&self, key: &str) -> String {
        oracle::age_recipient(&self.path(&format!("{key}.txt")))
    }

    /// Encrypts `plain` with the real sops for `keys` into `tree/rel`.
    fn encrypt(&self, rel: &str, plain: &str, keys: &[&str], options: &[&str]) -> String {
        let kind = rel.rsplit('.').next().unwrap();
        let src = self.path(&format!("plain.{kind}"));
        fs::write(&src, plain).unwrap();
        let recipients: Vec<String> = keys.iter().map(|k| self.recipient(k)).collect();
        // mac_only_encrypted has no flag; only a creation rule sets it.
        let mac_only = options.contains(&"--mac-only-encrypted");
        let options: Vec<&str> = options
            .iter()
            .copied()
            .filter(|o| *o != "--mac-only-encrypted")
            .collect();
        let config = if mac_only {
            "creation_rules:\n- mac_only_encrypted: true\n"
        } else {
            "creation_rules:\n- {}\n"
        };
        fs::write(self.path(".sops.yaml"), config).unwrap();
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .arg("encrypt")
            .arg("--age")
            .arg(recipients.join(","))
            .args(&options)
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "sops encrypt: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        self.write(rel, &text);
        text
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(&format!("tree/{rel}"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// What `sops -d` prints for `tree/rel`, as documents.
    fn sops_decrypt(&self, rel: &str, key: &str) -> Vec<Value> {
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.path(&format!("{key}.txt")))
            .arg("decrypt")
            .arg(self.path(&format!("tree/{rel}")))
            .output()
            .unwrap();
        assert!(out.status.success(), "sops decrypt: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let parsed = if rel.ends_with(".json") {
            parse_json(&text, rel, &ParseLimits::default())
        } else {
            parse_yaml(&text, rel, &ParseLimits::default())
        };
        parsed.unwrap().into_iter().map(|p| p.value).collect()
    }

    fn render(&self, key: Option<&str>, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawser"));
        for (k, _) in std::env::vars() {
            if k.starts_with("HAWSER_") || k.starts_with("SOPS_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("render").arg("--dir").arg(self.path("tree"));
        if let Some(key) = key {
            cmd.arg("--sops-age-key-file")
                .arg(self.path(&format!("{key}.txt")));
        }
        cmd.args(extra).output().unwrap()
    }

    fn rendered(&self, key: &str) -> Vec<Value> {
        let out = self.render(Some(key), &["--show-secrets"]);
        assert!(
            out.status.success(),
            "hawser render: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        parse_yaml(&text, "out", &ParseLimits::default())
            .unwrap()
            .into_iter()
            .map(|p| p.value)
            .collect()
    }

    /// Renders expecting a refusal; returns stderr after checking it is one line
    /// naming `file` and holding none of `secrets`.
    fn refused(&self, key: Option<&str>, file: &str, secrets: &[&str]) -> String {
        let out = self.render(key, &["--show-secrets"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(file), "{stderr}");
        for secret in secrets {
            assert!(!stderr.contains(secret), "{stderr} leaks {secret}");
        }
        assert!(out.stdout.is_empty(), "nothing is printed on a refusal");
        stderr
    }
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  labels:
    tier: backend
    enabled: \"yes\"
stringData:
  password: hunter2-yaml # the database password
  port: 5432
  ratio: 1.5
  flag: true
  empty: \"\"
  hosts:
  - alpha-host
  - beta-host
  password_unencrypted: visible
type: Opaque
";

#[test]
fn yaml_decrypts_as_sops_does_for_each_option() {
    let options: &[&[&str]] = &[
        &[],
        &["--encrypted-regex", "^(data|stringData)$"],
        &["--unencrypted-regex", "^(metadata|kind|apiVersion|type)$"],
        &["--unencrypted-suffix", "_unencrypted"],
        &["--encrypted-suffix", "word"],
        &["--encrypted-regex", "^stringData$", "--mac-only-encrypted"],
    ];
    for opts in options {
        let f = Fixture::new();
        f.encrypt("secret.yaml", SECRET, &["k1", "k2"], opts);
        let expected = f.sops_decrypt("secret.yaml", "k1");
        // Either recipient's identity opens it.
        for key in ["k1", "k2"] {
            assert_eq!(f.rendered(key), expected, "options {opts:?}, key {key}");
        }
        assert_eq!(expected[0]["stringData"]["password"], "hunter2-yaml");
    }
}

#[test]
fn json_and_multi_document_yaml_decrypt() {
    let f = Fixture::new();
    let json = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"token": "hunter2-json", "n": "3"}}"#;
    f.encrypt("cfg.json", json, &["k2"], &["--encrypted-regex", "^data$"]);
    let two = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\nstringData:\n  x: hunter2-first\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\nstringData:\n  y: hunter2-second\n";
    f.encrypt(
        "two.yaml",
        two,
        &["k1", "k2"],
        &["--encrypted-regex", "^stringData$"],
    );
    let mut expected = f.sops_decrypt("cfg.json", "k2");
    expected.extend(f.sops_decrypt("two.yaml", "k2"));
    let mut got = f.rendered("k2");
    let name = |v: &Value| v["metadata"]["name"].as_str().unwrap().to_string();
    got.sort_by_key(name);
    expected.sort_by_key(name);
    assert_eq!(got, expected);
}

#[test]
fn kustomize_may_change_unencrypted_fields() {
    let f = Fixture::new();
    f.encrypt(
        "base/secret.yaml",
        SECRET,
        &["k1"],
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    f.write(
        "base/kustomization.yaml",
        "resources:\n- secret.yaml\nnamespace: prod\nnamePrefix: app-\ncommonLabels:\n  team: a\n",
    );
    f.write("kustomization.yaml", "resources:\n- base\n");
    let mut expected = f.sops_decrypt("base/secret.yaml", "k1").remove(0);
    let got = f.rendered("k1").remove(0);
    assert_eq!(got["metadata"]["namespace"], "prod");
    assert_eq!(got["metadata"]["name"], "app-db");
    assert_eq!(got["metadata"]["labels"]["team"], "a");
    assert!(got.get("sops").is_none());
    // Apart from what kustomize added, the plaintext sops gives.
    expected["metadata"] = got["metadata"].clone();
    assert_eq!(got, expected);
}

#[test]
fn render_masks_decrypted_values_unless_asked() {
    let f = Fixture::new();
    f.encrypt(
        "secret.yaml",
        SECRET,
        &["k1"],
        &["--encrypted-regex", "^stringData$"],
    );
    let out = f.render(Some("k1"), &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("ENC["), "{text}");
    assert!(
        text.contains("password: '***'") || text.contains("password: \"***\""),
        "{text}"
    );
    assert!(text.contains("name: db"), "{text}");
}

#[test]
fn tampering_and_foreign_keys_are_refused() {
    let secrets = ["hunter2-yaml", "alpha-host", "5432"];
    let f = Fixture::new();
    let text = f.encrypt(
        "secret.yaml",
        SECRET,
        &["k1", "k2"],
        &["--encrypted-regex", "^stringData$"],
    );

    // No key file: the file is named and the flag suggested.
    let err = f.refused(None, "secret.yaml", &secrets);
    assert!(err.contains("--sops-age-key-file"), "{err}");

    // A key for neither recipient: both recipients are named.
    let err = f.refused(Some("other"), "secret.yaml", &secrets);
    assert!(
        err.contains(&f.recipient("k1")) && err.contains(&f.recipient("k2")),
        "{err}"
    );

    // A flipped character in one ciphertext.
    let start = text.find("password: ENC[AES256_GCM,data:").unwrap() + 31;
    let mut bytes = text.clone().into_bytes();
    bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
    f.write("secret.yaml", std::str::from_utf8(&bytes).unwrap());
    let err = f.refused(Some("k1"), "secret.yaml", &secrets);
    assert!(err.contains("stringData.password"), "{err}");

    // Two ciphertexts swapped: each decrypts under its own path only.
    let line = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .split_once(": ")
            .unwrap()
            .1
            .to_string()
    };
    let swapped = text
        .replace(&line("ratio:"), "@@")
        .replace(&line("port:"), &line("ratio:"))
        .replace("@@", &line("port:"));
    f.write("secret.yaml", &swapped);
    f.refused(Some("k1"), "secret.yaml", &secrets);

    // An unencrypted value changed: the MAC covers it.
    f.write(
        "secret.yaml",
        &text.replace("tier: backend", "tier: frontend"),
    );
    let err = f.refused(Some("k1"), "secret.yaml", &secrets);
    assert!(err.contains("MAC"), "{err}");

    // The MAC removed.
    let no_mac: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .map(|l| format!("{l}\n"))
        .collect();
    f.write("secret.yaml", &no_mac);
    let err = f.refused(Some("k1"), "secret.yaml", &secrets);
    assert!(err.contains("MAC"), "{err}");

    // sops itself agrees on each refusal above; the untouched file still renders.
    f.write("secret.yaml", &text);
    assert_eq!(f.rendered("k1"), f.sops_decrypt("secret.yaml", "k1"));
}

#[test]
fn a_missing_or_broken_key_file_is_an_error_at_start() {
    let f = Fixture::new();
    f.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    let out = f.render(Some("absent"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("absent.txt"), "{err}");
    fs::write(f.path("broken.txt"), "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
    let out = f.render(Some("broken"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("broken.txt") && err.contains("line 1"),
        "{err}"
    );
    assert!(
        !err.contains("NOTAKEY"),
        "the key file's content is never echoed: {err}"
    );
}

#[test]
fn substitution_strict_mode_and_names_are_one_line_errors() {
    let f = Fixture::new();
    f.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-${env}\ndata:\n  a: ${missing:=dflt}\n  b: x-${region}\n  n: ${n}\n",
    );
    let out = f.render(None, &["--substitute", "env=prod", "--substitute", "n=3"]);
    assert!(out.status.success(), "{out:?}");
    let docs = parse_yaml(
        &String::from_utf8(out.stdout).unwrap(),
        "o",
        &ParseLimits::default(),
    )
    .unwrap();
    let v = &docs[0].value;
    assert_eq!(v["metadata"]["name"], "c-prod");
    assert_eq!(v["data"]["a"], "dflt");
    assert_eq!(v["data"]["b"], "x-", "unset without a default is empty");
    assert_eq!(
        v["data"]["n"], 3,
        "a whole ${{n}} is read as YAML, as Flux re-parses it"
    );

    let out = f.render(None, &["--substitute", "env=prod", "--substitute-strict"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cm.yaml") && err.contains("region"), "{err}");

    let out = f.render(None, &["--substitute", "my-var=x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("my-var") && err.contains("invalid"), "{err}");
}

/// The install manifests, as hawser renders them, mount the age key read-only from
/// an optional Secret, at the path their commented SOPS_AGE_KEY_FILE names.
#[test]
fn the_install_manifests_mount_the_key_from_a_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kubernetes");
    let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .env_remove("SOPS_AGE_KEY_FILE")
        .arg("render")
        .arg("--dir")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let docs = parse_yaml(
        &String::from_utf8(out.stdout).unwrap(),
        "out",
        &ParseLimits::default(),
    )
    .unwrap();
    let deployment = docs
        .iter()
        .map(|d| &d.value)
        .find(|v| v["kind"] == "Deployment")
        .expect("a Deployment");
    let spec = &deployment["spec"]["template"]["spec"];
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == "hawser-sops-age")
        .expect("a volume from the Secret hawser-sops-age");
    assert_eq!(volume["secret"]["optional"], true, "{volume}");
    let mount = spec["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the key volume mounted");
    assert_eq!(mount["readOnly"], true, "{mount}");
    let path = mount["mountPath"].as_str().unwrap();
    let text = fs::read_to_string(root.join("base/deployment.yaml")).unwrap();
    let named = text
        .lines()
        .skip_while(|l| !l.contains("name: SOPS_AGE_KEY_FILE"))
        .nth(1)
        .and_then(|l| l.split("value: ").nth(1))
        .expect("the SOPS_AGE_KEY_FILE example");
    assert!(
        named.starts_with(&format!("{path}/")),
        "{named} is not under {path}"
    );
}
