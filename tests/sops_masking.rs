//! Values hawser decrypted are masked in every kind, not only in Secrets (issue
//! #16): a SOPS-encrypted ConfigMap, a custom resource and a SOPS-encrypted patch
//! file, encrypted at test time by the real `sops` for a key from the real
//! `age-keygen` (HAWSER_TEST_TOOLS). `hawser render` prints `***` for exactly the
//! decrypted leaves unless `--show-secrets`; `hawser diff` against the real API
//! server marks them `***`, `*** (before)`, `*** (after)`; and when the API server
//! refuses a custom resource for its decrypted value, the agent's log, the Events,
//! the inventory parent and `diff`'s stderr name the field, never the value.
//! A value substituted from a Secret is masked the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use hawser::manifests::ParseLimits;
use hawser::manifests::yaml::parse_yaml;
use serde_json::Value;
use support::cluster::{
    AGENT_RULES, TestNamespace, admin_kubeconfig, get_field, hawser, kubectl, kubectl_raw,
    sa_kubeconfig,
};
use support::world::{World, until};
use support::{GitServer, GitServerOptions, Repo};

use support::oracle::{self, tool};

/// An age key made by the real age-keygen, and the real sops to encrypt for it.
struct Key {
    dir: tempfile::TempDir,
}

impl Key {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        oracle::age_keygen(&dir.path().join("age.txt"));
        Self { dir }
    }

    fn file(&self) -> String {
        self.dir.path().join("age.txt").display().to_string()
    }

    fn encrypt(&self, plain: &str, regex: &str) -> String {
        let recipient = oracle::age_recipient(Path::new(&self.file()));
        let src = self.dir.path().join("plain.yaml");
        std::fs::write(&src, plain).unwrap();
        let out = Command::new(tool("sops"))
            .current_dir(self.dir.path())
            .args(["encrypt", "--age", &recipient, "--encrypted-regex", regex])
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "sops encrypt: {out:?}");
        std::fs::remove_file(&src).unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("ENC[AES256_GCM"), "{text}");
        text
    }
}

fn docs(text: &str) -> Vec<Value> {
    parse_yaml(text, "out", &ParseLimits::default())
        .unwrap()
        .into_iter()
        .map(|p| p.value)
        .collect()
}

fn named<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {docs:?}"))
}

const CM_PLAIN: &str = "cm-plain-7781";
const WIDGET_PLAIN: &str = "widget-plain-5521";
const TAG_PLAIN: &str = "tag-plain-0042";
const PATCH_PLAIN: &str = "patch-plain-9083";

#[test]
fn render_masks_every_decrypted_leaf_of_any_kind_unless_shown() {
    let key = Key::new();
    let tree = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| std::fs::write(tree.path().join(rel), text).unwrap();
    // A key holding ${…}: substitution renames it, and the leaf stays masked.
    write(
        "cm.enc.yaml",
        &key.encrypt(
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault\ndata:\n  token_${{suffix}}: {CM_PLAIN}\n"
            ),
            "^data$",
        ),
    );
    write(
        "widget.enc.yaml",
        &key.encrypt(
            &format!(
                "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  token: {WIDGET_PLAIN}\n  size: 3\n  tags:\n  - {TAG_PLAIN}\n"
            ),
            "^spec$",
        ),
    );
    write(
        "open.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: open\ndata:\n  visible: shown-value\n",
    );
    write(
        "patch.enc.yaml",
        &key.encrypt(
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: open\ndata:\n  added: {PATCH_PLAIN}\n"
            ),
            "^data$",
        ),
    );
    write(
        "kustomization.yaml",
        "resources: [cm.enc.yaml, widget.enc.yaml, open.yaml]\npatches:\n- path: patch.enc.yaml\n",
    );
    let render = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(["render", "--dir"])
            .arg(tree.path())
            .args([
                "--sops-age-key-file",
                &key.file(),
                "--substitute",
                "suffix=x",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };

    let masked = render(&[]);
    for plain in [CM_PLAIN, WIDGET_PLAIN, TAG_PLAIN, PATCH_PLAIN] {
        assert!(!masked.contains(plain), "{plain} printed:\n{masked}");
    }
    let shown = docs(&masked);
    assert_eq!(named(&shown, "vault")["data"]["token_x"], "***");
    let widget = named(&shown, "w");
    assert_eq!(widget["spec"]["token"], "***");
    assert_eq!(widget["spec"]["size"], "***");
    assert_eq!(widget["spec"]["tags"][0], "***");
    assert_eq!(widget["kind"], "Widget", "what was not encrypted stays");
    let open = named(&shown, "open");
    assert_eq!(open["data"]["added"], "***", "merged from the patch file");
    assert_eq!(open["data"]["visible"], "shown-value");

    let plain = docs(&render(&["--show-secrets"]));
    assert_eq!(named(&plain, "vault")["data"]["token_x"], CM_PLAIN);
    let widget = named(&plain, "w");
    assert_eq!(widget["spec"]["token"], WIDGET_PLAIN);
    assert_eq!(widget["spec"]["size"], 3);
    assert_eq!(widget["spec"]["tags"][0], TAG_PLAIN);
    assert_eq!(named(&plain, "open")["data"]["added"], PATCH_PLAIN);
}

