//! Crash consistency of the cache with a real `abort()`.
//!
//! Each test runs this test binary again as a child process (only the `crash_child`
//! test, told what to do through environment variables that only this file reads).
//! The child opens the cache with a failpoint armed and aborts at it, leaving the
//! directory exactly as a crash would. The parent then reopens the cache and checks
//! that no partial entry is visible, `tmp/` is clean and the previous state holds.
//! No cluster and no network are needed: the cache stores only what a source
//! verified, so the snapshots come from git bundles (made with the git CLI) read by
//! the bundle source.

// Always true here; it lets clippy's allow-unwrap-in-tests cover the helpers too.
#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawser::cache::{Cache, CacheError, Entry, Record, State};
use hawser::source::bundle::BundleOptions;
use hawser::source::{Revision, Source, SourceKind, SourceSpec};

const CHILD_DIR: &str = "HAWSER_TEST_CRASH_DIR";
const CHILD_BUNDLE: &str = "HAWSER_TEST_CRASH_BUNDLE";
const CHILD_FAILPOINT: &str = "HAWSER_TEST_CRASH_FAILPOINT";
const CHILD_ACTION: &str = "HAWSER_TEST_CRASH_ACTION";

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn new_state(revision: &Revision) -> State {
    let mut state = State::default();
    state.applied = Some(Record {
        revision: revision.clone(),
        digest: "sha256:00".into(),
        source: "test".into(),
        at: 2,
        committer_time: None,
    });
    state
}

/// `git` in `dir`, with no user or system configuration and a fixed identity.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "hawser test")
        .env("GIT_AUTHOR_EMAIL", "test@hawser.invalid")
        .env("GIT_COMMITTER_NAME", "hawser test")
        .env("GIT_COMMITTER_EMAIL", "test@hawser.invalid")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// Two bundles of one repository: `old` with one file, `new` with two.
struct Bundles {
    _dir: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
}

impl Bundles {
    fn new() -> Bundles {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        fs::write(work.join("old.yaml"), "kind: ConfigMap\n").unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "old"]);
        let old = dir.path().join("old.bundle");
        git(
            &work,
            &["bundle", "create", "--quiet", old.to_str().unwrap(), "main"],
        );
        fs::remove_file(work.join("old.yaml")).unwrap();
        fs::create_dir_all(work.join("apps")).unwrap();
        fs::write(work.join("apps/new.yaml"), "kind: ConfigMap\n").unwrap();
        fs::write(work.join("top.yaml"), "kind: Namespace\n").unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "new"]);
        let new = dir.path().join("new.bundle");
        git(
            &work,
            &["bundle", "create", "--quiet", new.to_str().unwrap(), "main"],
        );
        Bundles {
            _dir: dir,
            old,
            new,
        }
    }
}

fn source(bundle: &Path) -> Source {
    Source::new(SourceSpec {
        url: bundle.to_str().unwrap().to_string(),
        kind: SourceKind::Bundle,
        reference: "HEAD".into(),
        path: None,
        sha256: None,
        sha256_from_url: false,
        http: Default::default(),
        limits: Default::default(),
        bundle: BundleOptions {
            insecure_allow_unsigned: true,
            ..BundleOptions::default()
        },
        oci: Default::default(),
        verify: Default::default(),
    })
    .unwrap()
}

/// The revision the bundle names.
fn revision(bundle: &Path) -> Revision {
    source(bundle).resolve().unwrap()
}

/// Fetches the bundle's snapshot into the cache's staging directory and stores it.
fn store(cache: &Cache, bundle: &Path) -> Entry {
    let source = source(bundle);
    let revision = source.resolve().unwrap();
    let staging = cache.staging_dir().unwrap();
    let snapshot = source.fetch(&revision, staging.path()).unwrap();
    cache.store(snapshot).unwrap()
}

