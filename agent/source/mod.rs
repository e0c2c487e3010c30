//! Sources (work in progress).
pub mod git;
