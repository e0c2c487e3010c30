use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::*;
use crate::source::{Revision, Snapshot};

pub(super) const REV_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(super) const REV_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn staged(cache: &Cache, files: &[(&str, &str)]) -> Staging {
    let staging = cache.staging_dir().unwrap();
    for (rel, content) in files {
        write(staging.path(), rel, content);
    }
    staging
}

fn rev(n: usize) -> String {
    format!("{n:040x}")
}

/// The revision `text` names; what a source's answer or `state.json` would parse.
pub(super) fn r(text: &str) -> Revision {
    text.parse().unwrap()
}

/// Stores what a source would have fetched into `dir` as `revision`.
fn store(cache: &Cache, revision: &str, source: &str, dir: &Path) -> Result<Entry, CacheError> {
    cache.store(Snapshot::unverified(r(revision), dir.to_path_buf(), source))
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn open_creates_the_layout_and_clears_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    drop(Cache::open(&root, 5).unwrap());
    assert_eq!(names(&root), ["lock", "snapshots", "tmp"]);
    write(&root.join("tmp"), "entry-x/tree/a.yaml", "half");
    fs::write(root.join("tmp/state-1"), "{").unwrap();
    drop(Cache::open(&root, 5).unwrap());
    assert!(names(&root.join("tmp")).is_empty());
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = Cache::open(dir.path(), 5).unwrap();
    let err = Cache::open(dir.path(), 5).unwrap_err();
    assert!(matches!(err, CacheError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another hawser process"));
    drop(first);
    Cache::open(dir.path(), 5).unwrap();
}

#[test]
fn digest_follows_the_documented_definition() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let staging = staged(&cache, &[("b.yaml", "b: 1\n"), ("a/x.yaml", "x: 2\n")]);
    let entry = store(
        &cache,
        REV_A,
        "https://git.example/repo@main",
        staging.path(),
    )
    .unwrap();

    let line = |path: &str, content: &str| {
        format!(
            "{path}\0100644\0{}\n",
            tree::hex(&Sha256::digest(content.as_bytes()))
        )
    };
    let mut expected = Sha256::new();
    expected.update(line("a/x.yaml", "x: 2\n"));
    expected.update(line("b.yaml", "b: 1\n"));
    assert_eq!(
        entry.digest(),
        format!("sha256:{}", tree::hex(&expected.finalize()))
    );
    assert_eq!((entry.files(), entry.bytes()), (2, 10));
    assert_eq!(entry.revision(), REV_A);
    assert_eq!(entry.source(), "https://git.example/repo@main");
    assert_eq!(
        entry.tree(),
        dir.path().join("snapshots").join(REV_A).join("tree")
    );
    assert_eq!(
        fs::read_to_string(entry.tree().join("a/x.yaml")).unwrap(),
        "x: 2\n"
    );

    let meta: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.path().join("snapshots").join(REV_A).join("meta.json")).unwrap(),
    )
    .unwrap();
    for field in [
        "revision",
        "source",
        "digest",
        "files",
        "bytes",
        "stored_at",
    ] {
        assert!(meta.get(field).is_some(), "meta.json lacks {field}: {meta}");
    }
}

#[cfg(unix)]
#[test]
fn the_executable_bit_is_part_of_the_digest() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let plain = store(
        &cache,
        REV_A,
        "s",
        staged(&cache, &[("run.sh", "echo")]).path(),
    )
    .unwrap();
    let staging = staged(&cache, &[("run.sh", "echo")]);
    fs::set_permissions(
        staging.path().join("run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let exec = store(&cache, REV_B, "s", staging.path()).unwrap();
    assert_ne!(plain.digest(), exec.digest());
    assert_eq!(cache.load(&r(REV_B)).unwrap().digest(), exec.digest());
}

#[test]
fn staged_trees_are_moved_and_outside_trees_copied() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("c"), 5).unwrap();
    let staging = staged(&cache, &[("a.yaml", "a")]);
    store(&cache, REV_A, "s", staging.path()).unwrap();
    assert!(!staging.path().exists());

    let outside = dir.path().join("manifests");
    write(&outside, "b.yaml", "b");
    let entry = store(&cache, REV_B, "s", &outside).unwrap();
    assert!(outside.join("b.yaml").exists());
    assert_eq!(cache.load(&r(REV_B)).unwrap(), entry);
}

