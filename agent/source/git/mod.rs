//! The Git source: smart HTTP (protocol v2, v0 fallback), pack and delta decoding,
//! and tree extraction. The decoding half is pure over `Read + Seek` and tested with
//! packs made by the git CLI; only `protocol` talks to the network (`wire` holds the
//! bytes of the exchange).

pub mod delta;
mod error;
pub mod extract;
pub mod object;
pub mod pack;
pub mod pktline;
pub mod protocol;
pub mod refs;
mod wire;

pub use error::GitError;
