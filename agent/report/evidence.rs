//! Where the promotion gate learns what its canaries reported: the forge (one
//! request per read) or, at air-gapped sites, signed status report files (what
//! `hawser status --export` writes at each canary, carried across the gap).
//!
//! In: a commit id and the contexts waited for. Out: the [`SeenStatus`]es on that
//! commit. What can go wrong: the forge refuses or is unreachable (a [`ReadError`]),
//! a report file is missing, too large, unsigned, signed by an untrusted key or not
//! a valid report (an [`EvidenceError`] naming the file and the rule). Any error
//! leaves the gate waiting: nothing unverified ever opens it.
//!
//! Blocking (ureq, file reads): the loop runs [`Evidence::read`] on `spawn_blocking`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::export::{self, MAX_REPORT_BYTES};
use super::forge::{CommitState, Read, ReadError, StatusReader};
use crate::gate::{SeenState, SeenStatus};
use crate::source::bundle::sign::{self, MAX_SIG_BYTES, TrustedKeys};

/// The gate's source of canary statuses.
#[derive(Debug)]
pub enum Evidence {
    Forge(StatusReader),
    /// Signed reports, checked against keys trusted in the `hawser-status` namespace.
    Reports {
        files: Vec<PathBuf>,
        trusted: TrustedKeys,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Forge(#[from] ReadError),
    #[error("reading the status report {}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("the status report {} is larger than {MAX_REPORT_BYTES} bytes", .path.display())]
    TooLarge { path: PathBuf },
    #[error("the status report {} has no signature {}: unsigned reports are not trusted", .path.display(), .sig.display())]
    Unsigned { path: PathBuf, sig: PathBuf },
    #[error("the status report {}: {source}", .path.display())]
    Signature {
        path: PathBuf,
        source: sign::SignError,
    },
    #[error("the status report {}: {source}", .path.display())]
    Invalid {
        path: PathBuf,
        source: export::ReportError,
    },
}

impl EvidenceError {
    /// How long the forge asked not to be read again, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EvidenceError::Forge(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl Evidence {
    /// The statuses on `commit` under the `wanted` contexts.
    pub fn read(&self, commit: &str, wanted: &[String]) -> Result<Read, EvidenceError> {
        match self {
            Evidence::Forge(reader) => Ok(reader.read(commit, wanted)?),
            Evidence::Reports { files, trusted } => {
                let mut statuses = Vec::new();
                for path in files {
                    statuses.extend(read_report(path, trusted, commit, wanted)?);
                }
                Ok(Read {
                    statuses,
                    hold_off: None,
                })
            }
        }
    }
}

/// One report file: its signature checked first, then its content; the outcomes on
/// `commit` under a wanted context become statuses.
fn read_report(
    path: &Path,
    trusted: &TrustedKeys,
    commit: &str,
    wanted: &[String],
) -> Result<Vec<SeenStatus>, EvidenceError> {
    let file_error = |e: std::io::Error| EvidenceError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let bytes = read_bounded(path, MAX_REPORT_BYTES).map_err(file_error)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(EvidenceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let sig_path = sign::sig_path(path);
    let sig = match read_bounded(&sig_path, MAX_SIG_BYTES) {
        Ok(sig) => sig,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EvidenceError::Unsigned {
                path: path.to_path_buf(),
                sig: sig_path,
            });
        }
        Err(e) => return Err(file_error(e)),
    };
    trusted
        .verify(&sig_path, &sig, bytes.as_slice())
        .map_err(|source| EvidenceError::Signature {
            path: path.to_path_buf(),
            source,
        })?;
    let report = export::parse(&bytes).map_err(|source| EvidenceError::Invalid {
        path: path.to_path_buf(),
        source,
    })?;
    if !wanted.contains(&report.context) {
        return Ok(Vec::new());
    }
    // Outcomes are kept oldest first; the gate takes the newest by time, and the
    // later of two with the same time.
    let mut seen: Vec<SeenStatus> = report
        .outcomes
        .iter()
        .filter(|o| o.commit.eq_ignore_ascii_case(commit))
        .map(|o| SeenStatus {
            context: report.context.clone(),
            state: match o.state {
                CommitState::Pending => SeenState::Pending,
                CommitState::Success => SeenState::Success,
                CommitState::Failure => SeenState::Failure,
            },
            description: o.description.clone(),
            at: timestamp(&o.time),
        })
        .collect();
    seen.reverse();
    Ok(seen)
}

fn timestamp(text: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    let nanos = u64::try_from(ts.as_nanosecond()).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Reads at most `limit + 1` bytes: enough to tell that a file is too large.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}
