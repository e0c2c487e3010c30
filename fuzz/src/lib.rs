//! The bodies of the fuzz targets. `tests/replay.rs` runs the seed corpus through
//! them as a plain test (`cargo test --manifest-path fuzz/Cargo.toml`), which needs
//! no nightly toolchain.

// hawser's pure Git decoding modules, compiled from their own files. They sit at the
// crate root (a path attribute inside an inline module would go through a directory
// that does not exist in a checkout) and refer to each other with `super::`.
#[path = "../../agent/source/git/delta.rs"]
pub mod delta;
#[path = "../../agent/source/git/error.rs"]
mod error;
#[path = "../../agent/source/git/object.rs"]
pub mod object;
#[path = "../../agent/source/git/pack.rs"]
pub mod pack;
#[path = "../../agent/source/git/pktline.rs"]
pub mod pktline;

pub use error::GitError;

// Kustomize's patch appliers, pure functions over JSON values.
#[path = "../../agent/render/patch/mod.rs"]
pub mod patch;

// The kustomization parser (schema and refusals) over JSON values, with the two
// error constructors it uses from render; the rest of render is not built here.
#[path = "../../agent/render/kustomization.rs"]
pub mod kustomization;

/// render's `RenderError`, as far as the kustomization parser builds one.
#[derive(Debug)]
pub enum RenderError {
    Field {
        file: String,
        field: String,
        reason: String,
    },
    File {
        file: String,
        reason: String,
    },
}

impl RenderError {
    pub(crate) fn field(file: &str, field: &str, reason: String) -> Self {
        Self::Field {
            file: file.into(),
            field: field.into(),
            reason,
        }
    }

    pub(crate) fn file(file: &str, reason: impl Into<String>) -> Self {
        Self::File {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// The modules under the names the agent gives them.
pub mod git {
    pub use super::{delta, object, pack, pktline};
}

use std::io::{Cursor, Read};

use git::object::Kind;
use git::pack::Pack;
use git::pktline::{PktReader, SideBand};
use sha1_checked::{Digest, Sha1};

/// Packets until an error or the end, then the same bytes as a side-band stream.
pub fn pktline(data: &[u8]) {
    let mut r = PktReader::new(data);
    for _ in 0..10_000 {
        if r.read().is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = SideBand::new(PktReader::new(data)).read_to_end(&mut out);
    assert!(out.len() <= data.len());
}

/// `data` is a pack without its trailer; the trailer is appended so the fuzzer gets
/// past the checksum to the entries. Every object that opens must read back.
pub fn pack_entry(data: &[u8]) {
    let mut bytes = data.to_vec();
    let sum = Sha1::digest(&bytes);
    bytes.extend_from_slice(&sum);
    if let Ok(mut pack) = Pack::open(Cursor::new(bytes), 1 << 20) {
        let ids: Vec<_> = pack.ids().collect();
        for id in ids {
            let kind = pack.kind(&id).unwrap_or(Kind::Blob);
            let data = pack.read(&id, kind).map(|d| d.len());
            assert!(data.is_ok(), "indexed object {id} does not read back");
        }
    }
}

/// The first two bytes give the base length; then the base, then the delta.
pub fn delta(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (base, delta) = data[2..].split_at(n);
    if let Ok(out) = git::delta::apply(base, delta, 1 << 20) {
        assert_eq!(Some(out.len() as u64), git::delta::result_size(delta).ok());
    }
}

/// The input is a JSON `[target, patch]`. A patch either applies or fails leaving the
/// target as it was; applying the same patch to the same target gives the same result.
pub fn strategic_merge(data: &[u8]) {
    let Ok(serde_json::Value::Array(pair)) = serde_json::from_slice(data) else {
        return;
    };
    let [target, patch] = pair.as_slice() else {
        return;
    };
    let mut once = target.clone();
    match patch::strategic_merge(&mut once, patch) {
        Ok(_) => {
            let mut twice = target.clone();
            assert!(patch::strategic_merge(&mut twice, patch).is_ok());
            assert_eq!(once, twice, "the merge is not deterministic");
        }
        Err(_) => assert_eq!(&once, target, "a failed merge changed the target"),
    }
}

/// The input is a JSON `[target, [operation, ...]]`; a failing patch leaves the target
/// untouched.
pub fn json6902(data: &[u8]) {
    let Ok(serde_json::Value::Array(pair)) = serde_json::from_slice(data) else {
        return;
    };
    let [target, serde_json::Value::Array(ops)] = pair.as_slice() else {
        return;
    };
    let mut doc = target.clone();
    if patch::json6902(&mut doc, ops).is_err() {
        assert_eq!(&doc, target, "a failed patch changed the target");
    }
}

/// The input is a kustomization as JSON. It parses, or fails with an error that is
/// one line and names the file (never a panic).
pub fn kustomization(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Err(e) = kustomization::Kustomization::parse(value, "kustomization.yaml") {
        let (file, reason) = match &e {
            RenderError::Field { file, reason, .. } | RenderError::File { file, reason } => {
                (file, reason)
            }
        };
        assert_eq!(file, "kustomization.yaml");
        assert!(!reason.contains('\n'), "a two-line error: {reason:?}");
    }
}
