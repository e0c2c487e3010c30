//! hawser next to kubectl on the same files: the commands a user would run, and the
//! checks that say whether the two agree. Used by `tests/manifest_parity.rs` and
//! `tests/kubectl_corpus.rs`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::cluster::{Run, admin_kubeconfig, hawser, kubectl_raw};

/// Every kind the scope holds back unless allowed: the tests give every allowance, so
/// that only the API server's and hawser's own rules decide.
pub const ALL_POWER_KINDS: &str = "ClusterRole,ClusterRoleBinding,RoleBinding,\
    ValidatingWebhookConfiguration,MutatingWebhookConfiguration,\
    ValidatingAdmissionPolicy,ValidatingAdmissionPolicyBinding,\
    MutatingAdmissionPolicy,MutatingAdmissionPolicyBinding,\
    CustomResourceDefinition,APIService";

/// Runs `hawser diff` or `hawser apply --once` on `dir` in `ns` with every scope
/// allowance, as the admin.
pub fn hawser_on(command: &[&str], dir: &Path, ns: &str) -> Run {
    let dir = dir.display().to_string();
    let mut args = command.to_vec();
    args.extend([
        "--dir",
        &dir,
        "--namespace",
        ns,
        "--allow-namespaces",
        "*",
        "--allow-cluster-scoped",
        "--allow-kinds",
        ALL_POWER_KINDS,
    ]);
    hawser(&args, &admin_kubeconfig())
}

pub fn hawser_diff(dir: &Path, ns: &str) -> Run {
    hawser_on(&["diff"], dir, ns)
}

pub fn hawser_apply(dir: &Path, ns: &str) -> Run {
    hawser_on(&["apply", "--once"], dir, ns)
}

/// hawser's verdict from its exit code: 0 (nothing to do) and 1 (changes) accept.
pub fn accepted(run: &Run) -> bool {
    match run.code {
        0 | 1 => true,
        2 => false,
        other => panic!("hawser exited {other}: {}", run.stderr),
    }
}

/// The error a refusing hawser printed, if it is exactly one line (`hawser: …`);
/// log lines (JSON, since stderr is not a terminal) are not counted.
pub fn one_line_error(run: &Run) -> Result<&str, String> {
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.starts_with('{')).collect();
    match lines.as_slice() {
        [line] if line.starts_with("hawser: ") => Ok(line),
        _ => Err(format!("not a one-line error: {:?}", run.stderr)),
    }
}

