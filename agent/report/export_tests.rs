use super::*;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const T: &str = "2026-11-23T10:00:00Z";

fn rec(commit: &str, state: CommitState, description: &str) -> OutcomeRecord {
    OutcomeRecord {
        commit: commit.into(),
        state,
        description: description.into(),
        time: T.into(),
    }
}

fn good() -> Report {
    Report::new(
        "site-7",
        "bundle:/inbox",
        T.into(),
        vec![
            rec(A, CommitState::Pending, "applying 2 objects"),
            rec(A, CommitState::Success, "applied 2 objects"),
            rec(B, CommitState::Failure, "rejected: out of scope"),
        ],
    )
}

fn parse_value(value: serde_json::Value) -> Result<Report, ReportError> {
    parse(value.to_string().as_bytes())
}

#[test]
fn a_written_report_reads_back() {
    let report = good();
    let text = serde_json::to_vec(&report).unwrap();
    assert_eq!(parse(&text).unwrap(), report);
    let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(value["kind"], "hawser-status-report");
    assert_eq!(value["version"], 1);
    assert_eq!(value["context"], "hawser/site-7");
    assert_eq!(value["outcomes"][2]["state"], "failure");
}

#[test]
fn hostile_reports_are_refused_with_the_rule_they_broke() {
    let base = serde_json::to_value(good()).unwrap();
    let with = |path: &[&str], value: serde_json::Value| {
        let mut v = base.clone();
        let mut at = &mut v;
        for key in path {
            at = match key.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*key],
            };
        }
        *at = value;
        parse_value(v).unwrap_err().to_string()
    };
    let cases = [
        (with(&["kind"], "something-else".into()), "kind"),
        (with(&["version"], 2.into()), "version is 2"),
        (with(&["cluster"], "a/b".into()), "cluster name"),
        (with(&["cluster"], "".into()), "cluster name"),
        (with(&["context"], "ci/evil".into()), "context"),
        (
            with(&["outcomes", "0", "commit"], "abc1234".into()),
            "outcome 1: commit \"abc1234\" is not a 40-hex commit id",
        ),
        (
            with(
                &["outcomes", "1", "commit"],
                format!("{}g", &A[..39]).into(),
            ),
            "outcome 2: commit",
        ),
        (
            with(&["outcomes", "2", "state"], "error".into()),
            "unknown variant `error`",
        ),
        (
            with(&["outcomes", "2", "description"], "x".repeat(141).into()),
            "outcome 3: description has 141 characters; at most 140",
        ),
        (
            with(&["outcomes", "0", "description"], "a\nb".into()),
            "control characters",
        ),
        (
            with(&["outcomes", "0", "time"], "yesterday".into()),
            "not an RFC 3339",
        ),
        (with(&["outcomes"], 7.into()), "not valid JSON"),
    ];
    for (err, want) in cases {
        assert!(err.contains(want), "{want:?} in {err:?}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // 140 characters (not bytes) is fine.
    let ok = with_description(&"é".repeat(140));
    assert!(parse_value(ok).is_ok());
}

fn with_description(text: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(good()).unwrap();
    v["outcomes"][0]["description"] = text.into();
    v
}

#[test]
fn too_many_outcomes_and_oversized_files_are_refused() {
    let mut report = good();
    report.outcomes = (0..=MAX_OUTCOMES)
        .map(|i| {
            rec(
                &format!("{i:040x}"),
                CommitState::Pending,
                "applying 1 object",
            )
        })
        .collect();
    let text = serde_json::to_vec(&report).unwrap();
    assert!(text.len() < MAX_REPORT_BYTES as usize);
    assert_eq!(
        parse(&text).unwrap_err(),
        ReportError::TooMany {
            found: MAX_OUTCOMES + 1
        }
    );
    report.outcomes.pop();
    assert!(parse(&serde_json::to_vec(&report).unwrap()).is_ok());
    let mut huge = serde_json::to_vec(&good()).unwrap();
    huge.resize(MAX_REPORT_BYTES as usize + 1, b' ');
    assert_eq!(parse(&huge).unwrap_err(), ReportError::TooLarge);
}

#[test]
fn an_outcome_repeating_the_last_one_for_its_commit_is_skipped() {
    let outcomes = [
        rec(A, CommitState::Pending, "applying 2 objects"),
        rec(A, CommitState::Pending, "applying 2 objects"),
        rec(B, CommitState::Failure, "rejected: x"),
        rec(A, CommitState::Success, "applied 2 objects"),
        rec(B, CommitState::Failure, "rejected: x"),
        // The same status again after another one is news: the forge must show it.
        rec(A, CommitState::Pending, "applying 2 objects"),
    ];
    let (post, skipped) = to_post(&outcomes);
    assert_eq!(skipped, 2);
    let seen: Vec<(&str, CommitState)> = post.iter().map(|s| (&s.commit[..1], s.state)).collect();
    assert_eq!(
        seen,
        [
            ("a", CommitState::Pending),
            ("b", CommitState::Failure),
            ("a", CommitState::Success),
            ("a", CommitState::Pending)
        ]
    );
}

#[test]
fn the_agent_keeps_the_newest_outcomes_without_repeats() {
    let mut list = Vec::new();
    assert!(push(
        &mut list,
        rec(A, CommitState::Pending, "applying 2 objects")
    ));
    assert!(!push(
        &mut list,
        rec(A, CommitState::Pending, "applying 2 objects")
    ));
    assert!(push(&mut list, rec(A, CommitState::Success, "applied")));
    for i in 0..30 {
        push(
            &mut list,
            rec(&format!("{i:040x}"), CommitState::Failure, "rejected: x"),
        );
    }
    assert_eq!(list.len(), KEEP_OUTCOMES);
    assert_eq!(list.last().unwrap().commit, format!("{:040x}", 29));
}

/// Seeded mutations of a valid report (the manifests' fuzz.rs habit, no dependency):
/// every input gives a valid report or a one-line error, never a panic.
#[test]
fn mutated_reports_give_a_valid_report_or_one_line_error() {
    let seed = serde_json::to_vec_pretty(&good()).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let bytes: &[u8] = b"\"{}[],:0aZ\\\n\xff-";
    for _ in 0..3000 {
        let mut input = seed.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % input.len().max(1);
            match next() % 3 {
                0 => input[at] = bytes[(next() as usize) % bytes.len()],
                1 => {
                    input.remove(at);
                }
                _ => input.insert(at, bytes[(next() as usize) % bytes.len()]),
            }
        }
        match parse(&input) {
            Ok(report) => assert!(validate(&report).is_ok()),
            Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
    }
}
