//! hawser next to kubectl on the same files: the commands a user would run, and the
//! checks that say whether the two agree. Used by `tests/manifest_parity.rs` and
//! `tests/kubectl_corpus.rs`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

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

/// kubectl's verdict: `apply --server-side --dry-run=server --force-conflicts -f file`
/// in `ns`. Returns whether it accepted, and its stderr.
pub fn kubectl_dry_run(file: &Path, ns: &str) -> (bool, String) {
    let out = kubectl_raw(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "-n",
            ns,
            "-f",
            &file.display().to_string(),
        ],
        &admin_kubeconfig(),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// What `kubectl diff --server-side --field-manager=hawser` shows for `file` after
/// hawser applied it, beyond the one thing hawser adds: its ApplySet member label
/// (and the `labels:` line above it when it was the only label). Empty means the
/// cluster holds exactly what kubectl would have made of the file.
pub fn kubectl_diff_beyond_applyset_label(file: &Path, ns: &str) -> Result<Vec<String>, String> {
    let out = kubectl_raw(
        &[
            "diff",
            "--server-side",
            "--field-manager=hawser",
            "--force-conflicts",
            "-n",
            ns,
            "-f",
            &file.display().to_string(),
        ],
        &admin_kubeconfig(),
    );
    // kubectl diff: 0 no differences, 1 differences, >1 kubectl or diff failed.
    if out.status.code().is_none_or(|c| c > 1) {
        return Err(format!(
            "kubectl diff failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(text
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++"))
        .filter(|l| !l.starts_with("---"))
        .filter(|l| {
            let change = l[1..].trim();
            !(l.starts_with('-')
                && (change.starts_with("applyset.kubernetes.io/part-of:") || change == "labels:"))
        })
        .map(str::to_string)
        .collect())
}

/// The objects of `file` that exist (`kind/name` lines), as far as kubectl can name
/// them: lines it cannot resolve (unknown kinds, bad syntax) are simply absent.
pub fn existing(file: &Path, ns: &str) -> Vec<String> {
    let out = kubectl_raw(
        &[
            "get",
            "--ignore-not-found",
            "-o",
            "name",
            "-n",
            ns,
            "-f",
            &file.display().to_string(),
        ],
        &admin_kubeconfig(),
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}
