//! Reading response bodies: every byte counts towards the client's traffic, a read
//! after the exchange's [`Deadline`] fails naming `--fetch-timeout`, and a [`Budget`]
//! turns "more than the limit" into an error naming the limit. Errors from a body
//! read travel as `io::Error`s and come back as [`SourceError`]s in [`io_error`].

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::one_line;
use crate::source::SourceError;

/// When an exchange (a poll, a fetch) must be over, and the flag that set it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    /// The `--fetch-timeout` it was made from, for the error that names it.
    pub(super) after: Duration,
}

impl Deadline {
    pub fn after(after: Duration) -> Self {
        Self {
            at: Instant::now() + after,
            after,
        }
    }

    pub(super) fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub(super) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// Carried inside an `io::Error` from a body read once the deadline passed, so the
/// error can name the limit instead of "timed out".
#[derive(Debug, thiserror::Error)]
#[error("the fetch-timeout of {}s passed", .0.as_secs())]
struct DeadlinePassed(Duration);

/// Carried inside an `io::Error` when a body exceeds a byte budget.
#[derive(Debug, thiserror::Error)]
#[error("{limit} limit of {max} exceeded")]
pub struct OverBudget {
    pub limit: &'static str,
    pub max: u64,
}

/// A response body; read errors surface as `io::Error`s wrapping a [`SourceError`].
pub struct BodyReader {
    pub(super) inner: Box<dyn Read + Send>,
    pub(super) url: String,
    pub(super) received: Arc<AtomicU64>,
    pub(super) deadline: Deadline,
}

impl BodyReader {
    /// Converts an error from reading this body back into a `SourceError`.
    pub fn error(&self, err: io::Error) -> SourceError {
        io_error(&self.url, err)
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.passed() {
            return Err(io::Error::other(DeadlinePassed(self.deadline.after)));
        }
        let n = self.inner.read(buf).map_err(|e| {
            if self.deadline.passed() {
                io::Error::other(DeadlinePassed(self.deadline.after))
            } else {
                e
            }
        })?;
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A reader that fails with [`OverBudget`] once more than `max` bytes came through,
/// so a limit reads as a limit, not as a truncated stream.
pub struct Budget<R> {
    inner: R,
    left: u64,
    limit: &'static str,
    max: u64,
}

impl<R: Read> Budget<R> {
    pub fn new(inner: R, limit: &'static str, max: u64) -> Self {
        Self {
            inner,
            left: max,
            limit,
            max,
        }
    }
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the budget tells "exactly at the limit" from "beyond it".
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::other(OverBudget {
                limit: self.limit,
                max: self.max,
            }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Maps an I/O error from a response body: timeouts and resets are network trouble.
pub fn io_error(url: &str, err: io::Error) -> SourceError {
    if let Some(passed) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<DeadlinePassed>())
    {
        return SourceError::Deadline {
            url: url.to_string(),
            limit: "fetch-timeout",
            after_s: passed.0.as_secs(),
        };
    }
    if let Some(over) = err.get_ref().and_then(|e| e.downcast_ref::<OverBudget>()) {
        return SourceError::Limit {
            limit: over.limit,
            max: over.max,
        };
    }
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => SourceError::Timeout {
            url: url.to_string(),
        },
        _ => SourceError::Network {
            url: url.to_string(),
            message: format!("reading response: {}", one_line(&err.to_string())),
        },
    }
}