/// Deletes the test's CRD however the test ends.
struct Crd(String);

impl Drop for Crd {
    fn drop(&mut self) {
        kubectl_raw(
            &["delete", "crd", &self.0, "--wait=false"],
            &admin_kubeconfig(),
        );
    }
}

#[test]
fn diff_and_the_agent_keep_decrypted_values_of_any_kind_out_of_every_output() {
    let ns = TestNamespace::new("sops-mask");
    let group = format!("{}.hawser.test", ns.name);
    let crd = Crd(format!("widgets.{group}"));
    let schema = "openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              token: {type: string, pattern: '^[a-z0-9-]+$'}\n              size: {type: integer}";
    let crd_yaml = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {}\nspec:\n  group: {group}\n  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      {schema}\n",
        crd.0
    );
    let dir = tempfile::tempdir().unwrap();
    let crd_file = dir.path().join("crd.yaml");
    std::fs::write(&crd_file, &crd_yaml).unwrap();
    kubectl(&["apply", "-f", crd_file.to_str().unwrap()]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{}", crd.0),
        "--timeout=30s",
    ]);

    // The agent's usual scoped ServiceAccount, allowed the custom kind too.
    let widget_rule = format!("get,list,watch,create,update,patch,delete:widgets.{group}");
    let mut rules: Vec<&str> = AGENT_RULES.to_vec();
    rules.push(&widget_rule);
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", &rules, dir.path());
    let server = GitServer::start(GitServerOptions::default());
    let repo = Repo::create(&server);
    let w = World {
        ns,
        dir,
        kubeconfig,
        server,
        repo,
    };

    let key = Key::new();
    let configmap = |token: &str| {
        key.encrypt(
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault\ndata:\n  token: {token}\n  region: eu\n"
            ),
            "^token$",
        )
    };
    let widget = |token: &str| {
        key.encrypt(
            &format!(
                "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  token: {token}\n  size: 3\n"
            ),
            "^token$",
        )
    };
    w.repo.write("cm.enc.yaml", configmap(CM_PLAIN));
    w.repo.write("widget.enc.yaml", widget(WIDGET_PLAIN));
    w.repo.commit("encrypted ConfigMap and Widget");
    w.repo.push();
    let tree = w.repo.work_dir().to_str().unwrap().to_string();
    let key_file = key.file();
    let diff = || {
        hawser(
            &[
                "diff",
                "--dir",
                &tree,
                "--namespace",
                &w.ns.name,
                "--sops-age-key-file",
                &key_file,
            ],
            &w.kubeconfig,
        )
    };

    // Nothing is live yet: the objects to create, their decrypted leaves masked.
    let created = diff();
    assert_eq!(created.code, 1, "{created:?}");
    assert!(
        created.stdout.contains("desired/Widget"),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains("+  token: \"***\""),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains("+  region: eu"),
        "{}",
        created.stdout
    );
    for plain in [CM_PLAIN, WIDGET_PLAIN] {
        assert!(!created.stdout.contains(plain), "{}", created.stdout);
    }

    let mut agent = w.agent(&["--sops-age-key-file", &key_file]);
    until(&agent, "both objects are live with their plaintext", || {
        get_field("configmap", &w.ns.name, "vault", "{.data.token}").as_deref() == Some(CM_PLAIN)
            && get_field(&crd.0, &w.ns.name, "w", "{.spec.token}").as_deref() == Some(WIDGET_PLAIN)
    });
    agent.terminate();

    // A new value in Git: the diff says the token changed, and shows neither value.
    const CM_NEXT: &str = "cm-plain-next-3310";
    w.repo.write("cm.enc.yaml", configmap(CM_NEXT));
    let changed = diff();
    assert_eq!(changed.code, 1, "{changed:?}");
    assert!(
        changed.stdout.contains("-  token: \"*** (before)\"")
            && changed.stdout.contains("+  token: \"*** (after)\""),
        "{}",
        changed.stdout
    );
    for plain in [CM_PLAIN, CM_NEXT, WIDGET_PLAIN] {
        assert!(!changed.stdout.contains(plain), "{}", changed.stdout);
    }

    // A decrypted value the CRD's schema refuses: the API server quotes it in its
    // message; hawser keeps the field and the class of the problem only.
    const BAD_PLAIN: &str = "BAD_Plain_Value_6620";
    w.repo.write("widget.enc.yaml", widget(BAD_PLAIN));
    let bad = w.repo.commit("a Widget token the schema refuses");
    w.repo.push();
    let refused = diff();
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("spec.token"), "{}", refused.stderr);
    agent.restart(&[]);
    until(&agent, "the revision is rejected", || {
        w.status()["result"] == "rejected" && w.status()["desired"] == bad.as_str()
    });
    let status = w.status();
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Widget") && message.contains("spec.token"),
        "{status}"
    );
    agent.terminate();
    let places = [
        ("log", agent.logs()),
        (
            "parent",
            kubectl(&["get", "configmap", "hawser", "-n", &w.ns.name, "-o", "yaml"]),
        ),
        (
            "events",
            kubectl(&["get", "events", "-n", &w.ns.name, "-o", "yaml"]),
        ),
        ("diff stderr", refused.stderr.clone()),
        ("diff stdout", refused.stdout.clone()),
    ];
    for (place, text) in &places {
        for plain in [CM_PLAIN, CM_NEXT, WIDGET_PLAIN, BAD_PLAIN] {
            assert!(!text.contains(plain), "{place} holds {plain}: {text}");
        }
    }
    // The check was made: the failure reached the log.
    assert!(agent.logs().contains("spec.token"), "{}", agent.logs());
}

