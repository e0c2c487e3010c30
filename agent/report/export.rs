//! Status reports for air-gapped sites: the commit statuses a cluster would have
//! posted, carried across the gap in a file and posted from the connected side.
//!
//! In (agent): each revision outcome, as the [`CommitStatus`] a connected agent
//! posts, kept as an [`OutcomeRecord`] in the in-cluster status. In (`hawser status
//! post`): the untrusted bytes of a report file, after its signature was checked.
//! Out: a validated [`Report`] and the statuses to post, in order. What can go wrong:
//! a report that is too large, of another kind or version, or with a field no forge
//! would accept; each is refused with one line naming the outcome and the rule.
//!
//! Pure: no I/O here; the CLI reads, verifies, writes and posts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::forge::{CommitState, CommitStatus, describe::MAX_DESCRIPTION_CHARS};

/// The `kind` of a status report.
pub const KIND: &str = "hawser-status-report";
/// The only report format version this build reads and writes.
pub const VERSION: u32 = 1;
/// The sshsig namespace of status report signatures.
pub const SIGN_NAMESPACE: &str = "hawser-status";
/// Largest report file read.
pub const MAX_REPORT_BYTES: u64 = 1 << 20;
/// Most outcomes a report may carry.
pub const MAX_OUTCOMES: usize = 1000;
/// How many outcomes the agent keeps in its status (newest last).
pub const KEEP_OUTCOMES: usize = 20;
/// Longest cluster name accepted (a context is `hawser/<cluster>`).
const MAX_CLUSTER_CHARS: usize = 100;

/// One commit status the agent would post (or did), with when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub commit: String,
    pub state: CommitState,
    pub description: String,
    /// RFC 3339.
    pub time: String,
}

impl OutcomeRecord {
    pub fn new(status: &CommitStatus, time: String) -> OutcomeRecord {
        OutcomeRecord {
            commit: status.commit.clone(),
            state: status.state,
            description: status.description.clone(),
            time,
        }
    }

    pub fn status(&self) -> CommitStatus {
        CommitStatus {
            commit: self.commit.clone(),
            state: self.state,
            description: self.description.clone(),
        }
    }

    fn same_status(&self, other: &OutcomeRecord) -> bool {
        (&self.commit, self.state, &self.description)
            == (&other.commit, other.state, &other.description)
    }
}

/// Adds `record` to the agent's list unless it repeats the last status recorded for
/// its commit (a connected agent would not post it again either); keeps the newest
/// [`KEEP_OUTCOMES`]. Returns whether the list changed.
pub fn push(list: &mut Vec<OutcomeRecord>, record: OutcomeRecord) -> bool {
    if list
        .iter()
        .rev()
        .find(|r| r.commit == record.commit)
        .is_some_and(|last| last.same_status(&record))
    {
        return false;
    }
    list.push(record);
    let excess = list.len().saturating_sub(KEEP_OUTCOMES);
    list.drain(..excess);
    true
}

/// The file `hawser status --export` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub kind: String,
    pub version: u32,
    pub cluster: String,
    /// `hawser/<cluster>`: the context a connected agent posts under.
    pub context: String,
    pub source: String,
    /// RFC 3339, when the report was written.
    pub generated: String,
    pub outcomes: Vec<OutcomeRecord>,
}

impl Report {
    pub fn new(
        cluster: &str,
        source: &str,
        generated: String,
        outcomes: Vec<OutcomeRecord>,
    ) -> Report {
        Report {
            kind: KIND.into(),
            version: VERSION,
            cluster: cluster.into(),
            context: context_for(cluster),
            source: source.into(),
            generated,
            outcomes,
        }
    }
}

/// The commit status context of a cluster.
pub fn context_for(cluster: &str) -> String {
    format!("hawser/{cluster}")
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("the report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    #[error("the report is not valid JSON of a status report: {0}")]
    Json(String),
    #[error("the report's kind is {found:?}, not {KIND:?}")]
    Kind { found: String },
    #[error("the report's version is {found}; this hawser reads version {VERSION}")]
    Version { found: u32 },
    #[error(
        "the report's cluster name {found:?} must be 1-{MAX_CLUSTER_CHARS} letters, digits, '.', '_' or '-'"
    )]
    Cluster { found: String },
    #[error("the report's context {found:?} is not hawser/<cluster>")]
    Context { found: String },
    #[error("the report has {found} outcomes; at most {MAX_OUTCOMES} are accepted")]
    TooMany { found: usize },
    #[error("outcome {index}: {rule}")]
    Outcome { index: usize, rule: String },
}

/// Parses and validates a report's bytes (already checked against its signature).
pub fn parse(bytes: &[u8]) -> Result<Report, ReportError> {
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge);
    }
    let report: Report =
        serde_json::from_slice(bytes).map_err(|e| ReportError::Json(e.to_string()))?;
    validate(&report)?;
    Ok(report)
}

/// The rules every report obeys: what a forge accepts, and the bounds above.
pub fn validate(report: &Report) -> Result<(), ReportError> {
    if report.kind != KIND {
        return Err(ReportError::Kind {
            found: report.kind.chars().take(100).collect(),
        });
    }
    if report.version != VERSION {
        return Err(ReportError::Version {
            found: report.version,
        });
    }
    if !valid_cluster(&report.cluster) {
        return Err(ReportError::Cluster {
            found: report.cluster.chars().take(MAX_CLUSTER_CHARS).collect(),
        });
    }
    if report.context != context_for(&report.cluster) {
        return Err(ReportError::Context {
            found: report.context.chars().take(100).collect(),
        });
    }
    if report.outcomes.len() > MAX_OUTCOMES {
        return Err(ReportError::TooMany {
            found: report.outcomes.len(),
        });
    }
    for (i, outcome) in report.outcomes.iter().enumerate() {
        let bad = |rule: String| ReportError::Outcome { index: i + 1, rule };
        let commit = &outcome.commit;
        if !crate::encoding::is_commit_id(commit) {
            return Err(bad(format!(
                "commit {:?} is not a 40-hex commit id",
                commit.chars().take(64).collect::<String>()
            )));
        }
        let chars = outcome.description.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(bad(format!(
                "description has {chars} characters; at most {MAX_DESCRIPTION_CHARS}"
            )));
        }
        if outcome.description.chars().any(char::is_control) {
            return Err(bad("description has control characters".into()));
        }
        if outcome
            .time
            .parse::<k8s_openapi::jiff::Timestamp>()
            .is_err()
        {
            return Err(bad(format!(
                "time {:?} is not an RFC 3339 timestamp",
                outcome.time.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

fn valid_cluster(name: &str) -> bool {
    (1..=MAX_CLUSTER_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The statuses to post, in order, and how many were skipped: an outcome identical
/// (state and description) to the previous one for the same commit is not posted
/// again, as a connected agent would not post it.
pub fn to_post(outcomes: &[OutcomeRecord]) -> (Vec<CommitStatus>, usize) {
    let mut last: HashMap<&str, &OutcomeRecord> = HashMap::new();
    let mut post = Vec::new();
    let mut skipped = 0;
    for outcome in outcomes {
        if last
            .get(outcome.commit.as_str())
            .is_some_and(|prev| prev.same_status(outcome))
        {
            skipped += 1;
            continue;
        }
        last.insert(&outcome.commit, outcome);
        post.push(outcome.status());
    }
    (post, skipped)
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
