//! `state.json`: which revision is applied, which is good, what was rejected and which
//! commit statuses were posted. The agent reads it once at start and writes it after
//! every change, atomically, so a restart (with Git down) knows what to enforce.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::tree::{remove_all, rename_synced, unique_name, write_synced};
use crate::health::Healthy;
use crate::report::forge::Posted;
use crate::source::Revision;

/// The agent's memory across restarts. Unknown fields are ignored and missing ones
/// default, so an older or newer agent can read the file; a file with none of its keys
/// is not this layout at all and is refused ([`CacheError::UnknownStateLayout`]).
///
/// `good` is not a field others can set: a revision becomes good only through
/// [`State::record_good`], with the proof only `health` makes.
///
/// ```compile_fail,E0616
/// let mut state = hawser::cache::State::default();
/// state.good = None;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The revision whose writes and prunes all succeeded, enforced on every drift tick.
    pub applied: Option<Record>,
    /// The last applied revision that was also healthy within the timeout. Set only
    /// by [`State::record_good`], which asks for health's proof.
    pub(super) good: Option<Record>,
    /// The last rejected revision: not retried until the source moves.
    pub rejected: Option<Rejected>,
    /// Commit statuses already posted, so a restart does not post them again: the
    /// reporter's own history ([`Posted`]), kept here because this file is what
    /// survives a restart.
    pub posted: Vec<Posted>,
}

/// One revision as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub revision: Revision,
    /// The tree digest stored with the entry (`sha256:<hex>`).
    pub digest: String,
    /// Where the revision came from (URL and ref, bundle path, ...).
    pub source: String,
    /// Unix seconds.
    pub at: u64,
    /// The commit's committer time, when the source told it (bundles: the downgrade
    /// check needs it after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer_time: Option<i64>,
}

/// A revision that failed manifests, scope or dry run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub revision: Revision,
    pub reason: String,
    /// Unix seconds.
    pub at: u64,
}

impl State {
    /// The last applied revision that was also healthy within the timeout.
    pub fn good(&self) -> Option<&Record> {
        self.good.as_ref()
    }

    /// Records `record` as good: only with the verdict of the health check that
    /// found its objects ready.
    pub fn record_good(&mut self, record: Record, _proof: &Healthy) {
        self.good = Some(record);
    }

    /// Forgets the good revision when it is `revision` (its cache entry is gone).
    pub fn forget_good(&mut self, revision: &Revision) {
        if self.good.as_ref().is_some_and(|g| g.revision == *revision) {
            self.good = None;
        }
    }

    /// Revisions the cache must not evict.
    pub(crate) fn protected(&self) -> impl Iterator<Item = &Revision> {
        [&self.applied, &self.good]
            .into_iter()
            .flatten()
            .map(|r| &r.revision)
    }
}

/// Reads `path`; a missing file is the empty state.
pub(crate) fn read(path: &Path) -> Result<State, CacheError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(CacheError::io("reading", path, e)),
    };
    let bad = |source| CacheError::BadState {
        path: path.into(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
    // Every layout this agent writes has these keys (`applied` is null when nothing
    // is); a newer one adds keys. A file with none of them is an older or foreign
    // layout, which would otherwise read as the empty state and silently forget
    // what the cluster runs.
    let known = value
        .as_object()
        .is_some_and(|o| LAYOUT_KEYS.iter().any(|k| o.contains_key(*k)));
    if !known {
        let found = match value.as_object() {
            Some(o) if o.is_empty() => "none".to_string(),
            Some(o) => o.keys().cloned().collect::<Vec<_>>().join(", "),
            None => "not an object".to_string(),
        };
        return Err(CacheError::UnknownStateLayout {
            path: path.into(),
            found,
        });
    }
    serde_json::from_value(value).map_err(bad)
}

/// The keys of the state file's layout.
const LAYOUT_KEYS: [&str; 4] = ["applied", "good", "rejected", "posted"];

/// The steps of an atomic state write, split so tests can stop between them.
pub(crate) struct PendingState {
    pub temp: std::path::PathBuf,
}

/// Writes the new state to a temporary file in `tmp` and fsyncs it. Nothing is
/// visible at `path` yet.
pub(crate) fn prepare(tmp: &Path, state: &State) -> Result<PendingState, CacheError> {
    let temp = tmp.join(unique_name("state"));
    let bytes = serde_json::to_vec_pretty(state).map_err(|source| CacheError::Encode {
        path: temp.clone(),
        source,
    })?;
    if let Err(e) = write_synced(&temp, &bytes) {
        let _ = remove_all(&temp);
        return Err(e);
    }
    Ok(PendingState { temp })
}

/// Renames the prepared file over `path` and fsyncs the directory.
pub(crate) fn commit(pending: PendingState, path: &Path) -> Result<(), CacheError> {
    let result = rename_synced(&pending.temp, path);
    if result.is_err() {
        let _ = remove_all(&pending.temp);
    }
    result
}