/// A value substituted from a Secret (`--substitute-from secret/NAME`) is Secret
/// data in whatever kind it lands: `diff` masks the leaf that uses it, and shows
/// the leaves that use only a ConfigMap's variables.
#[test]
fn a_value_substituted_from_a_secret_is_masked_in_any_kind() {
    const FROM_SECRET: &str = "subst-secret-plain-4411";
    let ns = TestNamespace::new("subst-mask");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sa_kubeconfig(&ns.name, "hawser", AGENT_RULES, dir.path());
    kubectl(&[
        "create",
        "secret",
        "generic",
        "db-vars",
        "-n",
        &ns.name,
        &format!("--from-literal=password={FROM_SECRET}"),
        "--from-literal=user=shop",
    ]);
    kubectl(&[
        "create",
        "configmap",
        "cluster-vars",
        "-n",
        &ns.name,
        "--from-literal=region=eu",
        // A later ConfigMap value wins over the Secret's, and is not Secret data.
        "--from-literal=user=ops",
    ]);
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(
        tree.join("settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  url: \"db://${user}:${password}@db-${region}\"\n  region: \"${region}\"\n  owner: \"${user}\"\n",
    )
    .unwrap();
    let out = hawser(
        &[
            "diff",
            "--dir",
            tree.to_str().unwrap(),
            "--namespace",
            &ns.name,
            "--substitute-from",
            "secret/db-vars,configmap/cluster-vars",
        ],
        &kubeconfig,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("+  url: \"***\""), "{}", out.stdout);
    assert!(out.stdout.contains("+  region: eu"), "{}", out.stdout);
    assert!(out.stdout.contains("+  owner: ops"), "{}", out.stdout);
    assert!(!out.stdout.contains(FROM_SECRET), "{}", out.stdout);
    assert!(!out.stderr.contains(FROM_SECRET), "{}", out.stderr);
}