/// A kubeconfig like the admin's whose context namespace is `ns`, written into `dir`:
/// kubectl then puts objects that name no namespace in `ns`, as it does for a user
/// whose context is set so. (`-n ns` would differ: kubectl then refuses every object
/// that names another namespace.) It is a `KUBECONFIG` list: a small file holding
/// only that context, then the admin's file for the cluster and credentials.
pub fn kubeconfig_in(ns: &str, dir: &Path) -> PathBuf {
    static ADMIN_CONTEXT: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (cluster, user) = ADMIN_CONTEXT.get_or_init(|| {
        let field = |path: &str| {
            let out = kubectl_raw(
                &[
                    "config",
                    "view",
                    "--minify",
                    "-o",
                    &format!("jsonpath={path}"),
                ],
                &admin_kubeconfig(),
            );
            assert!(out.status.success(), "kubectl config view");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        (
            field("{.contexts[0].context.cluster}"),
            field("{.contexts[0].context.user}"),
        )
    });
    let path = dir.join(format!("{ns}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {ns}\ncontexts:\n- name: {ns}\n  context:\n    cluster: {cluster}\n    user: {user}\n    namespace: {ns}\n"
        ),
    )
    .unwrap();
    let mut list = path.into_os_string();
    list.push(":");
    list.push(admin_kubeconfig());
    PathBuf::from(list)
}

/// kubectl's verdict: `apply --server-side --dry-run=server --force-conflicts -f file`
/// with `kubeconfig` (see [`kubeconfig_in`]). Returns whether it accepted, and its
/// stderr.
pub fn kubectl_dry_run(file: &Path, kubeconfig: &Path) -> (bool, String) {
    let out = kubectl_raw(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "-f",
            &file.display().to_string(),
        ],
        kubeconfig,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// One changed line of `kubectl diff`: which object, `+` or `-`, the YAML path of the
/// line (keys joined by `.`), and the line.
#[derive(Debug, Clone)]
pub struct Change {
    /// kubectl's name for the object's file, e.g. `batch.v1.Job.ns.name`.
    pub object: String,
    pub sign: char,
    pub path: String,
    pub line: String,
}

/// `kubectl diff --server-side --field-manager=hawser` of `file`, with the whole
/// object as context so that every changed line's path is known.
pub fn kubectl_diff(file: &Path, kubeconfig: &Path) -> Result<Vec<Change>, String> {
    let out = std::process::Command::new("kubectl")
        .args([
            "diff",
            "--server-side",
            "--field-manager=hawser",
            "--force-conflicts",
            "-f",
        ])
        .arg(file)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECTL_EXTERNAL_DIFF", "diff -u -N -U1000000")
        .output()
        .expect("kubectl runs");
    // kubectl diff: 0 no differences, 1 differences, >1 kubectl or diff failed.
    if out.status.code().is_none_or(|c| c > 1) {
        return Err(format!(
            "kubectl diff failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(changes(&String::from_utf8_lossy(&out.stdout)))
}

/// The changed lines of a unified diff of YAML files with full context.
fn changes(text: &str) -> Vec<Change> {
    let mut out = Vec::new();
    let mut object = String::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff ") {
            object = rest.rsplit('/').next().unwrap_or_default().to_string();
            stack.clear();
            continue;
        }
        if line.starts_with("--- ") || line.starts_with("+++ ") || line.starts_with("@@") {
            continue;
        }
        let Some(sign) = line.chars().next() else {
            continue;
        };
        let body = &line[sign.len_utf8()..];
        let indent = body.len() - body.trim_start().len();
        let item = body.trim_start();
        // `- key: v` opens a list item whose keys sit two columns further in.
        let (indent, item) = match item.strip_prefix("- ") {
            Some(rest) => (indent + 2, rest),
            None => (indent, item),
        };
        let key = item
            .split_once(": ")
            .map(|(k, _)| k)
            .or_else(|| item.strip_suffix(':'))
            .unwrap_or(item);
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        if sign == '+' || sign == '-' {
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            out.push(Change {
                object: object.clone(),
                sign,
                path: path.join("."),
                line: line.to_string(),
            });
        }
    }
    out
}

/// What `kubectl diff` shows after hawser applied `file`, beyond what hawser's
/// ApplySet label explains and what controllers change on their own. Polled until
/// it is empty or `deadline` passes, since controllers (a Deployment's revision
/// annotation, say) may still be writing when the first diff runs.
///
/// Explained by the label: its removal (and that of `labels:` when it was the only
/// one), and, on ReplicationControllers and Jobs, labels the API server would have
/// copied from the pod template: it does so only for an object with no labels at
/// all, and hawser's label means it never has none (`kubectl apply --applyset` has
/// the same effect). Controllers' own: `status` and `metadata.resourceVersion`.
pub fn diff_beyond_hawser(
    file: &Path,
    kubeconfig: &Path,
    deadline: std::time::Instant,
) -> Result<Vec<String>, String> {
    loop {
        let left = match kubectl_diff(file, kubeconfig) {
            Ok(changes) => changes
                .into_iter()
                .filter(|c| !explained(c))
                .map(|c| format!("{}: {}", c.object, c.line))
                .collect::<Vec<_>>(),
            // A controller wrote the object between kubectl's read and its dry run.
            Err(e) if e.contains("(Conflict)") && std::time::Instant::now() < deadline => {
                continue;
            }
            Err(e) => return Err(e),
        };
        if left.is_empty() || std::time::Instant::now() > deadline {
            return Ok(left);
        }
    }
}

fn explained(c: &Change) -> bool {
    let label = "metadata.labels.applyset.kubernetes.io/part-of";
    let defaults_labels =
        c.object.starts_with("v1.ReplicationController.") || c.object.starts_with("batch.v1.Job.");
    c.path == "status"
        || c.path.starts_with("status.")
        || c.path == "metadata.resourceVersion"
        || (c.sign == '-' && (c.path == label || c.path == "metadata.labels"))
        || (c.sign == '+' && defaults_labels && c.path.starts_with("metadata.labels"))
}

/// The objects of `file` that exist (`kind/name` lines), as far as kubectl can name
/// them: lines it cannot resolve (unknown kinds, bad syntax) are simply absent.
pub fn existing(file: &Path, kubeconfig: &Path) -> Vec<String> {
    let out = kubectl_raw(
        &[
            "get",
            "--ignore-not-found",
            "-o",
            "name",
            "-f",
            &file.display().to_string(),
        ],
        kubeconfig,
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}
