//! What can be wrong with bytes a Git server sent.

use std::io;

use super::object::{Kind, ObjectId};

/// What can be wrong with bytes a Git server sent. Never transient: the same request
/// would produce the same bytes.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid pkt-line length {0:?}")]
    PktLength(String),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("server said: {0}")]
    Server(String),
    #[error("unexpected response: {0}")]
    Unexpected(String),
    #[error("invalid pack: {0}")]
    Pack(&'static str),
    #[error("pack entry at offset {offset}: {source}")]
    Entry {
        offset: u64,
        #[source]
        source: Box<GitError>,
    },
    #[error("corrupt zlib stream")]
    Zlib,
    #[error("inflated size {actual} differs from the declared {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("inflates past its declared size of {0} bytes")]
    Oversize(u64),
    #[error("unknown object type {0}")]
    UnknownType(u8),
    #[error("invalid delta: {0}")]
    Delta(&'static str),
    #[error("object of {size} bytes exceeds the max-object-bytes limit of {max}")]
    ObjectTooLarge { size: u64, max: u64 },
    #[error("sha-1 collision attack detected")]
    Sha1Collision,
    #[error("object {0} is missing from the pack")]
    MissingObject(ObjectId),
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        id: ObjectId,
        expected: Kind,
        actual: Kind,
    },
    #[error("object {id} is malformed: {what}")]
    MalformedObject { id: ObjectId, what: &'static str },
    #[error("ref listing exceeds the max-refs limit of {0}")]
    TooManyRefs(u64),
    #[error("reading pack: {0}")]
    Io(io::Error),
}

impl GitError {
    /// Recovers a `GitError` that travelled through an `io::Error` (the side-band
    /// reader reports channel-3 messages that way).
    pub fn from_io(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<GitError>()) {
            if let Some(Ok(git)) = err.into_inner().map(|e| e.downcast::<GitError>()) {
                return *git;
            }
            return GitError::Unexpected("lost error".into());
        }
        match err.kind() {
            io::ErrorKind::UnexpectedEof => GitError::Truncated("pack"),
            _ => GitError::Io(err),
        }
    }

    pub(crate) fn at(self, offset: u64) -> Self {
        GitError::Entry {
            offset,
            source: Box::new(self),
        }
    }
}
