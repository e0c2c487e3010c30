//! `state.json`: round trips, unreadable and foreign files, crash safety.

use std::fs;

use super::tests::{REV_A, REV_B, names, r};
use super::*;

#[test]
fn state_round_trips_and_a_missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.state().unwrap(), State::default());
    let mut state = State {
        applied: Some(Record {
            revision: r(REV_A),
            digest: "sha256:00".into(),
            source: "s".into(),
            at: 7,
            committer_time: Some(1_700_000_000),
        }),
        rejected: Some(Rejected {
            revision: r(REV_B),
            reason: "scope".into(),
            at: 8,
        }),
        ..State::default()
    };
    let posted = crate::report::forge::Posted {
        commit: REV_A.into(),
        context: "hawser/edge-1".into(),
        state: crate::report::forge::CommitState::Pending,
        description: "applying".into(),
    };
    crate::report::forge::record(&mut state.posted, posted.clone());
    cache.save_state(&state).unwrap();
    assert_eq!(cache.state().unwrap(), state);
    assert!(cache.state().unwrap().posted.contains(&posted));
    assert_eq!(read_state(dir.path()).unwrap(), state);
    assert!(names(&dir.path().join("tmp")).is_empty());
}

#[test]
fn an_unparsable_state_names_the_file_and_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    fs::write(dir.path().join("state.json"), "{\"applied\": 3}").unwrap();
    let err = cache.state().unwrap_err();
    assert!(matches!(err, CacheError::BadState { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&dir.path().join("state.json").display().to_string()),
        "{err}"
    );
    cache.reset_state().unwrap();
    assert_eq!(cache.state().unwrap(), State::default());
    assert_eq!(
        fs::read_to_string(dir.path().join("state.json.bad")).unwrap(),
        "{\"applied\": 3}"
    );
    cache.reset_state().unwrap();
}

#[test]
fn unknown_state_fields_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    fs::write(
        dir.path().join("state.json"),
        "{\"future\": [1], \"posted\": []}",
    )
    .unwrap();
    assert_eq!(cache.state().unwrap(), State::default());
}

#[test]
fn a_state_of_another_layout_is_refused_not_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    for (text, keys) in [
        (
            "{\"applied_revision\": \"abc\", \"version\": 1}",
            "applied_revision, version",
        ),
        ("{}", "none"),
        ("[1]", "not an object"),
    ] {
        fs::write(dir.path().join("state.json"), text).unwrap();
        let err = cache.state().unwrap_err();
        assert!(
            matches!(err, CacheError::UnknownStateLayout { .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(keys), "{message}");
        assert!(
            message.contains(&dir.path().join("state.json").display().to_string()),
            "{message}"
        );
        cache.reset_state().unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("state.json.bad")).unwrap(),
            text
        );
    }
}

#[test]
fn io_errors_name_the_path_and_the_os_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    // state.json as a directory: reading it fails with the OS's reason.
    fs::create_dir(dir.path().join("state.json")).unwrap();
    let message = cache.state().unwrap_err().to_string();
    let os = std::io::Error::from_raw_os_error(21).to_string();
    assert!(
        message.contains("state.json") && message.contains(&os),
        "{message}"
    );
}

#[test]
fn a_crash_before_the_state_rename_keeps_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), 5).unwrap();
    let old = State {
        rejected: Some(Rejected {
            revision: r(REV_A),
            reason: "r".into(),
            at: 1,
        }),
        ..State::default()
    };
    cache.save_state(&old).unwrap();
    let new = State::default();
    let pending = state::prepare(&cache.tmp, &new).unwrap();
    assert!(pending.temp.exists());
    drop(cache);

    let cache = Cache::open(dir.path(), 5).unwrap();
    assert_eq!(cache.state().unwrap(), old);
    assert!(names(&dir.path().join("tmp")).is_empty());
}
