//! The promotion gate: a new revision is applied only once named canaries reported
//! it healthy (`--promote-after`), long enough ago (`--promote-soak`), within a bound
//! (`--promote-timeout`).
//!
//! In: the canary statuses seen on the revision's commit ([`SeenStatus`], read from
//! the forge or from signed status reports by `report`), the wall clock (for the
//! soak) and how long this revision has waited (for the timeout). Out: a
//! [`Decision`]: open, wait (with the follower's own `pending` description), or stop
//! for good (with its `failure` description). What can go wrong here: nothing; an
//! unreadable forge is the caller's to log, and it simply keeps the gate waiting.
//!
//! Pure: no clock, no I/O. The loop drives it (`reconcile`), the reads live with
//! the other forge code (`report::forge::read`, `report::evidence`).

use std::time::{Duration, SystemTime};

use crate::duration::display as show;

/// `--promote-after`, `--promote-soak`, `--promote-timeout`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The status contexts that must report `success` on the exact commit.
    pub after: Vec<String>,
    /// How old each success must be.
    pub soak: Duration,
    /// How long a revision may wait before its promotion is given up.
    pub timeout: Option<Duration>,
}

/// What a canary's newest status on the commit says, in hawser's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenState {
    Pending,
    Success,
    Failure,
}

/// One status seen on the commit under a context the gate waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenStatus {
    pub context: String,
    pub state: SeenState,
    pub description: String,
    /// When the forge (or the report) says the status was set.
    pub at: Option<SystemTime>,
}

/// What the gate says about one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every canary succeeded and soaked: apply it.
    Open,
    /// Not yet: the follower posts `pending` with this description.
    Wait { description: String },
    /// Never: a canary failed, or the wait timed out. The follower posts `failure`
    /// with this description and waits for the next commit.
    Stop { description: String },
}

/// How one canary stands.
enum Standing<'a> {
    Missing,
    Pending,
    Soaking { left: Duration },
    Ready,
    Failed { description: &'a str },
}

/// The newest status per context: the latest `at`; among equal times (or none), the
/// one listed first, as the forges list newest first.
pub fn newest<'a>(seen: &'a [SeenStatus], context: &str) -> Option<&'a SeenStatus> {
    let mut best: Option<&SeenStatus> = None;
    for status in seen.iter().filter(|s| s.context == context) {
        match best {
            Some(b) if status.at <= b.at => {}
            _ => best = Some(status),
        }
    }
    best
}

/// Decides a revision's promotion from what its commit shows.
pub fn decide(
    promotion: &Promotion,
    seen: &[SeenStatus],
    now: SystemTime,
    waited: Duration,
) -> Decision {
    let standings: Vec<(&str, Standing)> = promotion
        .after
        .iter()
        .map(|context| {
            (
                context.as_str(),
                stand(promotion, newest(seen, context), now),
            )
        })
        .collect();
    // A failure ends it, whatever the others say.
    if let Some((context, Standing::Failed { description })) = standings
        .iter()
        .find(|(_, s)| matches!(s, Standing::Failed { .. }))
    {
        let why = if description.is_empty() {
            "no description".to_string()
        } else {
            description.to_string()
        };
        return Decision::Stop {
            description: format!("canary {context} failed: {why}"),
        };
    }
    let waiting: Vec<String> = standings
        .iter()
        .filter_map(|(context, standing)| {
            let why = match standing {
                Standing::Ready | Standing::Failed { .. } => return None,
                Standing::Missing => "no status yet".to_string(),
                Standing::Pending => "pending".to_string(),
                // Soaking states the soak, not the time left: the description must
                // stay the same from poll to poll, or each poll posts a new status.
                Standing::Soaking { .. } => {
                    format!("success, soaking {}", show(promotion.soak))
                }
            };
            Some(format!("{context} ({why})"))
        })
        .collect();
    if waiting.is_empty() {
        return Decision::Open;
    }
    let list = waiting.join(", ");
    if let Some(timeout) = promotion.timeout
        && waited >= timeout
    {
        return Decision::Stop {
            description: format!("gave up after {}: waiting for {list}", show(timeout)),
        };
    }
    Decision::Wait {
        description: format!("waiting for {list}"),
    }
}

/// How long until the soonest soaking canary is ready, if one is soaking: the loop
/// need not look again before then.
pub fn soak_left(promotion: &Promotion, seen: &[SeenStatus], now: SystemTime) -> Option<Duration> {
    promotion
        .after
        .iter()
        .filter_map(|c| match stand(promotion, newest(seen, c), now) {
            Standing::Soaking { left } => Some(left),
            _ => None,
        })
        .min()
}

