//! Crash consistency of the cache with a real `abort()`.
//!
//! Each test runs this test binary again as a child process (only the `crash_child`
//! test, told what to do through environment variables that only this file reads).
//! The child opens the cache with a failpoint armed and aborts at it, leaving the
//! directory exactly as a crash would. The parent then reopens the cache and checks
//! that no partial entry is visible, `tmp/` is clean and the previous state holds.
//! No cluster and no network are needed.

// Always true here; it lets clippy's allow-unwrap-in-tests cover the helpers too.
#![cfg(test)]

use std::fs;
use std::path::Path;
use std::process::Command;

use hawser::cache::{Cache, CacheError, Record, State};

const REV_OLD: &str = "1111111111111111111111111111111111111111";
const REV_NEW: &str = "2222222222222222222222222222222222222222";
const CHILD_DIR: &str = "HAWSER_TEST_CRASH_DIR";
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

fn new_state(revision: &str) -> State {
    let mut state = State::default();
    state.applied = Some(Record {
        revision: revision.into(),
        digest: "sha256:00".into(),
        source: "test".into(),
        at: 2,
        committer_time: None,
    });
    state
}

/// The child side: does nothing unless started by `run_child`.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(failpoint), Ok(action)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_FAILPOINT),
        std::env::var(CHILD_ACTION),
    ) else {
        return;
    };
    let cache = Cache::open(&dir, 5)
        .unwrap()
        .with_failpoint(failpoint.parse().unwrap());
    match action.as_str() {
        "store" => {
            let staging = cache.staging_dir().unwrap();
            fs::create_dir_all(staging.path().join("apps")).unwrap();
            fs::write(staging.path().join("apps/new.yaml"), "kind: ConfigMap\n").unwrap();
            fs::write(staging.path().join("top.yaml"), "kind: Namespace\n").unwrap();
            cache.store(REV_NEW, "test", staging.path()).unwrap();
        }
        "state" => cache.save_state(&new_state(REV_NEW)).unwrap(),
        other => panic!("unknown action {other}"),
    }
}

/// Prepares a cache holding REV_OLD as applied, runs the child, returns whether it
/// was killed by SIGABRT (on unix) or at least failed.
fn run_child(dir: &Path, failpoint: &str, action: &str) -> (bool, State) {
    // One at a time: a child forked by a parallel test inherits, until its exec, the
    // descriptor of whatever cache lock this process holds at that instant, and a
    // child of ours could then find its cache locked and fail instead of aborting.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let old_state = {
        let cache = Cache::open(dir, 5).unwrap();
        let staging = cache.staging_dir().unwrap();
        fs::write(staging.path().join("old.yaml"), "kind: ConfigMap\n").unwrap();
        let entry = cache.store(REV_OLD, "test", staging.path()).unwrap();
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

fn assert_consistent_after_store_crash(dir: &Path, old_state: &State) {
    let left = names(&dir.join("tmp"));
    assert!(
        left.iter().any(|n| n.starts_with("entry-")),
        "the crash left no half-built entry: {left:?}"
    );
    let cache = Cache::open(dir, 5).unwrap();
    assert_eq!(names(&dir.join("snapshots")), [REV_OLD]);
    assert!(
        names(&dir.join("tmp")).is_empty(),
        "{:?}",
        names(&dir.join("tmp"))
    );
    assert!(matches!(
        cache.load(REV_NEW),
        Err(CacheError::NotFound { .. })
    ));
    cache.load(REV_OLD).unwrap();
    assert_eq!(&cache.state().unwrap(), old_state);
    // The interrupted store can simply be done again.
    let staging = cache.staging_dir().unwrap();
    fs::write(staging.path().join("new.yaml"), "x").unwrap();
    cache.store(REV_NEW, "test", staging.path()).unwrap();
    cache.load(REV_NEW).unwrap();
}

#[test]
fn abort_after_the_tree_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (aborted, old) = run_child(dir.path(), "store:after-tree", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &old);
}

#[test]
fn abort_after_meta_json_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (aborted, old) = run_child(dir.path(), "store:after-meta", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &old);
}

#[test]
fn abort_just_before_the_entry_is_renamed_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let (aborted, old) = run_child(dir.path(), "store:before-rename", "store");
    assert!(aborted);
    assert_consistent_after_store_crash(dir.path(), &old);
}

#[test]
fn abort_before_the_state_rename_keeps_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let (aborted, old) = run_child(dir.path(), "state:before-rename", "state");
    assert!(aborted);
    let left = names(&dir.path().join("tmp"));
    assert!(
        left.iter().any(|n| n.starts_with("state-")),
        "no temporary state file: {left:?}"
    );
    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.state().unwrap(), old);
    assert!(names(&dir.path().join("tmp")).is_empty());
    cache.save_state(&new_state(REV_NEW)).unwrap();
    assert_eq!(cache.state().unwrap(), new_state(REV_NEW));
}

/// A failpoint on a step the operation does not reach changes nothing: the store
/// completes and the child exits normally.
#[test]
fn a_failpoint_elsewhere_does_not_fire() {
    let dir = tempfile::tempdir().unwrap();
    let (aborted, _) = run_child(dir.path(), "state:before-rename", "store");
    assert!(!aborted);
    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.load(REV_NEW).unwrap().files, 2);
}
