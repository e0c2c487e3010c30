//! What can go wrong in the source stage, and which of it is worth retrying.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::git::GitError;
use super::{bundle, oci};

/// Why a source could not be resolved or fetched. Messages are one lowercase line
/// naming the URL (redacted), object, path or limit.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid source configuration: {0}")]
    Config(String),
    #[error("reading {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: gave up: the {limit} of {after_s}s passed")]
    Deadline {
        url: String,
        limit: &'static str,
        after_s: u64,
    },
    #[error("{url}: redirect to {to} refused: {reason}")]
    Redirect {
        url: String,
        to: String,
        reason: &'static str,
    },
    #[error("{url}: tls: {message}")]
    Tls { url: String, message: String },
    #[error("{url}: http {status}{}", status_hint(*status))]
    Http { url: String, status: u16 },
    /// 429, or 503 with `Retry-After`: the server said when to come back.
    #[error("{url}: http {status}{}; the server asked to wait {}", status_hint(*status), crate::duration::display(*retry_after))]
    Throttled {
        url: String,
        status: u16,
        retry_after: Duration,
    },
    #[error("{url}: {source}")]
    Git {
        url: String,
        #[source]
        source: GitError,
    },
    #[error("{url}: ref {reference} not found")]
    RefNotFound { url: String, reference: String },
    #[error("{url}: ref {reference} is ambiguous ({candidates}); use the full ref name")]
    AmbiguousRef {
        url: String,
        reference: String,
        candidates: String,
    },
    #[error("{url}: repository uses {format} object ids; hawser supports sha1 only")]
    UnsupportedObjectFormat { url: String, format: String },
    #[error("{limit} limit of {max} exceeded")]
    Limit { limit: &'static str, max: u64 },
    #[error("path {path} not found in commit {commit}")]
    PathNotFound { path: String, commit: String },
    #[error("path {path} in commit {commit} is not a directory")]
    PathNotDirectory { path: String, commit: String },
    #[error("symlink {path} points outside the snapshot")]
    SymlinkEscape { path: String },
    #[error("{url}: archive entry {path:?} rejected: {reason}")]
    UnsafeEntry {
        url: String,
        path: String,
        reason: &'static str,
    },
    #[error("{url}: invalid archive: {message}")]
    Archive { url: String, message: String },
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: revision moved from {expected} to {actual} during the fetch")]
    RevisionMoved {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("bundle {location}: {source}")]
    Bundle {
        location: String,
        #[source]
        source: bundle::BundleError,
    },
    #[error("{location}: {source}")]
    Oci {
        location: String,
        #[source]
        source: oci::OciError,
    },
    /// The revision is not signed by a trusted key (`--verify-commits`,
    /// `--verify-tags`): refused until the source moves.
    #[error("{url}: {source}")]
    Verify {
        url: String,
        #[source]
        source: crate::verify::VerifyError,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => " (authentication required or credentials rejected)",
        403 => " (forbidden)",
        404 => " (not found)",
        407 => " (proxy authentication required)",
        429 => " (too many requests)",
        500..=599 => " (server error)",
        _ => "",
    }
}

impl SourceError {
    /// Whether retrying later may succeed: network trouble, timeouts, 5xx, 429, and a
    /// ref that moved while it was being fetched.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Network { .. }
            | SourceError::Timeout { .. }
            | SourceError::Deadline { .. }
            | SourceError::RevisionMoved { .. }
            | SourceError::Bundle {
                source: bundle::BundleError::Empty,
                ..
            } => true,
            SourceError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            SourceError::Throttled { .. } => true,
            _ => false,
        }
    }

    /// How long the server asked to be left alone (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SourceError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the source refused the revision for who made it (a missing or
    /// untrusted signature): a rejection, not retried until the source moves.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SourceError::Verify { .. }
                | SourceError::Oci {
                    source: oci::OciError::Unsigned { .. } | oci::OciError::BadSignature { .. },
                    ..
                }
        )
    }

    pub(crate) fn write(path: &Path, source: std::io::Error) -> Self {
        SourceError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}