fn stand<'a>(
    promotion: &Promotion,
    status: Option<&'a SeenStatus>,
    now: SystemTime,
) -> Standing<'a> {
    let Some(status) = status else {
        return Standing::Missing;
    };
    match status.state {
        SeenState::Pending => Standing::Pending,
        SeenState::Failure => Standing::Failed {
            description: &status.description,
        },
        SeenState::Success if promotion.soak.is_zero() => Standing::Ready,
        SeenState::Success => {
            // Without a time the age cannot be proven: it counts as just set. A
            // time in the future (clock skew) counts as just set as well.
            let age = status
                .at
                .and_then(|at| now.duration_since(at).ok())
                .unwrap_or_default();
            match promotion.soak.checked_sub(age) {
                Some(left) if !left.is_zero() => Standing::Soaking { left },
                _ => Standing::Ready,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn seen(context: &str, state: SeenState, description: &str, secs: u64) -> SeenStatus {
        SeenStatus {
            context: context.into(),
            state,
            description: description.into(),
            at: Some(at(secs)),
        }
    }

    fn promotion(soak: u64, timeout: Option<u64>) -> Promotion {
        Promotion {
            after: vec!["hawser/canary-1".into(), "hawser/canary-2".into()],
            soak: Duration::from_secs(soak),
            timeout: timeout.map(Duration::from_secs),
        }
    }

    #[test]
    fn opens_only_when_every_canary_succeeded() {
        let p = promotion(0, None);
        let one = seen("hawser/canary-1", SeenState::Success, "applied", T0);
        assert_eq!(
            decide(&p, std::slice::from_ref(&one), at(T0), Duration::ZERO),
            Decision::Wait {
                description: "waiting for hawser/canary-2 (no status yet)".into()
            }
        );
        let pending = seen("hawser/canary-2", SeenState::Pending, "applying", T0);
        assert_eq!(
            decide(&p, &[one.clone(), pending], at(T0), Duration::ZERO),
            Decision::Wait {
                description: "waiting for hawser/canary-2 (pending)".into()
            }
        );
        let two = seen("hawser/canary-2", SeenState::Success, "applied", T0);
        assert_eq!(
            decide(&p, &[one, two], at(T0), Duration::ZERO),
            Decision::Open
        );
        // Another context's success is no canary's.
        let other = seen("hawser/canary-3", SeenState::Success, "applied", T0);
        assert!(matches!(
            decide(&p, &[other], at(T0), Duration::ZERO),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn a_failure_stops_for_good_and_the_newest_status_counts() {
        let p = promotion(0, None);
        let statuses = [
            seen("hawser/canary-1", SeenState::Success, "applied", T0),
            seen("hawser/canary-2", SeenState::Failure, "rejected: x", T0 + 5),
            seen("hawser/canary-2", SeenState::Pending, "applying", T0),
        ];
        assert_eq!(
            decide(&p, &statuses, at(T0 + 10), Duration::ZERO),
            Decision::Stop {
                description: "canary hawser/canary-2 failed: rejected: x".into()
            }
        );
        // A later success on the same context replaces an earlier failure.
        let mut recovered = statuses.to_vec();
        recovered.push(seen("hawser/canary-2", SeenState::Success, "ok", T0 + 9));
        assert_eq!(
            decide(&p, &recovered, at(T0 + 10), Duration::ZERO),
            Decision::Open
        );
    }

    #[test]
    fn a_success_must_soak() {
        let p = promotion(600, None);
        let statuses = [
            seen("hawser/canary-1", SeenState::Success, "applied", T0),
            seen("hawser/canary-2", SeenState::Success, "applied", T0 + 100),
        ];
        let want = Decision::Wait {
            description: "waiting for hawser/canary-2 (success, soaking 10m)".into(),
        };
        assert_eq!(decide(&p, &statuses, at(T0 + 600), Duration::ZERO), want);
        assert_eq!(
            soak_left(&p, &statuses, at(T0 + 600)),
            Some(Duration::from_secs(100))
        );
        assert_eq!(
            decide(&p, &statuses, at(T0 + 700), Duration::ZERO),
            Decision::Open
        );
        // A time in the future, or none, proves no age.
        let skewed = [
            seen("hawser/canary-1", SeenState::Success, "applied", T0 + 5000),
            SeenStatus {
                at: None,
                ..seen("hawser/canary-2", SeenState::Success, "applied", 0)
            },
        ];
        assert!(matches!(
            decide(&p, &skewed, at(T0 + 700), Duration::ZERO),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn the_timeout_bounds_the_wait_but_not_a_decided_promotion() {
        let p = promotion(0, Some(1800));
        let statuses = [seen("hawser/canary-1", SeenState::Pending, "applying", T0)];
        assert!(matches!(
            decide(&p, &statuses, at(T0), Duration::from_secs(1799)),
            Decision::Wait { .. }
        ));
        assert_eq!(
            decide(&p, &statuses, at(T0), Duration::from_secs(1800)),
            Decision::Stop {
                description:
                    "gave up after 30m: waiting for hawser/canary-1 (pending), hawser/canary-2 (no status yet)"
                        .into()
            }
        );
        let done = [
            seen("hawser/canary-1", SeenState::Success, "applied", T0),
            seen("hawser/canary-2", SeenState::Success, "applied", T0),
        ];
        assert_eq!(
            decide(&p, &done, at(T0), Duration::from_secs(99_999)),
            Decision::Open
        );
    }
}
