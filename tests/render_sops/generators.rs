//! `secretGenerator` sources encrypted by the real sops (dotenv and binary), and
//! patch files, which hawser decrypts before Kustomize, as Flux does: the output,
//! hash suffixes included, must be what `kustomize build` makes of the same
//! kustomization with the files `sops -d` gives back.

use std::fs;
use std::process::Command;

use hawser::manifests::ParseLimits;
use hawser::manifests::yaml::parse_yaml;
use serde_json::Value;

use super::{Fixture, tool};

/// A dotenv file as sops reads it: a comment, `=` in a value, a `\n` escape.
const ENV: &str = "# database\nDB_USER=app\nDB_PASSWORD=hunter2-env=x\nMULTI=one\\ntwo\nTOKEN_unencrypted=visible\n";

/// Bytes that are not UTF-8, as a keystore's are.
fn keystore() -> Vec<u8> {
    let mut bytes = b"hunter2-bin\x00\xff\xfe".to_vec();
    bytes.extend((0u8..=255).rev());
    bytes
}

const KUSTOMIZATION: &str = "secretGenerator:
- name: app
  envs:
  - app.env
  files:
  - tls.key=tls.key.enc
  - keystore.p12
  literals:
  - plain=value
- name: other
  literals:
  - a=b
configMapGenerator:
- name: settings
  literals:
  - mode=fast
resources:
- deploy.yaml
";

/// Refers to the generated Secret, so the hashed name is carried into it.
const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        envFrom:
        - secretRef:
            name: app
";

impl Fixture {
    /// Encrypts `plain` with the real sops as `input_type` into `tree/rel`.
    fn encrypt_as(&self, rel: &str, plain: &[u8], input_type: &str, options: &[&str]) -> Vec<u8> {
        let src = self.path(&format!("plain-{}", rel.replace('/', "-")));
        fs::write(&src, plain).unwrap();
        fs::write(self.path(".sops.yaml"), "creation_rules:\n- {}\n").unwrap();
        let recipients = [self.recipient("k1"), self.recipient("k2")].join(",");
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .args([
                "encrypt",
                "--input-type",
                input_type,
                "--output-type",
                input_type,
            ])
            .args(["--age", &recipients])
            .args(options)
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "sops encrypt: {out:?}");
        self.write_bytes(&format!("tree/{rel}"), &out.stdout);
        out.stdout
    }

    fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    /// What `sops -d` gives back for `tree/rel`.
    fn sops_plain(&self, rel: &str, input_type: &str) -> Vec<u8> {
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.path("k2.txt"))
            .args([
                "decrypt",
                "--input-type",
                input_type,
                "--output-type",
                input_type,
            ])
            .arg(self.path(&format!("tree/{rel}")))
            .output()
            .unwrap();
        assert!(out.status.success(), "sops decrypt: {out:?}");
        out.stdout
    }

    /// `kustomize build` of `dir` (under the fixture), as documents.
    fn kustomize(&self, dir: &str) -> Vec<Value> {
        let out = Command::new(tool("kustomize"))
            .arg("build")
            .arg(self.path(dir))
            .output()
            .unwrap();
        assert!(out.status.success(), "kustomize build: {out:?}");
        docs(&out.stdout)
    }

    fn generator_tree(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        self.write("kustomization.yaml", KUSTOMIZATION);
        self.write("deploy.yaml", DEPLOY);
        let env = self.encrypt_as(
            "app.env",
            ENV.as_bytes(),
            "dotenv",
            &["--unencrypted-suffix", "_unencrypted"],
        );
        let key = self.encrypt_as(
            "tls.key.enc",
            b"-----BEGIN KEY-----\nhunter2-key\n",
            "binary",
            &[],
        );
        let store = self.encrypt_as("keystore.p12", &keystore(), "binary", &[]);
        (env, key, store)
    }

    /// The same kustomization with every encrypted file as `sops -d` gives it back.
    fn plain_tree(&self) {
        for name in ["kustomization.yaml", "deploy.yaml"] {
            let bytes = fs::read(self.path(&format!("tree/{name}"))).unwrap();
            self.write_bytes(&format!("plain/{name}"), &bytes);
        }
        for (name, input_type) in [
            ("app.env", "dotenv"),
            ("tls.key.enc", "binary"),
            ("keystore.p12", "binary"),
        ] {
            let bytes = self.sops_plain(name, input_type);
            self.write_bytes(&format!("plain/{name}"), &bytes);
        }
    }
}

fn docs(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    parse_yaml(text, "out", &ParseLimits::default())
        .unwrap()
        .into_iter()
        .map(|p| p.value)
        .collect()
}

