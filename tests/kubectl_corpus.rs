//! hawser against kubectl on the manifests Kubernetes' own tests apply: every YAML and
//! JSON file of `hack/testdata/`, `test/fixtures/` and `test/e2e/testing-manifests/` in
//! the `k8s.io/kubernetes` module that `tests/env/build` builds the control plane from
//! (same version), each applied on its own, the way a user would.
//!
//! Per file, in a namespace of its own (kubectl's context namespace, hawser's
//! `--namespace`):
//! - kubectl's verdict: `kubectl apply --server-side --dry-run=server --force-conflicts`;
//! - hawser's: `hawser diff --dir` on a directory holding only that file, with every
//!   scope allowance given;
//! - hawser accepts: `hawser apply --once` succeeds, and `kubectl diff --server-side
//!   --field-manager=hawser` then shows nothing but hawser's ApplySet label;
//! - hawser refuses: a one-line error, and `hawser apply --once` writes nothing (no
//!   object of the file appears, no inventory parent).
//!
//! Every file must get kubectl's verdict, or the one listed in [`DISAGREEMENTS`] with
//! the reason. An entry that stops disagreeing fails the test too, so the list stays
//! true.
//!
//! Files run concurrently on the one control plane. Objects outside a file's own
//! namespace (cluster-scoped ones, or in `default`) may be shared with other files:
//! files that share one run one after another, each deleting what it made before the
//! next; a file whose objects already exist (the control plane's own `kubernetes`
//! Service, say) is only dry-run, so the test never takes over what it did not create.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hawser::manifests::{self, BuiltinNamespacing, ParseLimits, Scope};
use support::cluster::{admin_kubeconfig, eventually, kubectl, kubectl_raw, unique};
use support::parity::{
    accepted, diff_beyond_hawser, existing, hawser_apply, hawser_diff, kubeconfig_in,
    kubectl_dry_run, one_line_error,
};

const DIRS: &[&str] = &[
    "hack/testdata",
    "test/fixtures",
    "test/e2e/testing-manifests",
];
/// Files checked at once. Each check is a few short kubectl/hawser processes; more
/// would only queue on two cores.
const WORKERS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepts,
    Refuses,
}

/// Where hawser's verdict differs from kubectl's, on purpose.
struct Disagreement {
    file: &'static str,
    hawser: Verdict,
    why: &'static str,
}

/// The files where hawser does not give kubectl's verdict, each with its reason.
const DISAGREEMENTS: &[Disagreement] = &[
    Disagreement {
        file: "hack/testdata/multi-resource-1.yaml",
        hawser: Verdict::Accepts,
        why: "better: it creates Namespace multi-resource-ns and objects in it; hawser applies \
              the Namespace first and dry-runs the rest once it exists, in one run, where \
              kubectl's dry run fails (namespace not found) and a real apply needs two runs",
    },
    Disagreement {
        file: "hack/testdata/multi-resource-4.yaml",
        hawser: Verdict::Accepts,
        why: "better: it holds a CRD and a Widget of it; hawser applies the CRD, waits until \
              it is Established and then the Widget, where kubectl's dry run fails (no \
              matches for kind Widget) and a real apply needs two runs",
    },
];

/// One corpus file, set up to be checked on its own.
struct Case {
    /// Path inside the module, e.g. `hack/testdata/list.yaml`.
    rel: String,
    /// The directory holding only this file, and the file in it.
    dir: PathBuf,
    file: PathBuf,
    namespace: String,
    /// The admin kubeconfig with `namespace` as its context's namespace.
    kubeconfig: PathBuf,
    /// Identities of its objects outside its own namespace, which other files may share.
    shared: Vec<String>,
    /// Whether an object of the file sets `metadata.resourceVersion`.
    pins_version: bool,
}