#[test]
fn storing_a_present_revision_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let first = store(&cache, REV_A, "one", staged(&cache, &[("a", "1")]).path()).unwrap();
    let again = store(
        &cache,
        REV_A,
        "two",
        staged(&cache, &[("a", "other")]).path(),
    )
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(fs::read_to_string(again.tree().join("a")).unwrap(), "1");
}

/// Keys come from revisions, which were parsed where they entered (a source's
/// answer, `state.json`, `meta.json`); text that is no revision never gets a key.
#[test]
fn revisions_that_are_not_ids_are_refused() {
    assert_eq!(key(&r(&REV_A.to_uppercase())), REV_A);
    let sha = "ab".repeat(32);
    assert_eq!(key(&r(&format!("sha256:{sha}"))), format!("sha256-{sha}"));
    assert_eq!(
        key(&r(&format!("v1.2@sha256:{sha}"))),
        format!("sha256-{sha}")
    );
    for bad in [
        "",
        "main",
        "../../etc",
        "abc",
        &format!("{REV_A}/.."),
        "sha256-abc",
        &format!("md5:{sha}"),
    ] {
        let err = bad.parse::<Revision>().unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn symlinks_in_a_tree_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let staging = staged(&cache, &[("a.yaml", "a")]);
    std::os::unix::fs::symlink("/etc/passwd", staging.path().join("link.yaml")).unwrap();
    let err = store(&cache, REV_A, "s", staging.path()).unwrap_err();
    assert!(matches!(err, CacheError::NotAFile { .. }), "{err}");
    assert!(err.to_string().contains("link.yaml"), "{err}");
    assert!(names(&dir.path().join("snapshots")).is_empty());
    assert!(matches!(
        cache.load(&r(REV_A)),
        Err(CacheError::NotFound { .. })
    ));
}

/// Each way an entry can be damaged on disk is caught by `load`, moved out of
/// `snapshots/`, and the revision can be stored again.
#[test]
fn corrupt_entries_are_removed_and_never_returned() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 7] = [
        ("edited file", |e| {
            fs::write(e.join("tree/a.yaml"), "A").unwrap()
        }),
        ("extra file", |e| {
            fs::write(e.join("tree/extra.yaml"), "x").unwrap()
        }),
        ("missing file", |e| {
            fs::remove_file(e.join("tree/b/c.yaml")).unwrap()
        }),
        ("missing meta", |e| {
            fs::remove_file(e.join("meta.json")).unwrap()
        }),
        ("garbled meta", |e| {
            fs::write(e.join("meta.json"), "{\"revision\":").unwrap()
        }),
        ("missing tree", |e| {
            fs::remove_dir_all(e.join("tree")).unwrap()
        }),
        ("foreign meta", |e| {
            let meta = fs::read_to_string(e.join("meta.json")).unwrap();
            fs::write(e.join("meta.json"), meta.replace(REV_A, REV_B)).unwrap();
        }),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 5).unwrap();
        let files = [("a.yaml", "a"), ("b/c.yaml", "c")];
        store(&cache, REV_A, "s", staged(&cache, &files).path()).unwrap();
        damage(&dir.path().join("snapshots").join(REV_A));

        let err = cache.load(&r(REV_A)).unwrap_err();
        assert!(matches!(err, CacheError::Corrupt { .. }), "{what}: {err}");
        assert!(err.to_string().contains(REV_A), "{what}: {err}");
        assert!(names(&dir.path().join("snapshots")).is_empty(), "{what}");
        assert!(
            matches!(cache.load(&r(REV_A)), Err(CacheError::NotFound { .. })),
            "{what}"
        );

        let entry = store(&cache, REV_A, "s", staged(&cache, &files).path()).unwrap();
        assert_eq!(cache.load(&r(REV_A)).unwrap(), entry, "{what}");
    }
}

#[test]
fn storing_over_a_corrupt_entry_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let first = store(&cache, REV_A, "s", staged(&cache, &[("a", "1")]).path()).unwrap();
    fs::write(first.tree().join("a"), "tampered").unwrap();
    let second = store(&cache, REV_A, "s", staged(&cache, &[("a", "1")]).path()).unwrap();
    assert_eq!(second.digest(), first.digest());
    assert_eq!(fs::read_to_string(second.tree().join("a")).unwrap(), "1");
}