#[test]
fn encrypted_generator_sources_render_as_kustomize_renders_the_plain_ones() {
    let f = Fixture::new();
    f.generator_tree();
    f.plain_tree();
    assert_eq!(f.sops_plain("keystore.p12", "binary"), keystore());
    let expected = f.kustomize("plain");
    for key in ["k1", "k2"] {
        assert_eq!(f.rendered(key), expected, "key {key}");
    }
    let secret = expected
        .iter()
        .find(|d| d["kind"] == "Secret" && d["data"].get("DB_USER").is_some())
        .unwrap();
    // The oracle really holds the decrypted values under a plaintext hash.
    assert_eq!(
        secret["data"]["DB_PASSWORD"],
        hawser::encoding::base64(b"hunter2-env=x")
    );
    assert!(
        secret["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("app-")
    );
}

#[test]
fn render_masks_generated_values_but_keeps_the_plaintext_hash() {
    let f = Fixture::new();
    f.generator_tree();
    let shown = f.rendered("k1");
    let out = f.render(Some("k1"), &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let masked = docs(&out.stdout);
    for secret in [
        "hunter2",
        &hawser::encoding::base64(b"hunter2-env=x"),
        "ENC[",
    ] {
        assert!(!text.contains(secret), "{text} shows {secret}");
    }
    let app = |docs: &[Value]| {
        docs.iter()
            .find(|d| d["kind"] == "Secret" && d["data"].get("DB_USER").is_some())
            .unwrap()
            .clone()
    };
    let (shown, masked) = (app(&shown), app(&masked));
    assert_eq!(masked["metadata"]["name"], shown["metadata"]["name"]);
    assert_eq!(masked["data"]["keystore.p12"], "***");
    assert_eq!(masked["data"]["DB_PASSWORD"], "***");
    assert_eq!(
        masked["data"]["plain"], shown["data"]["plain"],
        "a literal is not masked"
    );
}

#[test]
fn a_tampered_generator_source_is_refused_naming_it() {
    let secrets = ["hunter2", "aHVudGVyMi"];
    let f = Fixture::new();
    let (env, key, _) = f.generator_tree();
    let flip = |bytes: &[u8], after: &str| {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let at = text.find(after).unwrap() + after.len();
        let mut out = text.into_bytes();
        out[at] = if out[at] == b'A' { b'B' } else { b'A' };
        out
    };

    f.write_bytes(
        "tree/app.env",
        &flip(&env, "DB_PASSWORD=ENC[AES256_GCM,data:"),
    );
    let err = f.refused(Some("k1"), "app.env", &secrets);
    assert!(err.contains("DB_PASSWORD"), "{err}");
    // An unencrypted value edited: the MAC covers it.
    let edited = String::from_utf8(env.clone())
        .unwrap()
        .replace("=visible", "=edited");
    f.write_bytes("tree/app.env", edited.as_bytes());
    let err = f.refused(Some("k1"), "app.env", &secrets);
    assert!(err.contains("MAC"), "{err}");
    f.write_bytes("tree/app.env", &env);

    f.write_bytes(
        "tree/tls.key.enc",
        &flip(&key, "\"data\": \"ENC[AES256_GCM,data:"),
    );
    f.refused(Some("k1"), "tls.key.enc", &secrets);
    f.write_bytes("tree/tls.key.enc", &key);

    // No key, or a key for neither recipient.
    let err = f.refused(None, "app.env", &secrets);
    assert!(err.contains("--sops-age-key-file"), "{err}");
    let err = f.refused(Some("other"), "app.env", &secrets);
    assert!(err.contains(&f.recipient("k1")), "{err}");

    // Restored, it renders again.
    assert!(f.render(Some("k1"), &["--show-secrets"]).status.success());
}

#[test]
fn an_encrypted_patch_file_is_decrypted_before_it_is_applied() {
    let f = Fixture::new();
    f.write("deploy.yaml", DEPLOY);
    f.write(
        "kustomization.yaml",
        "resources:\n- deploy.yaml\npatches:\n- path: patch.enc.yaml\n",
    );
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        env:\n        - name: API_TOKEN\n          value: hunter2-patch\n";
    let text = f.encrypt(
        "patch.enc.yaml",
        patch,
        &["k1", "k2"],
        &["--encrypted-regex", "^value$"],
    );
    for name in ["deploy.yaml", "kustomization.yaml"] {
        let bytes = fs::read(f.path(&format!("tree/{name}"))).unwrap();
        f.write_bytes(&format!("plain/{name}"), &bytes);
    }
    f.write_bytes(
        "plain/patch.enc.yaml",
        &f.sops_plain("patch.enc.yaml", "yaml"),
    );
    let expected = f.kustomize("plain");
    assert_eq!(
        expected[0]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "hunter2-patch"
    );
    assert_eq!(f.rendered("k2"), expected);

    let out = f.render(Some("k1"), &[]);
    assert!(out.status.success(), "{out:?}");
    let masked = String::from_utf8(out.stdout).unwrap();
    assert!(
        !masked.contains("hunter2") && !masked.contains("ENC["),
        "{masked}"
    );
    assert!(masked.contains("API_TOKEN"), "{masked}");

    let at = text.find("value: ENC[AES256_GCM,data:").unwrap() + 27;
    let mut tampered = text.into_bytes();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    f.write_bytes("tree/patch.enc.yaml", &tampered);
    f.refused(Some("k1"), "patch.enc.yaml", &["hunter2"]);
}
