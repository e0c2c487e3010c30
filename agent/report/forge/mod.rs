//! Commit statuses on the Git forge: one per cluster, `pending` → `success`/`failure`.
//!
//! In: a validated [`ForgeConfig`] and, per revision outcome, a [`CommitStatus`]
//! (made with [`describe::StatusOutcome`]). Out: one HTTP POST to the forge's
//! commit-status API, shaped by [`request::build`], judged by [`response::classify`].
//!
//! What can go wrong: the forge is unreachable or failing (retried with bounded
//! backoff, then [`ForgeError::is_transient`]), rate limits (short waits are waited
//! out, long ones returned with the time to retry), and refusals such as a bad token
//! or an unknown repository, returned as one clear line. None of these stops the
//! agent: the caller logs the error once and counts it.
//!
//! Posting is blocking (ureq); async callers run [`Reporter::post`] on
//! `spawn_blocking`. The token never appears in an error, a log line or `Debug`.

mod config;
pub mod describe;
pub mod encode;
pub mod read;
mod reader;
mod reporter;
pub mod request;
pub mod response;
mod source_url;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{ForgeConfig, Provider, Token, check_repo};
pub use describe::StatusOutcome;
pub use reader::{Read, ReadError, StatusReader};
pub use reporter::{Reporter, RetryPolicy, Sleeper, SystemClock};
pub use source_url::{SourceUrl, redact_userinfo};

/// The state of a status, in hawser's words; each provider spells it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
}

/// One status to set on one commit; the context comes from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub commit: String,
    pub state: CommitState,
    /// At most 140 characters ([`describe::cap`] is applied by the constructors).
    pub description: String,
}

impl CommitStatus {
    pub fn new(commit: impl Into<String>, state: CommitState, description: &str) -> CommitStatus {
        CommitStatus {
            commit: commit.into(),
            state,
            description: describe::cap(description),
        }
    }

    /// The status that tells a revision's outcome.
    pub fn for_outcome(commit: impl Into<String>, outcome: &StatusOutcome) -> CommitStatus {
        CommitStatus {
            commit: commit.into(),
            state: outcome.state(),
            description: outcome.description(),
        }
    }
}

/// A status that was posted, as the caller persists it (next to the inventory) so a
/// restart does not post it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub commit: String,
    pub context: String,
    pub state: CommitState,
    pub description: String,
}

/// How many posted records are worth keeping: older commits are not reported again.
pub const HISTORY_LIMIT: usize = 32;

/// Whether `next` should be posted: not if the last status posted for its commit and
/// context is the same (state and description). Comparing with the last one only,
/// rather than any earlier one, keeps the forge truthful when a commit goes
/// failure → success → failure.
pub fn should_post(history: &[Posted], next: &Posted) -> bool {
    history
        .iter()
        .rev()
        .find(|p| p.commit == next.commit && p.context == next.context)
        != Some(next)
}

/// Records a posted status, keeping one record per (commit, context) and at most
/// [`HISTORY_LIMIT`] records, newest last.
pub fn record(history: &mut Vec<Posted>, posted: Posted) {
    history.retain(|p| !(p.commit == posted.commit && p.context == posted.context));
    history.push(posted);
    let excess = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..excess);
}

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error(
        "unknown status provider {name:?}; expected github, gitlab, gitea, forgejo, bitbucket-cloud, bitbucket-server or azure-devops"
    )]
    UnknownProvider { name: String },
    #[error("cannot tell which forge {host} is; set --status-provider")]
    UnknownHost { host: String },
    #[error("status reporting needs the source URL or --status-provider with --status-repo")]
    NoSource,
    #[error("{provider} status reporting needs --status-api-url (the instance's URL)")]
    MissingApiUrl { provider: Provider },
    #[error(
        "--status-api-url {url:?} must be an http(s) URL without credentials, query or fragment"
    )]
    BadApiUrl { url: String },
    #[error("{provider} repository {repo:?} is not of the form {shape}; set --status-repo")]
    BadRepo {
        provider: Provider,
        repo: String,
        shape: &'static str,
    },
    #[error("source URL {url} cannot be read as a Git URL")]
    BadSourceUrl { url: String },
    #[error("reading the status token file {}: {source}", .path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the status token file {} is empty or has more than one line", .path.display())]
    BadToken { path: PathBuf },
    #[error("--status-provider {provider} needs --status-token-file")]
    MissingToken { provider: Provider },
    #[error("status reporting needs --cluster-name (the context is hawser/<cluster-name>)")]
    MissingClusterName,
    #[error(
        "--status-target-url has an unknown placeholder {placeholder}; use {{cluster}} and {{revision}}"
    )]
    BadTemplate { placeholder: String },
    #[error("commit id {commit:?} is not a hexadecimal object id")]
    BadCommit { commit: String },
    #[error("{provider} rejected the status for {commit} on {repo}: {status} {message}{hint}")]
    Rejected {
        provider: Provider,
        commit: String,
        repo: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error(
        "{provider} refused another status for {commit} on {repo}: the commit has the most statuses it allows for context {context}"
    )]
    TooManyStatuses {
        provider: Provider,
        commit: String,
        repo: String,
        context: String,
    },
    #[error("{provider} rate limit reached posting the status for {commit} on {repo}; retry in {}s", .retry_after.as_secs())]
    RateLimited {
        provider: Provider,
        commit: String,
        repo: String,
        retry_after: Duration,
    },
    #[error("{provider} answered {status} {message} for {commit} on {repo} after {tries} tries")]
    Server {
        provider: Provider,
        commit: String,
        repo: String,
        status: u16,
        message: String,
        tries: u32,
    },
    #[error("could not reach {provider} at {url} after {tries} tries: {reason}")]
    Network {
        provider: Provider,
        url: String,
        tries: u32,
        reason: String,
    },
}

