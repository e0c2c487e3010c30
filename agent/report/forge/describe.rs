//! Status descriptions: what a person reads next to the commit.
//!
//! Pure and deterministic: the same outcome always gives the same text, so the
//! reporter's deduplication works, and every text fits the forges' smallest limit
//! (GitHub's 140 characters).

use std::time::Duration;

use super::CommitState;
use crate::verify::Signer;

/// The longest description any forge accepts without complaint (GitHub).
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// What happened to a revision, as far as the forge is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// A new revision started applying.
    Applying { objects: usize },
    /// Applied and healthy.
    Healthy {
        objects: usize,
        changed: usize,
        pruned: usize,
        healthy_after: Duration,
    },
    /// Rejected before any write (manifests, scope, dry run, prune guard).
    Rejected { reason: String },
    /// A write or prune failed.
    Failed { reason: String },
    /// Applied, but not healthy within the timeout.
    Unhealthy { reason: String },
    /// Held by the promotion gate: waiting for canaries (the gate's own words).
    Waiting { reason: String },
    /// Never to be applied: a canary failed or the wait timed out (the gate's words).
    Held { reason: String },
}

impl StatusOutcome {
    pub fn state(&self) -> CommitState {
        match self {
            StatusOutcome::Applying { .. } | StatusOutcome::Waiting { .. } => CommitState::Pending,
            StatusOutcome::Healthy { .. } => CommitState::Success,
            StatusOutcome::Rejected { .. }
            | StatusOutcome::Failed { .. }
            | StatusOutcome::Unhealthy { .. }
            | StatusOutcome::Held { .. } => CommitState::Failure,
        }
    }

    /// The description, capped at [`MAX_DESCRIPTION_CHARS`].
    pub fn description(&self) -> String {
        let text = match self {
            StatusOutcome::Applying { objects } => {
                format!("applying {}", count(*objects, "object"))
            }
            StatusOutcome::Healthy {
                objects,
                changed,
                pruned,
                healthy_after,
            } => format!(
                "applied {} ({changed} changed, {pruned} pruned), healthy in {}",
                count(*objects, "object"),
                duration(*healthy_after)
            ),
            StatusOutcome::Rejected { reason } => format!("rejected: {}", first_reason(reason)),
            StatusOutcome::Failed { reason } => format!("failed: {}", first_reason(reason)),
            StatusOutcome::Unhealthy { reason } => format!("unhealthy: {}", first_reason(reason)),
            StatusOutcome::Waiting { reason } | StatusOutcome::Held { reason } => reason.clone(),
        };
        cap(&text)
    }
}

/// A description followed by the key that signed what it describes
/// (`signed by ssh key SHA256:…`): the key, not its owner's name, so that the
/// fingerprint fits the forge's 140 characters; the log and the parent's status
/// name the owner too.
pub fn with_signer(description: &str, signer: &Signer) -> String {
    cap(&format!(
        "{description}; signed by {} key {}",
        signer.kind, signer.fingerprint
    ))
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `14s`, `2m05s`, `1h02m`: short and stable (sub-second parts are dropped).
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// The first line of a reason, with runs of whitespace collapsed: errors can carry
/// multi-line causes that a one-line status cannot show.
fn first_reason(reason: &str) -> String {
    let line = reason
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `text` to at most [`MAX_DESCRIPTION_CHARS`] characters, on a char boundary,
/// ending in `…` when anything was cut.
pub fn cap(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_of_each_outcome() {
        assert_eq!(
            StatusOutcome::Applying { objects: 42 }.description(),
            "applying 42 objects"
        );
        assert_eq!(
            StatusOutcome::Applying { objects: 1 }.description(),
            "applying 1 object"
        );
        let healthy = StatusOutcome::Healthy {
            objects: 42,
            changed: 3,
            pruned: 1,
            healthy_after: Duration::from_millis(14_600),
        };
        assert_eq!(
            healthy.description(),
            "applied 42 objects (3 changed, 1 pruned), healthy in 14s"
        );
        assert_eq!(healthy.state(), CommitState::Success);
        let ssh = Signer {
            kind: "ssh".into(),
            fingerprint: "SHA256:5Vt1eTq3dn2TLkZi2ZqNQuj0zH0Ipvl0b3Cm4UD0VX8".into(),
            identity: "ops@example.com".into(),
        };
        assert_eq!(
            with_signer(&healthy.description(), &ssh),
            "applied 42 objects (3 changed, 1 pruned), healthy in 14s; \
             signed by ssh key SHA256:5Vt1eTq3dn2TLkZi2ZqNQuj0zH0Ipvl0b3Cm4UD0VX8"
        );
        let long = Signer {
            fingerprint: "F".repeat(200),
            ..ssh
        };
        assert!(
            with_signer(&healthy.description(), &long).chars().count() <= MAX_DESCRIPTION_CHARS
        );
        let rejected = StatusOutcome::Rejected {
            reason: "Deployment shop/api: namespace shop is outside the scope\ncaused by: more"
                .into(),
        };
        assert_eq!(
            rejected.description(),
            "rejected: Deployment shop/api: namespace shop is outside the scope"
        );
        assert_eq!(rejected.state(), CommitState::Failure);
        assert_eq!(
            StatusOutcome::Failed {
                reason: "  a\t b  ".into()
            }
            .description(),
            "failed: a b"
        );
        assert_eq!(
            StatusOutcome::Unhealthy {
                reason: String::new()
            }
            .description(),
            "unhealthy: no reason given"
        );
        assert_eq!(
            StatusOutcome::Applying { objects: 0 }.state(),
            CommitState::Pending
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(Duration::from_secs(0)), "0s");
        assert_eq!(duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn cap_cuts_on_a_char_boundary() {
        let short = "x".repeat(140);
        assert_eq!(cap(&short), short);
        let long = "é".repeat(200);
        let capped = cap(&long);
        assert_eq!(capped.chars().count(), 140);
        assert!(capped.ends_with("é…"));
        let rejected = StatusOutcome::Rejected {
            reason: "ü ".repeat(100),
        }
        .description();
        assert!(rejected.chars().count() <= 140, "{rejected}");
        assert!(rejected.ends_with('…'));
        assert!(!rejected.ends_with(" …"));
    }
}
