//! Why a bundle was refused: one line each, the bundle's path or URL added by
//! [`SourceError::Bundle`](crate::source::SourceError::Bundle).

use std::path::{Path, PathBuf};

use super::header::HeaderError;
use super::sign::SignError;
use crate::source::git::GitError;
use crate::source::git::object::{Kind, ObjectId};

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("{0}")]
    Sign(#[from] SignError),
    #[error(
        "unsigned: {} is missing (pass --insecure-allow-unsigned to accept unsigned bundles)",
        sig.display()
    )]
    Unsigned { sig: PathBuf },
    #[error("{0}")]
    Pack(GitError),
    #[error("no reference {reference} in the bundle (it has {available})")]
    RefNotFound {
        reference: String,
        available: String,
    },
    #[error("reference {reference} is ambiguous ({candidates}); use the full ref name")]
    AmbiguousRef {
        reference: String,
        candidates: String,
    },
    #[error("bundle has no HEAD and several references ({available}); choose one with --ref")]
    NoHead { available: String },
    #[error("{reference} points at {id}, which is not in the bundle's pack")]
    NotInPack { reference: String, id: ObjectId },
    #[error("{reference} points at a {kind}, not a commit")]
    NotCommit { reference: String, kind: Kind },
    #[error(
        "the tree of commit {commit} is incomplete: {missing} is not in the bundle \
         (hawser needs the whole tree; the bundle has {prerequisites} prerequisites)"
    )]
    TreeIncomplete {
        commit: ObjectId,
        missing: ObjectId,
        prerequisites: usize,
    },
    #[error(
        "the pack stores objects as deltas against {base}, which only the bundle's \
         {prerequisites} prerequisites have; hawser needs the whole tree in the bundle"
    )]
    ThinPack {
        base: ObjectId,
        prerequisites: usize,
    },
    #[error("commit {commit} is malformed: {what}")]
    MalformedCommit {
        commit: ObjectId,
        what: &'static str,
    },
    #[error(
        "commit {commit} is older than the applied {applied}: {reason} \
         (pass --allow-downgrade to accept it)"
    )]
    Downgrade {
        commit: ObjectId,
        applied: ObjectId,
        reason: String,
    },
    #[error("{limit} limit of {max} exceeded")]
    Limit { limit: &'static str, max: u64 },
    #[error("no complete, signed *.bundle yet")]
    Empty,
    #[error("reading {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

impl BundleError {
    pub(super) fn io(path: &Path, err: impl std::fmt::Display) -> Self {
        BundleError::Io {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}
