//! Windows against the system's tz database, with the clock set by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

use super::*;

fn windows(specs: &[&str]) -> Windows {
    Windows::parse(specs, &Zoneinfo::default()).unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn error(spec: &str) -> String {
    Window::parse(spec, &Zoneinfo::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_specs_are_refused_with_the_spec_and_the_rule_named() {
    let cases = [
        ("allow Mon-Fri 22:00-04:00", "expected 4 words"),
        (
            "permit Mon 00:00-01:00 UTC",
            "\"permit\" is neither allow nor deny",
        ),
        ("allow Mon-Fry 00:00-01:00 UTC", "\"Fry\" is not a day"),
        ("allow Mon 25:00-01:00 UTC", "\"25:00\" is out of range"),
        (
            "allow Mon 24:00-01:00 UTC",
            "\"24:00\" is out of range (00:00-23:59)",
        ),
        ("allow Mon 1:5-02:00 UTC", "\"1:5\" is not a time"),
        ("allow Mon 10:00 UTC", "\"10:00\" is not a time range"),
        ("allow Mon 10:00-10:00 UTC", "is empty"),
        ("allow Mon 10:00-11:00 Mars/Olympus", "cannot read"),
        (
            "allow Mon 10:00-11:00 ../../etc/passwd",
            "not an IANA time zone name",
        ),
        (
            "allow Mon 10:00-11:00 /etc/localtime",
            "not an IANA time zone name",
        ),
    ];
    for (spec, want) in cases {
        let text = error(spec);
        assert!(
            text.starts_with(&format!("--sync-window {spec:?}: ")),
            "{text}"
        );
        assert!(text.contains(want), "{spec}: {text}");
    }
}

#[test]
fn no_window_allows_and_deny_wins_over_allow() {
    let monday_noon = at("2026-06-01T12:00:00Z");
    assert!(windows(&[]).allows(monday_noon));
    let allow_all = "allow * 00:00-24:00 UTC";
    let deny_weekend = "deny Sat,Sun 00:00-24:00 UTC";
    let both = windows(&[allow_all, deny_weekend]);
    assert!(both.allows(monday_noon));
    let saturday = at("2026-06-06T12:00:00Z");
    assert!(!both.allows(saturday));
    let state = both.state(saturday);
    assert_eq!(state.next.as_ref().unwrap().0, at("2026-06-08T00:00:00Z"));
    assert_eq!(state.describe(saturday), "opens Mon 00:00 UTC");
    // Deny only: allowed outside the deny windows.
    let deny = windows(&[deny_weekend]);
    assert!(deny.allows(monday_noon) && !deny.allows(saturday));
    assert_eq!(
        deny.state(monday_noon).describe(monday_noon),
        "closes Sat 00:00 UTC"
    );
}

#[test]
fn an_allow_window_across_midnight_belongs_to_its_start_day() {
    let berlin = windows(&["allow Mon-Fri 22:00-04:00 Europe/Berlin"]);
    // Winter: CET is UTC+1. Monday 2026-01-05.
    let before = at("2026-01-05T20:59:00Z");
    assert!(!berlin.allows(before));
    assert_eq!(berlin.state(before).describe(before), "opens 22:00 CET");
    assert!(berlin.allows(at("2026-01-05T21:00:00Z")));
    assert!(berlin.allows(at("2026-01-06T02:59:59Z")));
    assert!(!berlin.allows(at("2026-01-06T03:00:00Z")));
    // Friday night runs into Saturday; Saturday night does not open.
    assert!(berlin.allows(at("2026-01-10T02:00:00Z")));
    let saturday_night = at("2026-01-10T22:00:00Z");
    assert!(!berlin.allows(saturday_night));
    let state = berlin.state(saturday_night);
    assert_eq!(state.next.as_ref().unwrap().0, at("2026-01-12T21:00:00Z"));
    assert_eq!(state.describe(saturday_night), "opens Mon 22:00 CET");
    // Open: when it closes.
    let open = at("2026-01-05T21:30:00Z");
    assert_eq!(berlin.state(open).describe(open), "closes 04:00 CET");
}

#[test]
fn windows_follow_local_time_across_dst_changes() {
    // Europe/Berlin springs forward on Sunday 2026-03-29 (02:00 CET -> 03:00 CEST)
    // and falls back on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET).
    let nightly = windows(&["allow Mon-Fri 22:00-04:00 Europe/Berlin"]);
    let saturday = at("2026-03-28T12:00:00Z");
    let state = nightly.state(saturday);
    // Monday 22:00 is CEST now: 20:00 UTC, not 21:00.
    assert_eq!(state.next.as_ref().unwrap().0, at("2026-03-30T20:00:00Z"));
    assert_eq!(state.describe(saturday), "opens Mon 22:00 CEST");
    assert!(!nightly.allows(at("2026-03-30T19:59:00Z")));
    assert!(nightly.allows(at("2026-03-30T20:00:00Z")));

    // A window over the change itself is shorter in spring and longer in autumn.
    let sunday = windows(&["allow Sun 01:00-05:00 Europe/Berlin"]);
    assert!(sunday.allows(at("2026-03-29T00:00:00Z"))); // 01:00 CET
    assert!(sunday.allows(at("2026-03-29T02:59:00Z"))); // 04:59 CEST
    assert!(!sunday.allows(at("2026-03-29T03:00:00Z"))); // 05:00 CEST
    assert!(!sunday.allows(at("2026-10-24T22:59:00Z"))); // 00:59 CEST
    assert!(sunday.allows(at("2026-10-24T23:00:00Z"))); // 01:00 CEST
    assert!(sunday.allows(at("2026-10-25T03:59:00Z"))); // 04:59 CET
    assert!(!sunday.allows(at("2026-10-25T04:00:00Z"))); // 05:00 CET
    let open = at("2026-10-25T00:30:00Z");
    assert_eq!(sunday.state(open).describe(open), "closes 05:00 CET");

    // A start inside the spring gap (02:30 does not exist) begins after it.
    let gap = windows(&["allow Sun 02:30-06:00 Europe/Berlin"]);
    assert!(!gap.allows(at("2026-03-29T00:59:00Z")));
    assert!(gap.allows(at("2026-03-29T01:30:00Z"))); // 03:30 CEST
    // New York moves on another day (2026-03-08): each window keeps its own zone.
    let ny = windows(&["deny Sun 00:00-24:00 America/New_York"]);
    assert!(ny.allows(at("2026-03-08T04:59:00Z"))); // Saturday 23:59 EST
    assert!(!ny.allows(at("2026-03-08T05:00:00Z"))); // Sunday 00:00 EST
    assert!(!ny.allows(at("2026-03-09T03:59:00Z"))); // Sunday 23:59 EDT: a 23-hour day
    assert!(ny.allows(at("2026-03-09T04:00:00Z"))); // Monday 00:00 EDT
}

#[test]
fn a_schedule_that_never_opens_says_so() {
    let never = windows(&["deny * 00:00-24:00 UTC"]);
    let now = at("2026-06-01T12:00:00Z");
    let state = never.state(now);
    assert!(!state.open && state.next.is_none());
    assert_eq!(state.describe(now), "does not open within 8 days");
}

#[test]
fn an_injected_clock_moves_the_verdict() {
    let seconds = Arc::new(AtomicI64::new(at("2026-01-05T20:00:00Z").as_second()));
    let shared = seconds.clone();
    let clock = Clock::new(move || Timestamp::from_second(shared.load(Ordering::SeqCst)).unwrap());
    let berlin = windows(&["allow Mon-Fri 22:00-04:00 Europe/Berlin"]);
    assert!(!berlin.state(clock.now()).open);
    seconds.store(at("2026-01-05T21:00:00Z").as_second(), Ordering::SeqCst);
    assert!(berlin.state(clock.now()).open);
}