/// What checking one file found.
struct Checked {
    kubectl: Verdict,
    kubectl_said: String,
    hawser: Verdict,
    hawser_said: String,
    /// Where hawser's behaviour broke a rule of the test, whatever the verdicts.
    problems: Vec<String>,
    /// Checks left out, and why.
    notes: Vec<String>,
    took: std::time::Duration,
}

#[test]
fn kubectl_parity_on_kubernetes_test_manifests() {
    let started = Instant::now();
    let module = kubernetes_module();
    let scratch = tempfile::tempdir().unwrap();
    let run = unique("corpus");
    let cases = cases(&module, scratch.path(), &run);
    assert!(
        cases.len() > 200,
        "the corpus has about 270 files; found {} under {}",
        cases.len(),
        module.display()
    );
    create_namespaces(&cases, scratch.path());

    let lanes = lanes(&cases);
    eprintln!(
        "kubectl parity: {} files in {} lanes, the longest {} files",
        cases.len(),
        lanes.len(),
        lanes.last().map_or(0, Vec::len)
    );
    let lanes = Mutex::new(lanes);
    let results: Mutex<BTreeMap<usize, Checked>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let Some(lane) = lanes.lock().unwrap().pop() else {
                        break;
                    };
                    for index in lane {
                        let checked = check(&cases[index]);
                        results.lock().unwrap().insert(index, checked);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    delete_namespaces(&cases);

    let disagreements: HashMap<&str, &Disagreement> =
        DISAGREEMENTS.iter().map(|d| (d.file, d)).collect();
    let mut failures = Vec::new();
    let mut agree = 0;
    let mut notes = Vec::new();
    for (index, checked) in &results {
        let case = &cases[*index];
        let listed = disagreements.get(case.rel.as_str());
        if checked.hawser == checked.kubectl {
            agree += 1;
        }
        let expected = listed.map_or(checked.kubectl, |d| d.hawser);
        if let Some(d) = listed
            && checked.kubectl == d.hawser
        {
            failures.push(format!(
                "{}: listed as a disagreement ({}) but kubectl's verdict is the same now",
                case.rel, d.why
            ));
        }
        if checked.hawser != expected {
            failures.push(format!(
                "{}: kubectl {:?}, hawser {:?}; kubectl: {}; hawser: {}",
                case.rel,
                checked.kubectl,
                checked.hawser,
                checked.kubectl_said,
                checked.hawser_said
            ));
        }
        failures.extend(
            checked
                .problems
                .iter()
                .map(|p| format!("{}: {p}", case.rel)),
        );
        notes.extend(checked.notes.iter().map(|n| format!("{}: {n}", case.rel)));
    }
    for d in DISAGREEMENTS {
        if !cases.iter().any(|c| c.rel == d.file) {
            failures.push(format!(
                "{}: listed as a disagreement but not in the corpus",
                d.file
            ));
        }
    }
    eprintln!(
        "kubectl parity: {agree} of {} files get kubectl's verdict, {} documented disagreements, in {:.0?}",
        results.len(),
        DISAGREEMENTS.len(),
        started.elapsed()
    );
    for note in &notes {
        eprintln!("  note: {note}");
    }
    let mut slowest: Vec<(&Checked, &Case)> =
        results.iter().map(|(i, c)| (c, &cases[*i])).collect();
    slowest.sort_by_key(|(c, _)| std::cmp::Reverse(c.took));
    for (checked, case) in slowest.iter().take(5) {
        eprintln!("  slowest: {} in {:.1?}", case.rel, checked.took);
    }
    assert!(
        failures.is_empty(),
        "{} of {} files broke parity:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

/// The module directory of `k8s.io/kubernetes` at the version tests/env builds.
fn kubernetes_module() -> PathBuf {
    let go_mod =
        std::fs::read_to_string(support::cluster::repo_root().join("tests/env/k8s/go.mod"))
            .unwrap();
    let version = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("tests/env/k8s/go.mod requires k8s.io/kubernetes");
    let out = Command::new("go")
        .args([
            "mod",
            "download",
            "-json",
            &format!("k8s.io/kubernetes@v{version}"),
        ])
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go runs (tests/env/build needs it too)");
    assert!(
        out.status.success(),
        "go mod download k8s.io/kubernetes@v{version}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(
        info["Dir"]
            .as_str()
            .expect("go mod download prints the Dir"),
    )
}

/// Every manifest file of the corpus, each copied alone into a directory of its own.
fn cases(module: &Path, scratch: &Path, run: &str) -> Vec<Case> {
    let mut files = Vec::new();
    for dir in DIRS {
        walk(&module.join(dir), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let rel = path
                .strip_prefix(module)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let dir = scratch.join(format!("{i:03}"));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(path.file_name().unwrap());
            std::fs::copy(&path, &file).unwrap();
            let namespace = format!("{run}-{i:03}");
            let shared = shared_objects(&dir, &namespace);
            let kubeconfig = kubeconfig_in(&namespace, scratch);
            let pins_version = manifests::load_dir(&dir, None, &ParseLimits::default())
                .and_then(manifests::expand_lists)
                .is_ok_and(|docs| {
                    docs.iter()
                        .any(|d| d.tree().pointer("/metadata/resourceVersion").is_some())
                });
            Case {
                rel,
                dir,
                file,
                namespace,
                kubeconfig,
                shared,
                pins_version,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
}

/// The objects of a case that live outside its namespace, by identity, as hawser's
/// offline reading sees them (built-in kinds' scopes); none when it cannot read them.
fn shared_objects(dir: &Path, namespace: &str) -> Vec<String> {
    let Ok(docs) = manifests::load_dir(dir, None, &ParseLimits::default()) else {
        return Vec::new();
    };
    let scope = Scope {
        namespace: namespace.to_string(),
        allowed_namespaces: vec!["*".into()],
        allow_cluster_scoped: true,
        allow_kinds: support::parity::ALL_POWER_KINDS
            .split(',')
            .map(str::to_string)
            .collect(),
        deny_kinds: Vec::new(),
    };
    let Ok(set) = manifests::build(docs, &scope, &BuiltinNamespacing) else {
        return Vec::new();
    };
    set.objects
        .iter()
        .filter(|m| m.id.namespace.as_deref() != Some(namespace))
        .map(|m| {
            format!(
                "{}/{}/{}",
                m.id.group_kind(),
                m.id.namespace.as_deref().unwrap_or(""),
                m.id.name
            )
        })
        .collect()
}

/// Groups cases that share an object into lanes, run one case after another; the
/// largest lanes first, so the slowest lane starts early.
fn lanes(cases: &[Case]) -> Vec<Vec<usize>> {
    // Union-find over cases, joined through the objects they share.
    let mut parent: Vec<usize> = (0..cases.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, case) in cases.iter().enumerate() {
        for key in &case.shared {
            match owner.get(key.as_str()) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    owner.insert(key, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..cases.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut lanes: Vec<Vec<usize>> = groups.into_values().collect();
    // Popped from the end: the longest lane last in the vector.
    lanes.sort_by_key(Vec::len);
    lanes
}

fn create_namespaces(cases: &[Case], scratch: &Path) {
    let list: String = cases
        .iter()
        .map(|c| {
            format!(
                "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
                c.namespace
            )
        })
        .collect();
    let path = scratch.join("namespaces.yaml");
    std::fs::write(&path, list).unwrap();
    kubectl(&["create", "-f", &path.display().to_string()]);
    // A Pod is refused until the serviceaccount controller has made the namespace's
    // `default` ServiceAccount; kubectl's verdict on a pod file must not depend on
    // that race.
    eventually(
        "the default ServiceAccount in every corpus namespace",
        Duration::from_secs(120),
        || {
            let served = kubectl(&[
                "get",
                "serviceaccounts",
                "--all-namespaces",
                "--field-selector",
                "metadata.name=default",
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}",
            ]);
            let served: std::collections::HashSet<&str> = served.lines().collect();
            cases.iter().all(|c| served.contains(c.namespace.as_str()))
        },
    );
}

fn delete_namespaces(cases: &[Case]) {
    let mut args = vec!["delete", "namespace", "--wait=false", "--ignore-not-found"];
    args.extend(cases.iter().map(|c| c.namespace.as_str()));
    let _ = kubectl_raw(&args, &admin_kubeconfig());
}

/// Checks one file: both verdicts, then what hawser does with it.
fn check(case: &Case) -> Checked {
    let started = Instant::now();
    let ns = &case.namespace;
    let (kubectl_ok, kubectl_said) = kubectl_dry_run(&case.file, &case.kubeconfig);
    let diff = hawser_diff(&case.dir, ns);
    let hawser = if accepted(&diff) {
        Verdict::Accepts
    } else {
        Verdict::Refuses
    };
    let mut checked = Checked {
        kubectl: if kubectl_ok {
            Verdict::Accepts
        } else {
            Verdict::Refuses
        },
        kubectl_said,
        hawser,
        hawser_said: diff.stderr.trim().to_string(),
        problems: Vec::new(),
        notes: Vec::new(),
        took: Default::default(),
    };
    let before = existing(&case.file, &case.kubeconfig);
    match hawser {
        Verdict::Refuses => {
            if let Err(e) = one_line_error(&diff) {
                checked.problems.push(format!("hawser diff: {e}"));
            }
            let apply = hawser_apply(&case.dir, ns);
            if apply.code != 2 {
                checked.problems.push(format!(
                    "hawser apply --once exited {} where diff refused: {}",
                    apply.code, apply.stderr
                ));
            } else if let Err(e) = one_line_error(&apply) {
                checked.problems.push(format!("hawser apply --once: {e}"));
            }
            let after = existing(&case.file, &case.kubeconfig);
            if after != before {
                checked.problems.push(format!(
                    "a refused apply wrote objects: before {before:?}, after {after:?}"
                ));
            }
            if support::cluster::exists("configmap", ns, "hawser") {
                checked
                    .problems
                    .push("a refused apply wrote the inventory parent".into());
            }
        }
        Verdict::Accepts if !before.is_empty() => {
            checked.notes.push(format!(
                "dry-run only: its objects exist already ({}), and the test takes over nothing it did not create",
                before.join(", ")
            ));
        }
        Verdict::Accepts => {
            let apply = hawser_apply(&case.dir, ns);
            if apply.code != 0 {
                checked.problems.push(format!(
                    "hawser diff accepted but apply --once exited {}: {}",
                    apply.code, apply.stderr
                ));
            } else if case.pins_version {
                checked.notes.push(
                    "applied; not diffed: the file pins metadata.resourceVersion, which kubectl \
                     diff sends as a precondition, so it conflicts after kubectl's own apply too"
                        .into(),
                );
            } else {
                let deadline = Instant::now() + std::time::Duration::from_secs(20);
                match diff_beyond_hawser(&case.file, &case.kubeconfig, deadline) {
                    Ok(lines) if lines.is_empty() => {}
                    Ok(lines) => checked.problems.push(format!(
                        "after hawser's apply, kubectl diff shows: {}",
                        lines.join(" | ")
                    )),
                    Err(e) => checked.problems.push(e),
                }
            }
            if !case.shared.is_empty() {
                checked.notes.extend(remove(case));
            }
        }
    }
    checked.took = started.elapsed();
    checked
}

/// Deletes what a case created outside its namespace, before the next case of its
/// lane. Controllers may hold an object a while (a PersistentVolume that another
/// file's claim bound): then the next case finds it and is only dry-run.
fn remove(case: &Case) -> Option<String> {
    let out = kubectl_raw(
        &[
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=20s",
            "-f",
            &case.file.display().to_string(),
        ],
        &case.kubeconfig,
    );
    (!out.status.success()).then(|| {
        format!(
            "not cleaned up in time: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}