#[test]
fn eviction_keeps_the_newest_and_the_applied_and_good_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 3).unwrap();
    let first = store(&cache, &rev(1), "s", staged(&cache, &[("a", "1")]).path()).unwrap();
    let second = store(&cache, &rev(2), "s", staged(&cache, &[("a", "2")]).path()).unwrap();
    cache
        .save_state(&State {
            applied: Some(first.record(1)),
            good: Some(second.record(2)),
            ..State::default()
        })
        .unwrap();
    for n in 3..=6 {
        // Each store leaves one unprotected older entry beyond `keep`: the order is exact.
        store(
            &cache,
            &rev(n),
            "s",
            staged(&cache, &[("a", &n.to_string())]).path(),
        )
        .unwrap();
    }
    let kept = names(&dir.path().join("snapshots"));
    assert_eq!(kept, [rev(1), rev(2), rev(6)]);
    assert!(names(&dir.path().join("tmp")).is_empty());
    assert_eq!(cache.list().unwrap().len(), 3);
}

#[test]
fn eviction_within_one_second_still_removes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 2).unwrap();
    for n in 1..=4 {
        store(&cache, &rev(n), "s", staged(&cache, &[("a", "x")]).path()).unwrap();
    }
    assert_eq!(names(&dir.path().join("snapshots")), [rev(3), rev(4)]);
}

#[test]
fn eviction_waits_when_the_state_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 1).unwrap();
    fs::write(dir.path().join("state.json"), "not json").unwrap();
    store(&cache, &rev(1), "s", staged(&cache, &[("a", "1")]).path()).unwrap();
    store(&cache, &rev(2), "s", staged(&cache, &[("a", "2")]).path()).unwrap();
    assert_eq!(names(&dir.path().join("snapshots")).len(), 2);
}

#[test]
fn failpoints_parse_by_name() {
    for name in Failpoint::NAMES {
        assert_eq!(name.parse::<Failpoint>().unwrap().name(), name);
    }
    let err = "store:never".parse::<Failpoint>().unwrap_err().to_string();
    assert!(
        err.contains("store:never") && err.contains("store:after-tree"),
        "{err}"
    );
}

/// A crash after each step of `store` leaves no visible entry and no leftovers once
/// the cache is reopened; the previously stored entry and state stay intact.
#[test]
fn a_crash_between_store_steps_leaves_the_cache_consistent() {
    for stop_after in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 5).unwrap();
        let old = store(&cache, REV_A, "s", staged(&cache, &[("a", "old")]).path()).unwrap();
        let state = State {
            applied: Some(old.record(1)),
            ..State::default()
        };
        cache.save_state(&state).unwrap();

        let staging = staged(&cache, &[("a", "new"), ("b/c", "new")]);
        let pending = entry::Pending::new(&cache.tmp, &r(REV_B), "s");
        let summary = pending.take_tree(staging.path(), true).unwrap();
        if stop_after >= 2 {
            pending.write_meta(&summary).unwrap();
        }
        if stop_after >= 3 {
            pending.sync().unwrap();
        }
        std::mem::forget(staging); // a crash runs no destructors
        drop(cache);

        let cache = Cache::open(dir.path(), 5).unwrap();
        assert_eq!(
            names(&dir.path().join("snapshots")),
            [REV_A],
            "step {stop_after}"
        );
        assert!(
            names(&dir.path().join("tmp")).is_empty(),
            "step {stop_after}"
        );
        assert!(matches!(
            cache.load(&r(REV_B)),
            Err(CacheError::NotFound { .. })
        ));
        assert_eq!(cache.load(&r(REV_A)).unwrap().digest(), old.digest());
        assert_eq!(cache.state().unwrap(), state);
        store(&cache, REV_B, "s", staged(&cache, &[("a", "new")]).path()).unwrap();
    }
}

#[test]
fn a_dropped_staging_dir_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let staging = staged(&cache, &[("a", "1")]);
    let path = staging.path().to_path_buf();
    assert!(path.starts_with(dir.path().join("tmp")));
    drop(staging);
    assert!(!path.exists());
}