/// The child side: does nothing unless started by `run_child`.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(failpoint), Ok(action), Ok(bundle)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_FAILPOINT),
        std::env::var(CHILD_ACTION),
        std::env::var(CHILD_BUNDLE),
    ) else {
        return;
    };
    let cache = Cache::open(&dir, 5)
        .unwrap()
        .with_failpoint(failpoint.parse().unwrap());
    let bundle = Path::new(&bundle);
    match action.as_str() {
        "store" => {
            store(&cache, bundle);
        }
        "state" => cache.save_state(&new_state(&revision(bundle))).unwrap(),
        other => panic!("unknown action {other}"),
    }
}

/// Prepares a cache holding the old bundle's revision as applied, runs the child on
/// the new one, returns whether it was killed by SIGABRT (on unix) or at least failed.
fn run_child(dir: &Path, bundles: &Bundles, failpoint: &str, action: &str) -> (bool, State) {
    // One at a time: a child forked by a parallel test inherits, until its exec, the
    // descriptor of whatever cache lock this process holds at that instant, and a
    // child of ours could then find its cache locked and fail instead of aborting.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let old_state = {
        let cache = Cache::open(dir, 5).unwrap();
        let entry = store(&cache, &bundles.old);
        let mut state = State::default();
        state.applied = Some(entry.record(1));
        cache.save_state(&state).unwrap();
        state
    };
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_FAILPOINT, failpoint)
        .env(CHILD_ACTION, action)
        .env(CHILD_BUNDLE, &bundles.new)
        .output()
        .unwrap()
        .status;
    #[cfg(unix)]
    let aborted = {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(6)
    };
    #[cfg(not(unix))]
    let aborted = !status.success();
    (aborted, old_state)
}

fn assert_consistent_after_store_crash(dir: &Path, bundles: &Bundles, old_state: &State) {
    let (old, new) = (revision(&bundles.old), revision(&bundles.new));
    let left = names(&dir.join("tmp"));
    assert!(
        left.iter().any(|n| n.starts_with("entry-")),
        "the crash left no half-built entry: {left:?}"
    );
    let cache = Cache::open(dir, 5).unwrap();
    assert_eq!(names(&dir.join("snapshots")), [old.as_str()]);
    assert!(
        names(&dir.join("tmp")).is_empty(),
        "{:?}",
        names(&dir.join("tmp"))
    );
    assert!(matches!(cache.load(&new), Err(CacheError::NotFound { .. })));
    cache.load(&old).unwrap();
    assert_eq!(&cache.state().unwrap(), old_state);
    // The interrupted store can simply be done again.
    store(&cache, &bundles.new);
    cache.load(&new).unwrap();
}

#[test]
fn abort_after_the_tree_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = Bundles::new();
    let (aborted, old) = run_child(dir.path(), &bundles, "store:after-tree", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &bundles, &old);
}

#[test]
fn abort_after_meta_json_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = Bundles::new();
    let (aborted, old) = run_child(dir.path(), &bundles, "store:after-meta", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &bundles, &old);
}

#[test]
fn abort_just_before_the_entry_is_renamed_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = Bundles::new();
    let (aborted, old) = run_child(dir.path(), &bundles, "store:before-rename", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &bundles, &old);
}

#[test]
fn abort_before_the_state_rename_keeps_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = Bundles::new();
    let new = revision(&bundles.new);
    let (aborted, old) = run_child(dir.path(), &bundles, "state:before-rename", "state");
    assert!(aborted);
    let left = names(&dir.path().join("tmp"));
    assert!(
        left.iter().any(|n| n.starts_with("state-")),
        "no temporary state file: {left:?}"
    );
    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.state().unwrap(), old);
    assert!(names(&dir.path().join("tmp")).is_empty());
    cache.save_state(&new_state(&new)).unwrap();
    assert_eq!(cache.state().unwrap(), new_state(&new));
}

/// A failpoint on a step the operation does not reach changes nothing: the store
/// completes and the child exits normally.
#[test]
fn a_failpoint_elsewhere_does_not_fire() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = Bundles::new();
    let (aborted, _) = run_child(dir.path(), &bundles, "state:before-rename", "store");
    assert!(!aborted);
    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.load(&revision(&bundles.new)).unwrap().files(), 2);
}