impl ForgeError {
    /// Worth posting again later (network, 5xx, rate limits); the others need a change
    /// of configuration (or, for too many statuses, a new commit).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ForgeError::RateLimited { .. } | ForgeError::Server { .. } | ForgeError::Network { .. }
        )
    }

    /// A short, stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            ForgeError::Rejected { .. } => "rejected",
            ForgeError::TooManyStatuses { .. } => "too_many_statuses",
            ForgeError::RateLimited { .. } => "rate_limited",
            ForgeError::Server { .. } => "server_error",
            ForgeError::Network { .. } => "unreachable",
            ForgeError::BadCommit { .. } => "bad_commit",
            ForgeError::UnknownProvider { .. }
            | ForgeError::UnknownHost { .. }
            | ForgeError::NoSource
            | ForgeError::MissingApiUrl { .. }
            | ForgeError::BadApiUrl { .. }
            | ForgeError::BadRepo { .. }
            | ForgeError::BadSourceUrl { .. }
            | ForgeError::TokenFile { .. }
            | ForgeError::BadToken { .. }
            | ForgeError::MissingToken { .. }
            | ForgeError::MissingClusterName
            | ForgeError::BadTemplate { .. } => "config",
        }
    }

    /// When a rate-limited post may be tried again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ForgeError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(commit: &str, state: CommitState, description: &str) -> Posted {
        Posted {
            commit: commit.into(),
            context: "hawser/prod".into(),
            state,
            description: description.into(),
        }
    }

    #[test]
    fn the_same_status_is_not_posted_twice() {
        let mut history = Vec::new();
        let pending = posted("abc1234", CommitState::Pending, "applying 3 objects");
        assert!(should_post(&history, &pending));
        record(&mut history, pending.clone());
        assert!(!should_post(&history, &pending));
        let success = posted(
            "abc1234",
            CommitState::Success,
            "applied 3 objects (0 changed, 0 pruned), healthy in 1s",
        );
        assert!(should_post(&history, &success));
        record(&mut history, success.clone());
        assert!(!should_post(&history, &success));
        // Another context on the same commit is another status.
        let other = Posted {
            context: "hawser/staging".into(),
            ..success.clone()
        };
        assert!(should_post(&history, &other));
        // Same state, new description: the forge should show the new text.
        assert!(should_post(
            &history,
            &posted(
                "abc1234",
                CommitState::Success,
                "applied 3 objects (1 changed, 0 pruned), healthy in 1s"
            )
        ));
        assert_eq!(history.len(), 1, "one record per commit and context");
    }

    #[test]
    fn posted_records_have_a_stable_json_form() {
        // The caller persists these next to the inventory: the form is a contract.
        let record = posted("abc1234", CommitState::Failure, "rejected: x");
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            text,
            r#"{"commit":"abc1234","context":"hawser/prod","state":"failure","description":"rejected: x"}"#
        );
        assert_eq!(serde_json::from_str::<Posted>(&text).unwrap(), record);
    }

    #[test]
    fn statuses_are_capped_when_made() {
        let status = CommitStatus::new("abc1234", CommitState::Failure, &"x".repeat(300));
        assert_eq!(
            status.description.chars().count(),
            describe::MAX_DESCRIPTION_CHARS
        );
    }

    #[test]
    fn history_is_bounded() {
        let mut history = Vec::new();
        for i in 0..100 {
            record(
                &mut history,
                posted(
                    &format!("{i:07x}"),
                    CommitState::Pending,
                    "applying 1 object",
                ),
            );
        }
        assert_eq!(history.len(), HISTORY_LIMIT);
        assert_eq!(history.last().map(|p| p.commit.as_str()), Some("0000063"));
    }

    #[test]
    fn transient_errors_are_marked() {
        let provider = Provider::GitHub;
        let rate = ForgeError::RateLimited {
            provider,
            commit: "abc1234".into(),
            repo: "o/r".into(),
            retry_after: Duration::from_secs(3600),
        };
        assert!(rate.is_transient());
        assert_eq!(rate.kind(), "rate_limited");
        assert_eq!(rate.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(
            rate.to_string(),
            "github rate limit reached posting the status for abc1234 on o/r; retry in 3600s"
        );
        let rejected = ForgeError::Rejected {
            provider,
            commit: "abc1234".into(),
            repo: "owner/repo".into(),
            status: 401,
            message: "Bad credentials".into(),
            hint: "; check --status-token-file",
        };
        assert!(!rejected.is_transient());
        assert_eq!(
            rejected.to_string(),
            "github rejected the status for abc1234 on owner/repo: 401 Bad credentials; check --status-token-file"
        );
    }
}
