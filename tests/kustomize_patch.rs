//! The patch appliers against the real `kustomize build` (v5.8.1, from
//! `tests/env/build-tools`, found through `HAWSER_TEST_TOOLS`).
//!
//! A generated set of base objects (Deployments with containers, env, ports, volumes;
//! Services with ports; a custom resource) and patches, strategic merge and JSON 6902,
//! hand-picked corner cases plus seeded random ones, is written into one
//! kustomization directory (one base object and one patch per case, each case its own
//! object name), built once by kustomize, and compared object by object with
//! `strategic_merge` / `json6902` applied to the same inputs. Patches kustomize
//! refuses are built one directory each: hawser must refuse them too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawser::render::patch::{Merged, json6902, strategic_merge};
use serde_json::{Value, json};

#[path = "support/oracle.rs"]
#[allow(dead_code)]
mod oracle;

fn kustomize() -> PathBuf {
    oracle::tool("kustomize")
}

/// `kustomize build DIR`: the documents, or kustomize's error text.
fn build(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new(kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .expect("run kustomize");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    serde_saphyr::from_multiple::<Value>(&text).map_err(|e| format!("parse output: {e}"))
}

#[path = "kustomize_patch/cases.rs"]
mod cases;

use cases::{
    Case, Patch, Rng, deployment, json_cases, json_errors, random_cases, smp_cases, smp_for,
};

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, make, body) in smp_cases() {
        let base = make(name);
        let patch = Patch::Smp(smp_for(&base, body));
        cases.push(Case {
            name: name.to_string(),
            base,
            patch,
        });
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, base, patch) in random_cases(&mut rng) {
        cases.push(Case {
            name,
            base,
            patch: Patch::Smp(patch),
        });
    }
    for (name, make, ops) in json_cases() {
        cases.push(Case {
            name: name.to_string(),
            base: make(name),
            patch: Patch::Json(ops),
        });
    }
    cases
}

/// Writes every case into one kustomization: `base-N.json`, `patch-N.json`.
fn write_kustomization(dir: &Path, cases: &[Case]) {
    let mut resources = Vec::new();
    let mut patches = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let base = format!("base-{i}.json");
        write_json(&dir.join(&base), &case.base);
        resources.push(json!(base));
        let file = format!("patch-{i}.json");
        match &case.patch {
            Patch::Smp(p) => {
                write_json(&dir.join(&file), p);
                patches.push(json!({"path": file}));
            }
            Patch::Json(ops) => {
                write_json(&dir.join(&file), &Value::Array(ops.clone()));
                patches.push(json!({
                    "path": file,
                    "target": {"kind": case.base["kind"], "name": case.base["metadata"]["name"]}
                }));
            }
        }
    }
    let k = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "patches": patches,
    });
    write_json(&dir.join("kustomization.yaml"), &k);
}

fn hawser_result(case: &Case) -> Result<Option<Value>, String> {
    let mut target = case.base.clone();
    match &case.patch {
        Patch::Smp(p) => match strategic_merge(&mut target, p).map_err(|e| e.to_string())? {
            Merged::Patched => {
                // kustomize keeps the target's name, kind and namespace.
                target["metadata"]["name"] = case.base["metadata"]["name"].clone();
                Ok(Some(target))
            }
            Merged::Deleted => Ok(None),
        },
        Patch::Json(ops) => {
            json6902(&mut target, ops).map_err(|e| e.to_string())?;
            Ok(Some(target))
        }
    }
}

/// kustomize drops an empty `metadata.annotations` from every object it prints (its
/// own bookkeeping annotations come and go there), patched or not: not the patch's doing.
fn normalize(mut doc: Value) -> Value {
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        && m.get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
    {
        m.remove("annotations");
    }
    doc
}

fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return first_difference(p, q, &format!("{path}.{k}")),
                    (p, q) => return format!("{path}.{k}: hawser {p:?}, kustomize {q:?}"),
                }
            }
            String::new()
        }
        _ => format!("{path}: hawser {a}, kustomize {b}"),
    }
}

#[test]
fn appliers_match_kustomize_build_on_generated_patches() {
    let cases = all_cases();
    let dir = tempfile::tempdir().unwrap();
    write_kustomization(dir.path(), &cases);
    let built = build(dir.path()).unwrap_or_else(|e| panic!("kustomize build failed: {e}"));
    let by_name: BTreeMap<String, Value> = built
        .into_iter()
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_string(), d))
        .collect();

    let mut failures = Vec::new();
    for case in &cases {
        let expected = by_name.get(&case.name);
        match (hawser_result(case).map(|r| r.map(normalize)), expected) {
            (Ok(Some(ours)), Some(theirs)) if ours == *theirs => {}
            (Ok(None), None) => {}
            (Ok(Some(ours)), Some(theirs)) => failures.push(format!(
                "{}: {}",
                case.name,
                first_difference(&ours, theirs, "")
            )),
            (Ok(ours), theirs) => failures.push(format!(
                "{}: hawser kept it: {}, kustomize kept it: {}",
                case.name,
                ours.is_some(),
                theirs.is_some()
            )),
            (Err(e), _) => failures.push(format!("{}: hawser refused: {e}", case.name)),
        }
    }
    eprintln!(
        "{} of {} patch cases match kustomize",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "differences from kustomize:\n{}",
        failures.join("\n")
    );
    // The set must be what it says: deletions, merges and replacements all happened.
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    assert!(!by_name.contains_key("delete-whole"));
}

#[test]
fn json_patches_kustomize_refuses_are_refused() {
    for (name, ops) in json_errors() {
        let case = Case {
            name: name.to_string(),
            base: deployment(name),
            patch: Patch::Json(ops),
        };
        let dir = tempfile::tempdir().unwrap();
        write_kustomization(dir.path(), std::slice::from_ref(&case));
        let theirs = build(dir.path());
        assert!(theirs.is_err(), "{name}: kustomize accepted it: {theirs:?}");
        let ours = hawser_result(&case);
        let err = ours.expect_err(&format!("{name}: hawser accepted it"));
        assert!(err.contains("json patch operation 0"), "{name}: {err}");
    }
}
